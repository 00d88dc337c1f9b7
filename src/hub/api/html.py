"""The hub pages' rendering kit: language, escaping, dates, links, tables, fact lists, titled
sections, the layout every page shares and the response that carries it (with the security
headers and the language cookie), and who may see a page. The routes are in :mod:`hub.api.pages`
(the records), :mod:`hub.api.search_page` and :mod:`hub.api.signin`."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from typing import Any, Final

from fastapi import HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from core.i18n import accepted_language
from hub.api.auth import PUBLIC, Principal, Role, StaffTokens, principal_of
from hub.api.context import HubContext, context_of
from hub.messages import ui

LANG_COOKIE: Final = "etalon_lang"
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def lang_of(request: Request) -> str:
    """The page's language: ``?lang=``, the cookie, the browser's most preferred one the hub
    speaks (by ``Accept-Language``'s weights, as the gateway's API reads it), English."""
    for candidate in (
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        accepted_language(request.headers.get("accept-language", "")),
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


def layout(request: Request, lang: str, principal: Principal, title: str, body: str) -> str:
    """A whole page: the header (navigation, who is signed in, the language switch) and ``body``."""
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


def respond(request: Request, lang: str, text: str, status: int = 200) -> HTMLResponse:
    """A page's response, remembering a language chosen by ``?lang=``."""
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
    return respond(request, lang, layout(request, lang, PUBLIC, str(status), body), status)


def facts(pairs: Sequence[tuple[str, str]]) -> str:
    """A definition list of (label, pre-escaped value) pairs."""
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in pairs)
        + "</dl>"
    )


def fields(lang: str, *keys: str) -> list[str]:
    """Column headers named by ``hub.ui.field.*`` keys."""
    return [ui(f"hub.ui.field.{k}", lang) for k in keys]


def muted(lang: str, key: str = "hub.ui.none") -> str:
    """A quiet note (by default: none)."""
    return f'<p class="muted">{escape(ui(key, lang))}</p>'


def heading(lang: str, key: str) -> str:
    """A section's title."""
    return f"<h2>{escape(ui(key, lang))}</h2>"


def section(
    lang: str,
    key: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    say_none: bool = True,
) -> str:
    """A titled table; an empty one says so (or shows nothing when ``say_none`` is false)."""
    return heading(lang, key) + (table(headers, rows) or (muted(lang) if say_none else ""))


CELLS: Final[Mapping[str, Callable[[Any], str]]] = {
    "text": esc,
    "date": lambda ns: esc(fmt_date(ns)),
    "time": lambda ns: esc(fmt_time(ns)),
    "code": lambda value: f"<code>{esc(value)}</code>",
}
"""How a column shows a row's value."""

Column = str | tuple[str, str, str]
"""A row's key shown as text under its ``hub.ui.field.*`` header of the same name, or (the
header, the row's key, how its cells show: a key of CELLS)."""


def _spec(column: Column) -> tuple[str, str, str]:
    return (column, column, "text") if isinstance(column, str) else column


def rows_section(
    lang: str,
    key: str,
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    *,
    say_none: bool = True,
) -> str:
    """A titled table of database rows, one cell a column."""
    specs = [_spec(c) for c in columns]
    return section(
        lang,
        key,
        fields(lang, *(header for header, _, _ in specs)),
        [[CELLS[how](row[name]) for _, name, how in specs] for row in rows],
        say_none=say_none,
    )


def page(request: Request, lang: str, principal: Principal, title: str, body: str) -> HTMLResponse:
    """``body`` laid out under ``title``, as a response."""
    return respond(request, lang, layout(request, lang, principal, title, body))


async def caller(request: Request, role: Role) -> Principal:
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


async def opening(request: Request, role: Role = Role.VIEWER) -> tuple[str, Principal, HubContext]:
    """What every page starts from: its language, the caller (if allowed) and the hub."""
    return lang_of(request), await caller(request, role), context_of(request)
