"""Reference standards: the registry, certificates and their files, drift results, traceability.

Reading needs a viewer token; changing the registry needs an admin (each change is audited with
the token's name); asking for an evaluation now needs an operator.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.models import NAME_PATTERN
from gateway.api.auth import Admin, Operator, Principal, Viewer
from gateway.api.context import ApiContext
from gateway.api.export import CSV_RESPONSE, Format, attachment, safe_file_name, tabular
from gateway.api.uploads import DCC_MEDIA_TYPES, read_capped
from gateway.api.views import ERRORS, REFUSALS
from gateway.standards.chart import StandardChart, chart_view
from gateway.standards.config import StandardsConfig, certificates_path
from gateway.standards.files import MAX_FILE_BYTES
from gateway.standards.models import SUMMARY_FROM_EVENT, CertificateSpec, StandardSpec
from gateway.standards.registry import (
    CertificateRecord,
    FileInfo,
    Registry,
    StandardRecord,
    TraceabilityChain,
)
from gateway.standards.transfer.columns import CERTIFICATE_VALUE_COLUMNS, STANDARD_VALUE_COLUMNS
from metrology._common import from_attributes
from metrology.limits import MAX_DCC_BYTES

router = APIRouter(prefix="/api/v1/standards", tags=["standards"], responses=ERRORS | REFUSALS)
CertificateId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A row id.")]
StandardId = Annotated[str, Path(pattern=NAME_PATTERN, description="An identifier.")]
T = TypeVar("T")


class StandardListItem(BaseModel):
    """A standard in the list: identity, latest certificate, latest evaluation."""

    id: str
    kind: str
    description: str | None
    nominal: float
    unit: str
    owner_lab: str
    status: str
    tolerance: str | None
    """Compact form, e.g. ``±2 ppm``."""
    certificates: int
    latest_calibration: str | None
    due_date: str | None
    due_ns: int | None
    channels: int
    evaluated_ns: int | None
    predicted_out_of_tolerance_ns: int | None
    """Of the latest evaluation (null: none within the horizon, or not evaluated)."""
    summary: dict[str, Any] | None


class Created(BaseModel):
    """What a POST created."""

    id: str | int


class Changed(BaseModel):
    """Whether a PUT changed anything (an identical PUT is not audited)."""

    changed: bool


def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


def _registry(request: Request) -> Registry:
    ctx = _context(request)
    directory = certificates_path(ctx.config.standards, ctx.config.records.path)
    return Registry(ctx.records, directory, ctx.config.site)


def _actor(who: Principal) -> str:
    return f"api:{who.name}"


async def _certificate_at(
    request: Request, standard_id: StandardId, certificate_id: CertificateId
) -> CertificateRecord:
    """The certificate a route's path names (404 if it is not one of that standard's)."""
    return await _registry(request).certificate(standard_id, certificate_id)


CertificatePath = Annotated[CertificateRecord, Depends(_certificate_at)]


STANDARD_COLUMNS = [
    *STANDARD_VALUE_COLUMNS,
    "owner_lab",
    "status",
    "tolerance",
    "certificates",
    "latest_calibration",
    "due_date",
    "channels",
    "evaluated_ns",
    "summary.measured",
    "summary.measured_u",
    "summary.reference",
    "summary.reference_expanded_u",
    "summary.k",
    "predicted_out_of_tolerance_ns",
    "summary.predicted_out_of_tolerance_from",
]
CERTIFICATE_COLUMNS = [
    "id",
    *CERTIFICATE_VALUE_COLUMNS,
    "conditions",
    "traceable_to",
    "file.name",
    "file.sha256",
    "notes",
    "updated_ns",
]
RESULT_COLUMNS = [
    "ts_ns",
    *SUMMARY_FROM_EVENT,
    "certificate_slope_per_year",
    "monitor_slope_per_year",
    "monitor_u_slope_per_year",
    "predicted_out_of_tolerance_ns",
    "predicted_out_of_tolerance_from",
    "calibration_due_ns",
    "recommended_recalibration_ns",
    "violations",
    "notes",
]


@router.get("", response_model=list[StandardListItem], responses=CSV_RESPONSE)
async def list_standards(
    request: Request, _who: Viewer, format: Format = "json"
) -> list[StandardListItem] | Response:
    """Every standard with its latest certificate and latest evaluation summary."""
    standards = await _registry(request).standards()
    rows = await _context(request).records.query(
        "SELECT r.standard_id, r.ts_ns, r.summary FROM standard_results r JOIN "
        "(SELECT standard_id, MAX(id) AS id FROM standard_results GROUP BY standard_id) m "
        "ON r.id = m.id"
    )
    latest = {row["standard_id"]: row for row in rows}
    items = []
    for record in standards:
        certificate = record.latest_certificate
        row = latest.get(record.id)
        summary = json.loads(row["summary"]) if row else None
        items.append(
            from_attributes(
                StandardListItem,
                record,
                tolerance=record.tolerance.compact() if record.tolerance else None,
                certificates=len(record.certificates),
                latest_calibration=certificate.calibration_date if certificate else None,
                due_date=certificate.due_date if certificate else None,
                due_ns=certificate.due_ns if certificate else None,
                channels=len(record.channels),
                evaluated_ns=row["ts_ns"] if row else None,
                predicted_out_of_tolerance_ns=summary.get("predicted_out_of_tolerance_ns")
                if summary
                else None,
                summary=summary,
            )
        )
    times = ["evaluated_ns", "predicted_out_of_tolerance_ns"]
    return tabular(items, format, "standards", STANDARD_COLUMNS, times)  # type: ignore[return-value]  # JSON list or CSV


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_standard(request: Request, spec: StandardSpec, who: Admin) -> Created:
    """Register a standard (409 if its id is taken)."""
    added = await _registry(request).add_standard(spec, _actor(who))
    return Created(id=added.id)


@router.get("/{standard_id}")
async def show_standard(request: Request, standard_id: StandardId, _who: Viewer) -> StandardRecord:
    """One standard, its channel links and certificates (each file's hash verified now)."""
    registry = _registry(request)
    record = await registry.standard(standard_id)
    checked = [await registry.verified(c) for c in record.certificates]
    return record.model_copy(update={"certificates": checked})


@router.put("/{standard_id}")
async def update_standard(
    request: Request, standard_id: StandardId, spec: StandardSpec, who: Admin
) -> Changed:
    """Change a standard's fields and channel links."""
    if spec.id != standard_id:
        raise InvalidInputError(
            f"the body's id {spec.id!r} is not the path's {standard_id!r} (ids do not change)"
        )
    changed = await _registry(request).update_standard(spec, _actor(who))
    return Changed(changed=changed)


@router.get(
    "/{standard_id}/certificates", response_model=list[CertificateRecord], responses=CSV_RESPONSE
)
async def list_certificates(
    request: Request, standard_id: StandardId, _who: Viewer, format: Format = "json"
) -> list[CertificateRecord] | Response:
    """A standard's certificates, oldest calibration first."""
    record = await _registry(request).standard(standard_id)
    name = f"{standard_id}-certificates"
    return tabular(record.certificates, format, name, CERTIFICATE_COLUMNS, ["updated_ns"])  # type: ignore[return-value]  # JSON list or CSV


class DccCreated(BaseModel):
    """What a DCC import registered."""

    id: int
    standard: str
    created_standard: bool
    number: str
    issuer: str
    points: int
    signature: dict[str, Any]


_CERTIFICATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/CertificateSpec"},
            },
            "application/xml": {
                "schema": {"type": "string", "format": "binary"},
                "example": "<dcc:digitalCalibrationCertificate …>",
            },
        },
    }
}


