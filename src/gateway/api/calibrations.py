"""Calibration records of the benches: the list, one run's record, its report and its DCC.

A record reaches the gateway from a bench through MQTT (``…/calibrations``) and is kept once
per run (``gateway/calibrations``). Reading needs a viewer token. The report is the same HTML
page ``etalon calibrate report`` writes (``metrology.certificate.report``), served with a policy
that lets it run no script and load nothing; the DCC is built from the record
(``metrology.certificate.dcc``, valid against the shipped XSD) and signed with the lab's key when
``calibrations.signing`` is configured.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel

from core.models import NAME_PATTERN
from core.threads import in_own_thread
from gateway.api.auth import Viewer
from gateway.api.context import ApiContext
from gateway.api.views import ERRORS, NOT_FOUND
from gateway.records.calibrations import SUMMARY_COLUMNS, summary
from metrology.certificate.record import CalibrationRecord, load_record

router = APIRouter(prefix="/api/v1/calibrations", tags=["calibrations"], responses=ERRORS)
RunId = Annotated[str, Path(pattern=NAME_PATTERN, description="The run's id.")]

REPORT_HEADERS = {
    # The page is static: no script, nothing loaded from anywhere, not framed.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class CalibrationSummary(BaseModel):
    """A run in the list."""

    run: str
    site: str
    agent: str
    received_ns: int
    started_ns: int
    finished_ns: int
    procedure_id: str
    uut_serial: str | None
    decision: str
    points: int
    failed_points: int
    sha256: str


class CalibrationEnvelope(BaseModel):
    """One run: its record (``etalon.calibration/1``) with its SHA-256 and when it arrived."""

    run: str
    site: str
    agent: str
    received_ns: int
    sha256: str
    record: dict[str, Any]


def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


@router.get("", response_model=list[CalibrationSummary])
async def list_calibrations(
    request: Request,
    _who: Viewer,
    site: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    agent: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    decision: Literal["pass", "conditional_pass", "conditional_fail", "fail", "incomplete"]
    | None = None,
    before_ns: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> list[dict[str, Any]]:
    """Runs, newest first, matching every filter given."""
    rows = await _context(request).records.query(
        f"SELECT {SUMMARY_COLUMNS} FROM calibrations WHERE (?1 IS NULL OR site = ?1) "
        "AND (?2 IS NULL OR agent = ?2) AND (?3 IS NULL OR decision = ?3) "
        "AND (?4 IS NULL OR started_ns < ?4) ORDER BY started_ns DESC LIMIT ?5",
        (site, agent, decision, before_ns, limit),
    )
    return [summary(row) for row in rows]


async def _stored_row(request: Request, run: str) -> dict[str, Any]:
    rows = await _context(request).records.query(
        "SELECT run, site, agent, received_ns, sha256, record FROM calibrations WHERE run = ?",
        (run,),
    )
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no calibration record for run {run}")
    return rows[0]


async def _stored(request: Request, run: str) -> tuple[dict[str, Any], CalibrationRecord]:
    row = await _stored_row(request, run)
    record = await in_own_thread(load_record, row["record"], name="calibration-record")
    return row, record


@router.get("/{run}", response_model=CalibrationEnvelope, responses=NOT_FOUND)
async def show_calibration(request: Request, run: RunId, _who: Viewer) -> Response:
    """The record of one run, exactly as stored (its canonical JSON), with its SHA-256."""
    row = await _stored_row(request, run)
    head = json.dumps(
        {k: row[k] for k in ("run", "site", "agent", "received_ns", "sha256")},
        separators=(",", ":"),
    )
    body = head[:-1].encode() + b',"record":' + row["record"].encode("utf-8") + b"}"
    return Response(body, media_type="application/json", headers={"X-Etalon-SHA256": row["sha256"]})


@router.get("/{run}/report", response_class=Response, responses=NOT_FOUND)
async def report(
    request: Request,
    run: RunId,
    _who: Viewer,
    lang: Literal["en", "vi"] = "en",
) -> Response:
    """The run's printable HTML report, in English or Vietnamese."""
    from metrology.certificate.report import render_html

    row, record = await _stored(request, run)
    page = await in_own_thread(render_html, record, lang, row["sha256"], name="calibration-report")
    headers = REPORT_HEADERS | {"X-Etalon-SHA256": row["sha256"]}
    return Response(page.encode("utf-8"), media_type="text/html; charset=utf-8", headers=headers)


def _signed_dcc(context: ApiContext, record: CalibrationRecord, sha256: str) -> bytes:
    from metrology import dcc
    from metrology.certificate.dcc import build_dcc

    document = build_dcc(record, sha256)
    signing = context.config.calibrations.signing
    if signing is None:
        return document
    chain = [
        certificate
        for path in (signing.cert_file, *signing.chain_files)
        for certificate in dcc.load_certificates(path.read_bytes())
    ]
    password = signing.password.resolve().encode() if signing.password is not None else None
    return dcc.sign(
        document, key=signing.key_file.read_bytes(), certificates=chain, password=password
    )


@router.get("/{run}/dcc", response_class=Response, responses=NOT_FOUND)
async def dcc_document(request: Request, run: RunId, _who: Viewer) -> Response:
    """The run's DCC 3.1.2 (XML, valid against the shipped XSD), signed when the gateway has
    the lab's signing key (``calibrations.signing``)."""
    from metrology.errors import DccError

    row, record = await _stored(request, run)
    context = _context(request)
    try:
        document = await in_own_thread(
            _signed_dcc, context, record, row["sha256"], name="calibration-dcc"
        )
    except (DccError, OSError, ValueError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the DCC cannot be made: {exc}"
        ) from None
    headers = {
        "X-Etalon-SHA256": row["sha256"],
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="{run}.dcc.xml"',
    }
    return Response(document, media_type="application/xml", headers=headers)
