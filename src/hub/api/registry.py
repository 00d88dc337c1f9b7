"""What the hub serves to readers: the registry search, labs and their due counts, a standard,
an instrument, the traceability graph (JSON and SVG), certificate files as received, exports.

Open to the public when ``api.public_read`` is on, except the exports of whole registries, which
always need a token (staff, or an enrolled lab's).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from core.errors import InvalidInputError
from edge_agent import __version__
from hub import attachments, exports
from hub.api.auth import Reader, Role, TokenHolder
from hub.api.context import context_of
from hub.api.params import AnyStandardQuery, LabId, LabQuery, StandardId
from hub.graph import Graph, traceability
from hub.graph_svg import render
from hub.labs import check_lab_id, lab_row, list_labs
from hub.search import SearchQuery, due_counts, instrument_page, lab_page, search, standard_page
from ledger import segment_json_schema

router = APIRouter(prefix="/api/v1", tags=["registry"])

Lang = Annotated[str, Query(pattern=r"^(en|vi)$")]


@router.get("/hub")
async def hub_info(request: Request, caller: Reader) -> dict[str, Any]:
    """Who this hub is, its audit chain's public key, and how many labs it holds."""
    context = context_of(request)
    async with context.db.read() as conn:
        labs = await list_labs(conn)
    return {
        "id": context.config.id,
        "name": context.config.name,
        "version": __version__,
        "audit_key": context.audit.key.public_key.to_text(),
        "audit_key_id": context.audit.key.key_id,
        "labs": len(labs),
        "time_ns": time.time_ns(),
    }


@router.get("/hub/key")
async def hub_key(request: Request) -> Response:
    """The public key of the hub's audit chain (PEM): anyone may verify what it signed."""
    key = context_of(request).audit.key.public_key
    return Response(key.to_pem(), media_type="application/x-pem-file")


@router.get("/labs")
async def labs(request: Request, caller: Reader) -> dict[str, Any]:
    """Every enrolled lab: who it is, where its chain stands, its due/overdue counts."""
    context = context_of(request)
    async with context.db.read() as conn:
        rows = await list_labs(conn)
        counts = {c["lab"]: c for c in await due_counts(conn, context.config.due_soon_days)}
    for row in rows:
        row["calibration"] = {
            key: counts.get(row["id"], {}).get(key, 0)
            for key in ("standards", "instruments", "overdue", "due", "unknown")
        }
        if caller.role < Role.OPERATOR:
            row.pop("refusals", None)
            row.pop("last_refusal_ns", None)
            row.pop("contact", None)
    return {"labs": rows}


@router.get("/labs/{lab}")
async def lab_detail(request: Request, lab: LabId, caller: Reader) -> dict[str, Any]:
    """A lab: its identity, keys, counts, standards and its entries by kind."""
    context = context_of(request)
    async with context.db.read() as conn:
        page = await lab_page(conn, lab, context.config.due_soon_days)
    if caller.role < Role.OPERATOR:
        page["lab"].pop("refusals", None)
        page["lab"].pop("contact", None)
    return page


@router.get("/search")
async def search_registry(
    request: Request, query: Annotated[SearchQuery, Query()], caller: Reader
) -> dict[str, Any]:
    """Instruments and standards across labs (kind, serial, model, lab, province, status,
    calibration state), a page at a time (``after`` = the previous page's ``next``)."""
    context = context_of(request)
    async with context.db.read() as conn:
        return await search(conn, query, context.config.due_soon_days)


@router.get("/labs/{lab}/standards/{standard_id}")
async def standard(
    request: Request, lab: LabId, standard_id: StandardId, caller: Reader
) -> dict[str, Any]:
    """A standard of a lab: its row, certificates, latest evaluation and ledger entries."""
    context = context_of(request)
    async with context.db.read() as conn:
        return await standard_page(conn, lab, standard_id, context.config.due_soon_days)


@router.get("/labs/{lab}/instruments/{instrument:path}")
async def instrument(
    request: Request, lab: LabId, instrument: str, caller: Reader
) -> dict[str, Any]:
    """An instrument of a lab: its identity history and calibrations."""
    if not 1 <= len(instrument) <= 512:
        raise InvalidInputError("an instrument is named SITE/AGENT/INSTRUMENT")
    context = context_of(request)
    async with context.db.read() as conn:
        return await instrument_page(conn, lab, instrument, context.config.due_soon_days)


@router.get("/traceability")
async def traceability_json(
    request: Request,
    caller: Reader,
    lab: LabQuery,
    standard: AnyStandardQuery = None,
) -> dict[str, Any]:
    """The traceability graph above a lab's standard (or all its standards), with breaks."""
    return (await _graph(request, lab, standard)).as_json()


async def _graph(request: Request, lab: str, standard: str | None) -> Graph:
    async with context_of(request).db.read() as conn:
        await lab_row(conn, check_lab_id(lab))
        return await traceability(conn, lab, standard)


@router.get("/traceability.svg")
async def traceability_svg(
    request: Request,
    caller: Reader,
    lab: LabQuery,
    standard: AnyStandardQuery = None,
    lang: Lang = "en",
) -> Response:
    """The same graph drawn as SVG (breaks highlighted)."""
    graph = await _graph(request, lab, standard)
    return Response(render(graph, lang), media_type="image/svg+xml")


@router.get("/attachments/{sha256}")
async def attachment(request: Request, sha256: str, caller: Reader) -> Response:
    """A certificate file as the lab received it, byte for byte."""
    found = await attachments.fetch(context_of(request).db, sha256)
    extension = "pdf" if found["media_type"] == "application/pdf" else "xml"
    return Response(
        bytes(found["content"]),
        media_type=found["media_type"],
        headers={
            "Content-Disposition": f'attachment; filename="{sha256}.{extension}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/export/registry.json")
async def export_json(
    request: Request, query: Annotated[SearchQuery, Query()], caller: TokenHolder
) -> StreamingResponse:
    """The registry (filtered like the search, every page) as JSON (schema: ``hub-export``)."""
    context = context_of(request)
    rows = exports.registry_json(context.db, context.config.id, query, context.config.due_soon_days)
    return _download(rows, "application/json", "registry.json")


@router.get("/export/registry.csv")
async def export_csv(
    request: Request, query: Annotated[SearchQuery, Query()], caller: TokenHolder
) -> StreamingResponse:
    """The registry as CSV (formula cells neutralised)."""
    context = context_of(request)
    rows = exports.registry_csv(context.db, query, context.config.due_soon_days)
    return _download(rows, "text/csv; charset=utf-8", "registry.csv")


def _download(content: AsyncIterator[bytes], media_type: str, filename: str) -> StreamingResponse:
    """A streamed export the browser saves as ``filename``."""
    return StreamingResponse(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/schemas/{name}")
async def schema(name: Annotated[str, Path(pattern=r"^(hub-export|ledger-segment)$")]) -> Any:
    """A published JSON Schema: the export, or the segment a lab pushes."""
    if name == "hub-export":
        return exports.RegistryExport.model_json_schema()
    return segment_json_schema()