@router.post(
    "/{standard_id}/certificates",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_CERTIFICATE_BODY,
    response_model=Created | DccCreated,
)
async def add_certificate(
    request: Request,
    standard_id: StandardId,
    who: Admin,
    accept_unsigned: Annotated[
        bool, Query(description="DCC: register it even if its signature is invalid (recorded).")
    ] = False,
) -> Created | DccCreated:
    """Register a certificate: a JSON ``CertificateSpec`` (its file is sent afterwards to
    .../file), or a DCC 3.1.2 document (``Content-Type: application/xml``): validated against
    the schema (422 with the schema's message and line), its signature verified (an invalid
    one is 422 unless ``accept_unsigned=true``), extracted with every result, kept byte for
    byte. A standard not yet registered is created from the DCC's item."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in DCC_MEDIA_TYPES:
        return await _import_dcc(request, standard_id, who, accept_unsigned)
    body = await read_capped(request, 1024 * 1024)
    try:
        spec = CertificateSpec.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(_body_errors(exc)) from None
    if spec.file is not None or spec.file_sha256 is not None:
        raise InvalidInputError("send the certificate's file with PUT .../certificates/{id}/file")
    certificate_id = await _registry(request).add_certificate(standard_id, spec, _actor(who))
    return Created(id=certificate_id)


def _body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors of a body, safe to send back as JSON: the input is not echoed (a NaN
    or invalid text in it cannot be written as JSON: it was a 500) and the context's values
    (a validator's ValueError) become their text instead of an empty object."""
    return [
        {**error, "loc": ("body", *error["loc"])}
        | ({"ctx": {k: str(v) for k, v in error["ctx"].items()}} if "ctx" in error else {})
        for error in exc.errors(include_url=False, include_input=False)
    ]


