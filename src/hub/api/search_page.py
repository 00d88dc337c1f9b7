"""The hub's search page: instruments and standards across labs, filtered by a form."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from hub.api.auth import PUBLIC, Role
from hub.api.html import (
    badge,
    esc,
    fields,
    fmt_date,
    link,
    muted,
    opening,
    page,
    table,
)
from hub.messages import ui
from hub.search import SearchQuery, search

router = APIRouter(include_in_schema=False)

SEARCH_FIELDS: Final = ("q", "type", "kind", "lab", "province", "status", "calibration")


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
    lang, principal, context = await opening(request)
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
        + "".join(
            _input(name, ui(f"hub.ui.field.{name}", lang), getattr(query, name))
            for name in ("kind", "lab", "province", "status")
        )
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
            *(esc(item[k]) for k in ("kind", "manufacturer", "model", "serial", "status")),
            esc(fmt_date(item["due_ns"])),
            badge(item["calibration"], lang),
        ]
        for item in found["items"]
    ]
    headers = fields(lang, "lab", "province", "type", "item", "kind", "manufacturer", "model")
    headers += fields(lang, "serial", "status", "due", "calibration")
    body += table(headers, rows) or muted(lang, "hub.ui.search.nothing")
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
    return page(request, lang, principal, ui("hub.ui.search.title", lang), body)


def _item_link(item: dict[str, Any]) -> str:
    if item["item_type"] == "standard":
        return link("/ui/standard", item["item_key"], lab=item["lab"], id=item["item_key"])
    return link("/ui/instrument", item["item_key"], lab=item["lab"], key=item["item_key"])
