"""The hub's pages, rendered on the server in English or Vietnamese: the registry search, the
labs and their due/overdue counts, a lab, a standard, an instrument, the traceability graph (SVG,
breaks highlighted) and, for operators, the refused pushes.

No script runs in them: every value is escaped HTML, the graph is inline SVG, the language comes
from ``?lang=`` (remembered in a cookie) or the browser's, and a staff member signs in with a
token kept in an HttpOnly cookie that only GET pages read.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterable, Sequence
from html import escape
from importlib import resources
from typing import Any, Final

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import InvalidInputError
from hub.api.auth import PUBLIC, TOKEN_COOKIE, Principal, Role, StaffTokens, principal_of
from hub.api.context import context_of
from hub.db import fetch_all
from hub.graph import traceability
from hub.graph_svg import render
from hub.labs import check_lab_id, lab_row
from hub.messages import message, ui
from hub.search import SearchQuery, due_counts, instrument_page, lab_page, search, standard_page

router = APIRouter(include_in_schema=False)

LANG_COOKIE: Final = "etalon_lang"
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SEARCH_FIELDS: Final = ("q", "type", "kind", "lab", "province", "status", "calibration")


def lang_of(request: Request) -> str:
    """The page's language: ``?lang=``, the cookie, the browser's, English."""
    for candidate in (
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language", "")[:2].lower(),
    ):
        if candidate in ("en", "vi"):
            return candidate
    return "en"


def esc(value: Any) -> str:
    """Text for HTML (None as a dash)."""
    return "—" if value is None or value == "" else escape(str(value))


def fmt_date(ns: int | None) -> str:
    """A date, the same in both languages (ISO)."""
    if ns is None:
        return "—"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).date().isoformat()


def fmt_time(ns: int | None) -> str:
    """A time in UTC."""
    if ns is None:
        return "—"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def link(path: str, text: str, **params: Any) -> str:
    """An anchor to a page with query parameters."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    href = f"{path}?{query}" if query else path
    return f'<a href="{escape(href)}">{esc(text)}</a>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "grid") -> str:
    """A table of pre-escaped cells (an empty one says so)."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def badge(state: str, lang: str) -> str:
    """A calibration state as a coloured word."""
    return (
        f'<span class="badge cal-{escape(state)}">{escape(ui(f"hub.ui.cal.{state}", lang))}</span>'
    )


def _role_name(principal: Principal, lang: str) -> str:
    if principal.lab is not None:
        return principal.lab
    return ui(f"hub.ui.role.{principal.role.name.lower()}", lang)


def _other_lang_url(request: Request, lang: str) -> str:
    params = dict(request.query_params)
    params["lang"] = "vi" if lang == "en" else "en"
    return f"{request.url.path}?{urllib.parse.urlencode(params)}"


def _layout(request: Request, lang: str, principal: Principal, title: str, body: str) -> str:
    config = context_of(request).config
    nav = [
        ("/ui/", ui("hub.ui.nav.search", lang)),
        ("/ui/labs", ui("hub.ui.nav.labs", lang)),
    ]
    if principal.role >= Role.OPERATOR and principal.lab is None:
        nav.append(("/ui/refusals", ui("hub.ui.nav.refusals", lang)))
    items = "".join(
        f'<a href="{p}"{" class=current" if request.url.path == p else ""}>{escape(n)}</a>'
        for p, n in nav
    )
    signed = ui("hub.ui.signed_in", lang, name=principal.name, role=_role_name(principal, lang))
    if principal is PUBLIC:
        who = f'<a href="/ui/signin">{escape(ui("hub.ui.nav.signin", lang))}</a>'
    else:
        who = (
            f'<span class="who">{escape(signed)}</span> '
            f'<a href="/ui/signout">{escape(ui("hub.ui.nav.signout", lang))}</a>'
        )
    switch = (
        f'<a class="lang" href="{escape(_other_lang_url(request, lang))}">'
        f"{escape(ui('hub.ui.lang.switch', lang))}</a>"
    )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} — {escape(config.name)}</title>"
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/ui/hub.css"></head>'
        f'<body><header class="top"><span class="brand">{escape(ui("hub.ui.title", lang))}</span>'
        f'<nav>{items}</nav><span class="spacer"></span>{who} {switch}</header>'
        f"<main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def _html(request: Request, lang: str, text: str, status: int = 200) -> HTMLResponse:
    response = HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)
    if request.query_params.get("lang") in ("en", "vi"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict")
    return response


def error_page(request: Request, status: int, reason: str) -> Response:
    """An error as a page (for the exception handlers)."""
    lang = lang_of(request)
    key = {401: "hub.ui.error.signin", 403: "hub.ui.error.forbidden", 404: "hub.ui.error.not_found"}
    text = ui(key.get(status, "hub.ui.error.invalid"), lang, reason=reason)
    body = f'<p class="error">{esc(text)}</p>'
    return _html(request, lang, _layout(request, lang, PUBLIC, str(status), body), status)


async def _caller(request: Request, role: Role) -> Principal:
    """The caller if it may see a page needing ``role`` (raises an HTTP error otherwise)."""
    principal = await principal_of(request)
    staff: StaffTokens = request.app.state.staff
    if role is Role.VIEWER and staff.public_read:
        return principal
    if principal is PUBLIC:
        raise HTTPException(401, "sign in")
    if principal.role < role or (principal.lab is not None and role > Role.VIEWER):
        raise HTTPException(403, "forbidden")
    return principal


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


def _search_query(request: Request) -> tuple[SearchQuery, str | None]:
    params = {k: v for k, v in request.query_params.items() if k in (*SEARCH_FIELDS, "after")}
    params = {k: v for k, v in params.items() if v != ""}
    try:
        return SearchQuery.model_validate(params), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return SearchQuery(), f"{where}: {first.get('msg', '')}"


def _select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str | None) -> str:
    opts = "".join(
        f'<option value="{escape(v)}"{" selected" if v == (chosen or "") else ""}>'
        f"{escape(t)}</option>"
        for v, t in options
    )
    return f'<label>{escape(label)} <select name="{name}">{opts}</select></label>'


def _input(name: str, label: str, value: str | None) -> str:
    return (
        f'<label>{escape(label)} <input name="{name}" value="{escape(value or "")}" '
        'maxlength="100"></label>'
    )


@router.get("/ui/")
async def search_page(request: Request) -> Response:
    """Search instruments and standards across labs."""
    lang = lang_of(request)
    principal = await _caller(request, Role.VIEWER)
    context = context_of(request)
    query, problem = _search_query(request)
    any_ = ui("hub.ui.any", lang)
    form = (
        '<form class="search" method="get" action="/ui/">'
        + _input("q", ui("hub.ui.field.q", lang), query.q)
        + _select(
            "type",
            ui("hub.ui.field.type", lang),
            [("", any_)] + [(v, ui(f"hub.ui.type.{v}", lang)) for v in ("instrument", "standard")],
            query.type,
        )
        + _input("kind", ui("hub.ui.field.kind", lang), query.kind)
        + _input("lab", ui("hub.ui.field.lab", lang), query.lab)
        + _input("province", ui("hub.ui.field.province", lang), query.province)
        + _input("status", ui("hub.ui.field.status", lang), query.status)
        + _select(
            "calibration",
            ui("hub.ui.field.calibration", lang),
            [("", any_)]
            + [(v, ui(f"hub.ui.cal.{v}", lang)) for v in ("ok", "due", "overdue", "unknown")],
            query.calibration,
        )
        + f'<input type="hidden" name="lang" value="{lang}">'
        + f'<button type="submit">{escape(ui("hub.ui.search.submit", lang))}</button></form>'
    )
    body = form
    if problem is not None:
        body += f'<p class="error">{esc(ui("hub.ui.error.invalid", lang, reason=problem))}</p>'
    async with context.db.read() as conn:
        found = await search(conn, query, context.config.due_soon_days)
    rows = [
        [
            link("/ui/lab", item["lab_name"], lab=item["lab"]),
            esc(item["province"]),
            esc(ui(f"hub.ui.type.{item['item_type']}", lang)),
            _item_link(item),
            esc(item["kind"]),
            esc(item["manufacturer"]),
            esc(item["model"]),
            esc(item["serial"]),
            esc(item["status"]),
            esc(fmt_date(item["due_ns"])),
            badge(item["calibration"], lang),
        ]
        for item in found["items"]
    ]
    headers = [
        ui(f"hub.ui.field.{k}", lang)
        for k in (
            "lab",
            "province",
            "type",
            "item",
            "kind",
            "manufacturer",
            "model",
            "serial",
            "status",
            "due",
            "calibration",
        )
    ]
    result = table(headers, rows)
    body += result or f'<p class="muted">{escape(ui("hub.ui.search.nothing", lang))}</p>'
    params = {k: getattr(query, k) for k in SEARCH_FIELDS if getattr(query, k) is not None}
    if found["next"] is not None:
        body += (
            "<p>"
            + link("/ui/", ui("hub.ui.search.next", lang), **params, after=found["next"])
            + "</p>"
        )
    if principal is not PUBLIC and principal.role >= Role.VIEWER:
        body += (
            '<p class="exports">'
            + link("/api/v1/export/registry.json", ui("hub.ui.export.json", lang), **params)
            + " · "
            + link("/api/v1/export/registry.csv", ui("hub.ui.export.csv", lang), **params)
            + "</p>"
        )
    title = ui("hub.ui.search.title", lang)
    return _html(request, lang, _layout(request, lang, principal, title, body))


def _item_link(item: dict[str, Any]) -> str:
    if item["item_type"] == "standard":
        return link("/ui/standard", item["item_key"], lab=item["lab"], id=item["item_key"])
    return link("/ui/instrument", item["item_key"], lab=item["lab"], key=item["item_key"])


@router.get("/ui/labs")
async def labs_page(request: Request) -> Response:
    """Every lab with its calibration due/overdue counts."""
    lang = lang_of(request)
    principal = await _caller(request, Role.VIEWER)
    context = context_of(request)
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
            f'<span class="count cal-overdue">{c["overdue"]}</span>',
            f'<span class="count cal-due">{c["due"]}</span>',
            esc(c["unknown"]),
            esc(heads.get(c["lab"], {}).get("count")),
            esc(fmt_time(heads.get(c["lab"], {}).get("last_push_ns"))),
            esc(ui("hub.ui.lab.revoked" if c["revoked"] else "hub.ui.lab.active", lang)),
        ]
        for c in counts
    ]
    headers = [
        ui("hub.ui.field.lab", lang),
        ui("hub.ui.field.name", lang),
        ui("hub.ui.field.province", lang),
        ui("hub.ui.labs.standards", lang),
        ui("hub.ui.labs.instruments", lang),
        ui("hub.ui.cal.overdue", lang),
        ui("hub.ui.cal.due", lang),
        ui("hub.ui.cal.unknown", lang),
        ui("hub.ui.field.entries", lang),
        ui("hub.ui.field.last_push", lang),
        ui("hub.ui.field.state", lang),
    ]
    body = table(headers, rows) or f'<p class="muted">{escape(ui("hub.ui.none", lang))}</p>'
    return _html(
        request, lang, _layout(request, lang, principal, ui("hub.ui.labs.title", lang), body)
    )


def _facts(pairs: Sequence[tuple[str, str]]) -> str:
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in pairs)
        + "</dl>"
    )


@router.get("/ui/lab")
async def lab_view(request: Request) -> Response:
    """A lab: identity, chain, due counts, keys, standards, entries by kind."""
    lang = lang_of(request)
    principal = await _caller(request, Role.VIEWER)
    context = context_of(request)
    lab = check_lab_id(request.query_params.get("lab", ""))
    async with context.db.read() as conn:
        page = await lab_page(conn, lab, context.config.due_soon_days)
    row, counts = page["lab"], page["counts"]
    facts = [
        (ui("hub.ui.field.lab", lang), esc(row["id"])),
        (ui("hub.ui.field.province", lang), esc(row["province"])),
        (ui("hub.ui.field.enrolled", lang), esc(fmt_date(row["enrolled_ns"]))),
        (ui("hub.ui.field.entries", lang), esc(row["count"])),
        (ui("hub.ui.field.head", lang), f"<code>{esc(row['hash'][:16])}…</code>"),
        (ui("hub.ui.field.key", lang), f"<code>{esc(row['key_id'])}</code>"),
        (ui("hub.ui.field.last_push", lang), esc(fmt_time(row["last_push_ns"]))),
        (
            ui("hub.ui.cal.overdue", lang),
            f'<span class="count cal-overdue">{counts.get("overdue", 0)}</span>',
        ),
        (ui("hub.ui.cal.due", lang), f'<span class="count cal-due">{counts.get("due", 0)}</span>'),
    ]
    if principal.role >= Role.OPERATOR and principal.lab is None:
        facts.append(
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
    body += _facts(facts)
    body += "<p>" + link("/ui/traceability", ui("hub.ui.lab.graph", lang), lab=lab) + "</p>"
    body += f"<h2>{escape(ui('hub.ui.labs.standards', lang))}</h2>"
    body += (
        table(
            [
                ui(f"hub.ui.field.{k}", lang)
                for k in ("item", "kind", "description", "serial", "status", "due", "calibration")
            ],
            [
                [
                    link("/ui/standard", s["standard_id"], lab=lab, id=s["standard_id"]),
                    esc(s["kind"]),
                    esc(s["description"]),
                    esc(s["serial"]),
                    esc(s["status"]),
                    esc(fmt_date(s["due_ns"])),
                    badge(s["calibration"], lang),
                ]
                for s in page["standards"]
            ],
        )
        or f'<p class="muted">{escape(ui("hub.ui.none", lang))}</p>'
    )
    body += f"<h2>{escape(ui('hub.ui.lab.keys', lang))}</h2>"
    body += table(
        [
            ui("hub.ui.field.key", lang),
            ui("hub.ui.field.source", lang),
            ui("hub.ui.field.added", lang),
        ],
        [
            [
                f"<code>{esc(k['key_id'])}</code>",
                esc(ui(f"hub.ui.key.{k['source']}", lang)),
                esc(fmt_date(k["added_ns"])),
            ]
            for k in page["keys"]
        ],
    )
    body += f"<h2>{escape(ui('hub.ui.lab.kinds', lang))}</h2>"
    body += (
        table(
            [ui("hub.ui.field.kind_entries", lang), ui("hub.ui.field.count", lang)],
            [[f"<code>{esc(k['kind'])}</code>", esc(k["entries"])] for k in page["kinds"]],
        )
        or f'<p class="muted">{escape(ui("hub.ui.none", lang))}</p>'
    )
    body += f"<h2>{escape(ui('hub.ui.lab.recent', lang))}</h2>"
    body += table(
        [
            ui(f"hub.ui.field.{k}", lang)
            for k in ("seq", "time", "kind_entries", "subject", "actor")
        ],
        [
            [
                esc(e["seq"]),
                esc(fmt_time(e["ts_ns"])),
                f"<code>{esc(e['kind'])}</code>",
                esc(e["subject"]),
                esc(e["actor"]),
            ]
            for e in page["recent"]
        ],
    )
    return _html(request, lang, _layout(request, lang, principal, str(row["name"]), body))


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


@router.get("/ui/standard")
async def standard_view(request: Request) -> Response:
    """A standard: its facts, certificates (DCC as received), traceability, evaluation."""
    lang = lang_of(request)
    principal = await _caller(request, Role.VIEWER)
    context = context_of(request)
    lab = check_lab_id(request.query_params.get("lab", ""))
    standard_id = request.query_params.get("id", "")
    if not 1 <= len(standard_id) <= 200:
        raise InvalidInputError("a standard id has 1 to 200 characters")
    async with context.db.read() as conn:
        page = await standard_page(conn, lab, standard_id, context.config.due_soon_days)
        graph = await traceability(conn, lab, standard_id)
    row = page["standard"]
    nominal = " ".join(x for x in (row["nominal"], row["unit"]) if x)
    body = _facts(
        [
            (ui("hub.ui.field.lab", lang), link("/ui/lab", row["lab_name"], lab=lab)),
            (ui("hub.ui.field.kind", lang), esc(row["kind"])),
            (ui("hub.ui.field.description", lang), esc(row["description"])),
            (ui("hub.ui.field.nominal", lang), esc(nominal)),
            (ui("hub.ui.field.manufacturer", lang), esc(row["manufacturer"])),
            (ui("hub.ui.field.model", lang), esc(row["model"])),
            (ui("hub.ui.field.serial", lang), esc(row["serial"])),
            (ui("hub.ui.field.status", lang), esc(row["status"])),
            (ui("hub.ui.field.due", lang), esc(fmt_date(page["due_ns"]))),
            (ui("hub.ui.field.calibration", lang), badge(page["calibration"], lang)),
        ]
    )
    body += f"<h2>{escape(ui('hub.ui.standard.traceability', lang))}</h2>"
    body += _graph_block(graph, lang)
    body += f"<h2>{escape(ui('hub.ui.standard.certificates', lang))}</h2>"
    certificates = []
    for c in page["certificates"]:
        if c["file_sha256"] and c["file_held"]:
            file_cell = link(
                f"/api/v1/attachments/{c['file_sha256']}", ui("hub.ui.standard.dcc", lang)
            )
        elif c["file_sha256"]:
            file_cell = esc(ui("hub.ui.standard.not_held", lang))
        else:
            file_cell = "—"
        uncertainty = f"{c['expanded_uncertainty'] or '—'} ({c['coverage_factor'] or '—'})"
        certificates.append(
            [
                esc(c["number"]),
                esc(c["issuer"]),
                esc(c["calibration_date"]),
                esc(c["due_date"] or fmt_date(c["due_ns"])),
                esc(c["value"]),
                esc(uncertainty),
                _signature(c["signature"]),
                file_cell,
            ]
        )
    body += (
        table(
            [
                ui(f"hub.ui.field.{k}", lang)
                for k in (
                    "number",
                    "issuer",
                    "calibrated",
                    "due",
                    "value",
                    "uncertainty",
                    "signature",
                    "file",
                )
            ],
            certificates,
        )
        or f'<p class="muted">{escape(ui("hub.ui.none", lang))}</p>'
    )
    if page["evaluation"] is not None:
        evaluation = page["evaluation"]
        body += f"<h2>{escape(ui('hub.ui.standard.evaluation', lang))}</h2>"
        body += (
            f'<p class="muted">{esc(fmt_time(evaluation["ts_ns"]))} · '
            f"<code>{esc(evaluation['kind'])}</code></p>"
        )
        body += f'<pre class="summary">{esc(evaluation["summary"][:4000])}</pre>'
    body += f"<h2>{escape(ui('hub.ui.standard.history', lang))}</h2>"
    body += table(
        [ui(f"hub.ui.field.{k}", lang) for k in ("seq", "time", "actor")],
        [[esc(h["seq"]), esc(fmt_time(h["ts_ns"])), esc(h["actor"])] for h in page["history"]],
    )
    title = ui("hub.ui.standard.title", lang, id=standard_id)
    return _html(request, lang, _layout(request, lang, principal, title, body))


def _graph_block(graph: Any, lang: str) -> str:
    if not graph.nodes:
        return f'<p class="muted">{escape(ui("hub.ui.graph.empty", lang))}</p>'
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
    lang = lang_of(request)
    principal = await _caller(request, Role.VIEWER)
    context = context_of(request)
    lab = check_lab_id(request.query_params.get("lab", ""))
    standard = request.query_params.get("standard") or None
    if standard is not None and len(standard) > 200:
        raise InvalidInputError("a standard id has 1 to 200 characters")
    async with context.db.read() as conn:
        found = await lab_row(conn, lab)
        graph = await traceability(conn, lab, standard)
    body = _graph_block(graph, lang)
    title = ui("hub.ui.graph.title", lang, lab=found["name"])
    return _html(request, lang, _layout(request, lang, principal, title, body))


@router.get("/ui/instrument")
async def instrument_view(request: Request) -> Response:
    """An instrument: its identity history and calibrations."""
    lang = lang_of(request)
    principal = await _caller(request, Role.VIEWER)
    context = context_of(request)
    lab = check_lab_id(request.query_params.get("lab", ""))
    key = request.query_params.get("key", "")
    if not 1 <= len(key) <= 512:
        raise InvalidInputError("an instrument is named SITE/AGENT/INSTRUMENT")
    async with context.db.read() as conn:
        page = await instrument_page(conn, lab, key, context.config.due_soon_days)
    row = page["instrument"]
    body = _facts(
        [
            (ui("hub.ui.field.lab", lang), link("/ui/lab", row["lab_name"], lab=lab)),
            (ui("hub.ui.field.manufacturer", lang), esc(row["manufacturer"])),
            (ui("hub.ui.field.model", lang), esc(row["model"])),
            (ui("hub.ui.field.serial", lang), esc(row["serial"])),
            (ui("hub.ui.field.firmware", lang), esc(row["firmware"])),
            (ui("hub.ui.field.due", lang), esc(fmt_date(row["due_ns"]))),
            (ui("hub.ui.field.calibration", lang), badge(page["calibration"], lang)),
        ]
    )
    body += f"<h2>{escape(ui('hub.ui.instrument.identities', lang))}</h2>"
    body += table(
        [
            ui(f"hub.ui.field.{k}", lang)
            for k in ("seq", "manufacturer", "model", "serial", "firmware", "first_seen")
        ],
        [
            [
                esc(i["entry_seq"]),
                esc(i["manufacturer"]),
                esc(i["model"]),
                esc(i["serial"]),
                esc(i["firmware"]),
                esc(fmt_time(i["first_seen_ns"])),
            ]
            for i in page["identities"]
        ],
    )
    body += f"<h2>{escape(ui('hub.ui.instrument.calibrations', lang))}</h2>"
    body += (
        table(
            [
                ui(f"hub.ui.field.{k}", lang)
                for k in ("run", "serial", "procedure", "decision", "calibrated", "due")
            ],
            [
                [
                    esc(c["run"]),
                    esc(c["serial"]),
                    esc(c["procedure_id"]),
                    esc(c["decision"]),
                    esc(fmt_date(c["finished_ns"])),
                    esc(fmt_date(c["due_ns"])),
                ]
                for c in page["calibrations"]
            ],
        )
        or f'<p class="muted">{escape(ui("hub.ui.none", lang))}</p>'
    )
    title = ui("hub.ui.instrument.title", lang, key=key)
    return _html(request, lang, _layout(request, lang, principal, title, body))


@router.get("/ui/refusals")
async def refusals_view(request: Request) -> Response:
    """Refused pushes, newest first, with the reason (operators)."""
    lang = lang_of(request)
    principal = await _caller(request, Role.OPERATOR)
    context = context_of(request)
    lab = request.query_params.get("lab") or None
    if lab is not None:
        check_lab_id(lab)
    async with context.db.read() as conn:
        rows = await fetch_all(
            conn,
            "SELECT id, lab, received_ns, reason, code, params, from_seq, to_seq FROM refusals "
            "WHERE (%s::text IS NULL OR lab = %s) ORDER BY id DESC LIMIT 200",
            (lab, lab),
        )
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
                esc(message(r["code"], orjson.loads(r["params"]), lang)),
            ]
        )
    body = (
        table(
            [ui(f"hub.ui.field.{k}", lang) for k in ("time", "lab", "reason", "range", "message")],
            cells,
        )
        or f'<p class="muted">{escape(ui("hub.ui.none", lang))}</p>'
    )
    title = ui("hub.ui.refusals.title", lang)
    return _html(request, lang, _layout(request, lang, principal, title, body))


@router.get("/ui/signin")
async def signin_form(request: Request, refused: bool = False) -> Response:
    """The sign-in form (a staff token)."""
    lang = lang_of(request)
    note = f'<p class="error">{escape(ui("hub.ui.signin.refused", lang))}</p>' if refused else ""
    body = (
        f"{note}<p>{escape(ui('hub.ui.signin.prompt', lang))}</p>"
        '<form method="post" action="/ui/signin" class="signin">'
        f"<label>{escape(ui('hub.ui.signin.token', lang))} "
        '<input type="password" name="token" autocomplete="off" maxlength="200" required></label> '
        f'<button type="submit">{escape(ui("hub.ui.nav.signin", lang))}</button></form>'
    )
    return _html(
        request, lang, _layout(request, lang, PUBLIC, ui("hub.ui.signin.title", lang), body)
    )


@router.post("/ui/signin")
async def signin(request: Request) -> Response:
    """Check a staff token and keep it in an HttpOnly cookie."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > 4096:
            return RedirectResponse("/ui/signin?refused=true", status_code=303)
    token = (urllib.parse.parse_qs(raw.decode("utf-8", "replace")).get("token") or [""])[0].strip()
    staff: StaffTokens = request.app.state.staff
    if not token or staff.lookup(token) is None:
        return RedirectResponse("/ui/signin?refused=true", status_code=303)
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=context_of(request).config.api.tls is not None,
        max_age=12 * 3600,
    )
    return response


@router.get("/ui/signout")
async def signout() -> Response:
    """Forget the token."""
    response = RedirectResponse("/ui/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response
