"""The hub's pages, rendered on the server in English or Vietnamese: the labs and their
due/overdue counts, a lab, a standard, an instrument, the traceability graph (SVG, breaks
highlighted) and, for operators, the refused pushes (the registry search is
:mod:`hub.api.search_page`, signing in :mod:`hub.api.signin`, the shared rendering
:mod:`hub.api.html`).

No script runs in them: every value is escaped HTML, the graph is inline SVG, the language comes
from ``?lang=`` (remembered in a cookie) or the browser's, and a staff member signs in with a
token kept in an HttpOnly cookie that only GET pages read.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import InvalidInputError
from hub.api.auth import Role
from hub.api.html import (
    Column,
    badge,
    error_page,
    esc,
    facts,
    fields,
    fmt_date,
    fmt_time,
    heading,
    link,
    muted,
    opening,
    page,
    rows_section,
    section,
    table,
)
from hub.db import fetch_all
from hub.graph import traceability
from hub.graph_svg import render
from hub.ingest import list_refusals
from hub.labs import check_lab_id, lab_row
from hub.messages import message, ui
from hub.search import due_counts, instrument_page, lab_page, standard_page

router = APIRouter(include_in_schema=False)

KIND_COLUMNS: Final[Sequence[Column]] = (
    ("kind_entries", "kind", "code"),
    ("count", "entries", "text"),
)
RECENT_COLUMNS: Final[Sequence[Column]] = (
    "seq",
    ("time", "ts_ns", "time"),
    ("kind_entries", "kind", "code"),
    "subject",
    "actor",
)
HISTORY_COLUMNS: Final[Sequence[Column]] = ("seq", ("time", "ts_ns", "time"), "actor")
IDENTITY_COLUMNS: Final[Sequence[Column]] = (
    ("seq", "entry_seq", "text"),
    "manufacturer",
    "model",
    "serial",
    "firmware",
    ("first_seen", "first_seen_ns", "time"),
)
CALIBRATION_COLUMNS: Final[Sequence[Column]] = (
    "run",
    "serial",
    ("procedure", "procedure_id", "text"),
    "decision",
    ("calibrated", "finished_ns", "date"),
    ("due", "due_ns", "date"),
)
CERTIFICATE_COLUMNS: Final = (
    "number",
    "issuer",
    "calibrated",
    "due",
    "value",
    "uncertainty",
    "signature",
    "file",
)


async def page_errors(request: Request, exc: Exception) -> Response:
    """HTTP errors of pages as pages (the API's stay JSON)."""
    assert isinstance(exc, StarletteHTTPException)  # a route's, or starlette's own 404/405
    if request.url.path.startswith("/ui"):
        return error_page(request, exc.status_code, str(exc.detail))
    from fastapi.exception_handlers import http_exception_handler

    return await http_exception_handler(request, exc)


# -- routes ---------------------------------------------------------------------------------------


@router.get("/")
async def root() -> RedirectResponse:
    """The search page."""
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/hub.css")
async def stylesheet() -> Response:
    """The pages' style sheet."""
    data = resources.files("hub.web").joinpath("hub.css").read_bytes()
    return Response(
        data, media_type="text/css; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


def _count(state: str, count: object) -> str:
    return f'<span class="count cal-{state}">{count}</span>'


@router.get("/ui/labs")
async def labs_page(request: Request) -> Response:
    """Every lab with its calibration due/overdue counts."""
    lang, principal, context = await opening(request)
    async with context.db.read() as conn:
        counts = await due_counts(conn, context.config.due_soon_days)
        heads = {
            r["lab"]: r
            for r in await fetch_all(conn, "SELECT lab, count, last_push_ns FROM lab_heads")
        }
    rows = [
        [
            link("/ui/lab", c["lab"], lab=c["lab"]),
            esc(c["name"]),
            esc(c["province"]),
            esc(c["standards"]),
            esc(c["instruments"]),
            _count("overdue", c["overdue"]),
            _count("due", c["due"]),
            esc(c["unknown"]),
            esc(heads.get(c["lab"], {}).get("count")),
            esc(fmt_time(heads.get(c["lab"], {}).get("last_push_ns"))),
            esc(ui("hub.ui.lab.revoked" if c["revoked"] else "hub.ui.lab.active", lang)),
        ]
        for c in counts
    ]
    headers = [
        *fields(lang, "lab", "name", "province"),
        ui("hub.ui.labs.standards", lang),
        ui("hub.ui.labs.instruments", lang),
        *(ui(f"hub.ui.cal.{state}", lang) for state in ("overdue", "due", "unknown")),
        *fields(lang, "entries", "last_push", "state"),
    ]
    body = table(headers, rows) or muted(lang)
    return page(request, lang, principal, ui("hub.ui.labs.title", lang), body)


@router.get("/ui/lab")
async def lab_view(request: Request) -> Response:
    """A lab: identity, chain, due counts, keys, standards, entries by kind."""
    lang, principal, context = await opening(request)
    lab = check_lab_id(request.query_params.get("lab", ""))
    async with context.db.read() as conn:
        found = await lab_page(conn, lab, context.config.due_soon_days)
    row, counts = found["lab"], found["counts"]
    pairs = [
        (ui("hub.ui.field.lab", lang), esc(row["id"])),
        (ui("hub.ui.field.province", lang), esc(row["province"])),
        (ui("hub.ui.field.enrolled", lang), esc(fmt_date(row["enrolled_ns"]))),
        (ui("hub.ui.field.entries", lang), esc(row["count"])),
        (ui("hub.ui.field.head", lang), f"<code>{esc(row['hash'][:16])}…</code>"),
        (ui("hub.ui.field.key", lang), f"<code>{esc(row['key_id'])}</code>"),
        (ui("hub.ui.field.last_push", lang), esc(fmt_time(row["last_push_ns"]))),
        (ui("hub.ui.cal.overdue", lang), _count("overdue", counts.get("overdue", 0))),
        (ui("hub.ui.cal.due", lang), _count("due", counts.get("due", 0))),
    ]
    if principal.role >= Role.OPERATOR and principal.lab is None:
        pairs.append(
            (ui("hub.ui.field.refusals", lang), link("/ui/refusals", str(row["refusals"]), lab=lab))
        )
    body = ""
    if row["revoked_ns"] is not None:
        text = ui(
            "hub.ui.lab.revoked_because",
            lang,
            date=fmt_date(row["revoked_ns"]),
            reason=row["revoked_reason"] or "",
        )
        body += f'<p class="error revoked">{esc(text)}</p>'
    body += facts(pairs)
    body += "<p>" + link("/ui/traceability", ui("hub.ui.lab.graph", lang), lab=lab) + "</p>"
    body += section(
        lang,
        "hub.ui.labs.standards",
        fields(lang, "item", "kind", "description", "serial", "status", "due", "calibration"),
        [
            [
                link("/ui/standard", s["standard_id"], lab=lab, id=s["standard_id"]),
                *(esc(s[k]) for k in ("kind", "description", "serial", "status")),
                esc(fmt_date(s["due_ns"])),
                badge(s["calibration"], lang),
            ]
            for s in found["standards"]
        ],
    )
    body += section(
        lang,
        "hub.ui.lab.keys",
        fields(lang, "key", "source", "added"),
        [
            [
                f"<code>{esc(k['key_id'])}</code>",
                esc(ui(f"hub.ui.key.{k['source']}", lang)),
                esc(fmt_date(k["added_ns"])),
            ]
            for k in found["keys"]
        ],
        say_none=False,
    )
    body += rows_section(lang, "hub.ui.lab.kinds", KIND_COLUMNS, found["kinds"])
    body += rows_section(lang, "hub.ui.lab.recent", RECENT_COLUMNS, found["recent"], say_none=False)
    return page(request, lang, principal, str(row["name"]), body)


def _signature(text: str | None) -> str:
    if not text:
        return "—"
    try:
        verdict = orjson.loads(text)
    except orjson.JSONDecodeError:
        return esc(text[:80])
    if not isinstance(verdict, dict):
        return "—"
    state = str(verdict.get("state") or verdict.get("verdict") or verdict.get("status") or "")
    signer = verdict.get("signer") or verdict.get("subject") or ""
    if isinstance(signer, dict):
        signer = signer.get("subject") or signer.get("common_name") or ""
    return (
        f'<span class="sig sig-{escape(state)}">{esc(state)}</span> {esc(signer) if signer else ""}'
    )


def _certificate_row(c: dict[str, Any], lang: str) -> list[str]:
    if c["file_sha256"] and c["file_held"]:
        file_cell = link(f"/api/v1/attachments/{c['file_sha256']}", ui("hub.ui.standard.dcc", lang))
    elif c["file_sha256"]:
        file_cell = esc(ui("hub.ui.standard.not_held", lang))
    else:
        file_cell = "—"
    uncertainty = f"{c['expanded_uncertainty'] or '—'} ({c['coverage_factor'] or '—'})"
    return [
        esc(c["number"]),
        esc(c["issuer"]),
        esc(c["calibration_date"]),
        esc(c["due_date"] or fmt_date(c["due_ns"])),
        esc(c["value"]),
        esc(uncertainty),
        _signature(c["signature"]),
        file_cell,
    ]


def _subject(request: Request, name: str, most: int, reason: str) -> tuple[str, str]:
    """The lab (``?lab=``) and the item (``?{name}=``, 1 to ``most`` characters) a page shows."""
    lab = check_lab_id(request.query_params.get("lab", ""))
    item = request.query_params.get(name, "")
    if not 1 <= len(item) <= most:
        raise InvalidInputError(reason)
    return lab, item


def _identity(lang: str, row: dict[str, Any], keys: Sequence[str], state: str) -> str:
    """The facts of a standard or an instrument: its lab, ``keys`` of ``row``, due, state."""
    return facts(
        [
            (ui("hub.ui.field.lab", lang), link("/ui/lab", row["lab_name"], lab=row["lab"])),
            *((ui(f"hub.ui.field.{k}", lang), esc(row[k])) for k in keys),
            (ui("hub.ui.field.due", lang), esc(fmt_date(row["due_ns"]))),
            (ui("hub.ui.field.calibration", lang), badge(state, lang)),
        ]
    )


@router.get("/ui/standard")
async def standard_view(request: Request) -> Response:
    """A standard: its facts, certificates (DCC as received), traceability, evaluation."""
    lang, principal, context = await opening(request)
    lab, standard_id = _subject(request, "id", 200, "a standard id has 1 to 200 characters")
    async with context.db.read() as conn:
        found = await standard_page(conn, lab, standard_id, context.config.due_soon_days)
        graph = await traceability(conn, lab, standard_id)
    row = found["standard"]
    nominal = " ".join(x for x in (row["nominal"], row["unit"]) if x)
    keys = ("kind", "description", "nominal", "manufacturer", "model", "serial", "status")
    described = {**row, "lab": lab, "nominal": nominal, "due_ns": found["due_ns"]}
    body = _identity(lang, described, keys, found["calibration"])
    body += heading(lang, "hub.ui.standard.traceability") + _graph_block(graph, lang)
    body += section(
        lang,
        "hub.ui.standard.certificates",
        fields(lang, *CERTIFICATE_COLUMNS),
        [_certificate_row(c, lang) for c in found["certificates"]],
    )
    if found["evaluation"] is not None:
        evaluation = found["evaluation"]
        body += heading(lang, "hub.ui.standard.evaluation")
        body += (
            f'<p class="muted">{esc(fmt_time(evaluation["ts_ns"]))} · '
            f"<code>{esc(evaluation['kind'])}</code></p>"
        )
        body += f'<pre class="summary">{esc(evaluation["summary"][:4000])}</pre>'
    body += rows_section(
        lang, "hub.ui.standard.history", HISTORY_COLUMNS, found["history"], say_none=False
    )
    return page(request, lang, principal, ui("hub.ui.standard.title", lang, id=standard_id), body)


def _graph_block(graph: Any, lang: str) -> str:
    if not graph.nodes:
        return muted(lang, "hub.ui.graph.empty")
    verdict = "hub.ui.graph.complete" if graph.complete else "hub.ui.graph.broken"
    css = "complete" if graph.complete else "broken"
    block = f'<p class="graph-verdict {css}">{escape(ui(verdict, lang))}</p>'
    if graph.truncated:
        cut = ui("hub.ui.graph.truncated", lang, nodes=len(graph.nodes))
        block += f'<p class="muted">{escape(cut)}</p>'
    return block + f'<div class="graph">{render(graph, lang)}</div>'


@router.get("/ui/traceability")
async def traceability_view(request: Request) -> Response:
    """The traceability graph of a lab's standards (or one), breaks highlighted."""
    lang, principal, context = await opening(request)
    lab = check_lab_id(request.query_params.get("lab", ""))
    standard = request.query_params.get("standard") or None
    if standard is not None and len(standard) > 200:
        raise InvalidInputError("a standard id has 1 to 200 characters")
    async with context.db.read() as conn:
        found = await lab_row(conn, lab)
        graph = await traceability(conn, lab, standard)
    title = ui("hub.ui.graph.title", lang, lab=found["name"])
    return page(request, lang, principal, title, _graph_block(graph, lang))


@router.get("/ui/instrument")
async def instrument_view(request: Request) -> Response:
    """An instrument: its identity history and calibrations."""
    lang, principal, context = await opening(request)
    lab, key = _subject(request, "key", 512, "an instrument is named SITE/AGENT/INSTRUMENT")
    async with context.db.read() as conn:
        found = await instrument_page(conn, lab, key, context.config.due_soon_days)
    identity = ("manufacturer", "model", "serial", "firmware")
    body = _identity(lang, {**found["instrument"], "lab": lab}, identity, found["calibration"])
    body += rows_section(
        lang,
        "hub.ui.instrument.identities",
        IDENTITY_COLUMNS,
        found["identities"],
        say_none=False,
    )
    body += rows_section(
        lang, "hub.ui.instrument.calibrations", CALIBRATION_COLUMNS, found["calibrations"]
    )
    return page(request, lang, principal, ui("hub.ui.instrument.title", lang, key=key), body)


@router.get("/ui/refusals")
async def refusals_view(request: Request) -> Response:
    """Refused pushes, newest first, with the reason (operators)."""
    lang, principal, context = await opening(request, Role.OPERATOR)
    lab = request.query_params.get("lab") or None
    if lab is not None:
        check_lab_id(lab)
    async with context.db.read() as conn:
        rows = await list_refusals(conn, lab, None, 200)
    cells = []
    for r in rows:
        span = "—" if r["from_seq"] is None else f"{r['from_seq']}–{r['to_seq']}"
        reason_key = f"hub.reason.{r['reason']}"
        cells.append(
            [
                esc(fmt_time(r["received_ns"])),
                link("/ui/lab", r["lab"], lab=r["lab"]),
                f'<span class="reason reason-{escape(r["reason"])}">'
                f"{esc(message(reason_key, {}, lang))}</span>",
                esc(span),
                esc(message(r["code"], r["params"], lang)),
            ]
        )
    headers = fields(lang, "time", "lab", "reason", "range", "message")
    body = table(headers, cells) or muted(lang)
    return page(request, lang, principal, ui("hub.ui.refusals.title", lang), body)