async def _import_dcc(
    request: Request, standard_id: str, who: Principal, accept_unsigned: bool
) -> DccCreated:
    from gateway.standards.dcc import import_dcc

    data = await read_capped(request, MAX_DCC_BYTES)
    ctx = _context(request)
    done = await import_dcc(
        _registry(request),
        data,
        config=(ctx.config.standards or StandardsConfig()).dcc,
        actor=_actor(who),
        standard_id=standard_id,
        create=True,
        accept_invalid=accept_unsigned,
        file_name=f"{standard_id}.xml",
    )
    return from_attributes(
        DccCreated,
        done,
        id=done.certificate_id,
        signature=done.signature.model_dump(mode="json"),
    )


@router.get("/{standard_id}/certificates/{certificate_id}/dcc")
async def export_certificate_dcc(
    request: Request, standard_id: StandardId, certificate_id: CertificateId, _who: Viewer
) -> Response:
    """The certificate as a DCC 3.1.2 document built from the registry (values exactly as
    registered), signed with the lab's key when ``standards.dcc.signing`` is configured. The
    DCC as received is ``.../file``."""
    from gateway.standards.dcc import export_dcc

    ctx = _context(request)
    certificate, data = await export_dcc(
        _registry(request),
        standard_id,
        certificate_id,
        (ctx.config.standards or StandardsConfig()).dcc,
    )
    return attachment(data, "application/xml", f"{safe_file_name(certificate.number, 'dcc')}.xml")


@router.get("/{standard_id}/certificates/{certificate_id}")
async def show_certificate(
    request: Request, _who: Viewer, certificate: CertificatePath
) -> CertificateRecord:
    """One certificate, its file's hash verified now."""
    return await _registry(request).verified(certificate)


@router.put("/{standard_id}/certificates/{certificate_id}")
async def update_certificate(
    request: Request,
    standard_id: StandardId,
    certificate_id: CertificateId,
    spec: CertificateSpec,
    who: Admin,
) -> Changed:
    """Correct a certificate's fields (the correction is audited, before and after)."""
    if spec.file is not None or spec.file_sha256 is not None:
        raise InvalidInputError("send the certificate's file with PUT .../certificates/{id}/file")
    changed = await _registry(request).update_certificate(
        standard_id, certificate_id, spec, _actor(who)
    )
    return Changed(changed=changed)


@router.put("/{standard_id}/certificates/{certificate_id}/file")
async def upload_file(
    request: Request,
    standard_id: StandardId,
    certificate_id: CertificateId,
    who: Admin,
    name: Annotated[str, Query(min_length=1, max_length=200, description="Its file name.")],
) -> FileInfo:
    """Keep the certificate's file (the raw PDF or DCC XML as the request body)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FILE_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a certificate file may have at most {MAX_FILE_BYTES // 2**20} MiB",
        )
    data = await request.body()
    return await _registry(request).attach_file(
        standard_id, certificate_id, data, name, _actor(who)
    )


@router.get("/{standard_id}/certificates/{certificate_id}/file")
async def download_file(request: Request, _who: Viewer, certificate: CertificatePath) -> Response:
    """The certificate's file; 409 if it no longer has its recorded SHA-256."""
    if certificate.file is None:
        raise NotFoundError("this certificate has no file")
    info = certificate.file
    data, state = await _registry(request).read_file(certificate)
    if state != "ok":
        raise ConflictError(
            f"the kept file of certificate {certificate.number} is {state}: it no longer has "
            f"its recorded SHA-256 {info.sha256}"
        )
    safe_name = safe_file_name(info.name, "certificate", "._- ")
    return attachment(data, info.media_type, safe_name, {"X-Etalon-SHA256": info.sha256})


@router.get("/{standard_id}/traceability")
async def traceability(
    request: Request, standard_id: StandardId, _who: Viewer
) -> TraceabilityChain:
    """The chain up to national standards through the latest certificate."""
    return await _registry(request).traceability(standard_id)


@router.get("/{standard_id}/drift")
async def drift(request: Request, standard_id: StandardId, _who: Viewer) -> dict[str, Any]:
    """The latest evaluation in full (etalon.standards.evaluation/1): fits, bands, period
    means, control-chart signals, stability, out-of-tolerance dates."""
    await _registry(request).standard(standard_id)
    result: dict[str, Any] = json.loads(await _latest_result(request, standard_id))
    return result


async def _latest_result(request: Request, standard_id: StandardId) -> str:
    rows = await _context(request).records.query(
        "SELECT result FROM standard_latest WHERE standard_id=?", (standard_id,)
    )
    if not rows:
        raise NotFoundError(f"{standard_id} has not been evaluated")
    text: str = rows[0]["result"]
    return text


@router.get("/{standard_id}/chart")
async def chart(request: Request, standard_id: StandardId, _who: Viewer) -> StandardChart:
    """The latest evaluation shaped for drawing: certificates with U, each drift fit with its
    prediction band up to the dates it forecasts, tolerance limits, monitored period means,
    control charts with every signal in the window; 404 before the first evaluation."""
    record = await _registry(request).standard(standard_id)
    text = await _latest_result(request, standard_id)
    options = _context(request).config.standards or StandardsConfig()
    # A few thousand points of arithmetic: off the event loop, which ingest shares.
    return await asyncio.to_thread(chart_view, text, record, options)


@router.get(
    "/{standard_id}/drift/history", response_model=list[dict[str, Any]], responses=CSV_RESPONSE
)
async def drift_history(
    request: Request,
    standard_id: StandardId,
    _who: Viewer,
    since_ns: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    format: Format = "json",
) -> list[dict[str, Any]] | Response:
    """Summaries of past evaluations (newest first)."""
    await _registry(request).standard(standard_id)
    rows = await _context(request).records.query(
        "SELECT summary FROM standard_results WHERE standard_id=? AND ts_ns>=? "
        "ORDER BY ts_ns DESC, id DESC LIMIT ?",
        (standard_id, since_ns, limit),
    )
    results = [json.loads(row["summary"]) for row in rows]
    times = [c for c in RESULT_COLUMNS if c.endswith("_ns")]
    name = f"{standard_id}-results"
    return tabular(results, format, name, RESULT_COLUMNS, times)  # type: ignore[return-value]  # JSON list or CSV


@router.post("/{standard_id}/evaluate")
async def evaluate_now(request: Request, standard_id: StandardId, _who: Operator) -> dict[str, Any]:
    """Evaluate the standard now (after a new certificate, say); returns the summary."""
    service = _context(request).standards
    if service is None:
        raise ConflictError("the standards analytics do not run on this gateway")
    try:
        result = await service.evaluate_one(standard_id)
    except (ValueError, ArithmeticError) as exc:  # the numbers of this standard cannot be fitted
        raise InvalidInputError(str(exc)) from None
    summary: dict[str, Any] = result.summary()
    return summary
