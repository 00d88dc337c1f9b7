"""A lab's routes: where its chain stands at the hub, its pushes, its certificate files.

::

    GET  /api/v1/labs/{lab}/cursor                     → the hub's head for the lab
    POST /api/v1/labs/{lab}/segments                   (a ledger segment, JSON) → accepted | refused
    GET  /api/v1/labs/{lab}/attachments/missing        → files its certificates name, not held
    PUT  /api/v1/labs/{lab}/attachments/{sha256}       (the file's bytes) → stored | held already
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from core.http_api import read_at_most
from hub import attachments
from hub.api.auth import LabCaller, Role
from hub.api.context import context_of
from hub.ingest import TOO_LARGE
from hub.labs import check_lab_id
from hub.messages import message

router = APIRouter(prefix="/api/v1/labs/{lab}", tags=["lab"])


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None past ``limit`` bytes (read no further than that)."""
    return await read_at_most(request.headers.get("content-length"), request.stream(), limit)


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang", "en")
    return lang if lang in ("en", "vi") else "en"


@router.get("/cursor")
async def cursor(request: Request, lab: str, caller: LabCaller) -> dict[str, Any]:
    """Where the lab's chain stands at the hub: push from ``count + 1``."""
    check_lab_id(lab)
    head = await context_of(request).ingest.cursor(lab)
    return head.model_dump(mode="json")


@router.post("/segments")
async def push_segment(request: Request, lab: str, caller: LabCaller) -> Response:
    """Verify a ledger segment against the lab's enrolled keys and store it, or refuse it
    (409, with the reason; 403 for a revoked lab; 413 past the size limit; 422 malformed)."""
    context = context_of(request)
    limit = context.config.api.max_segment_bytes
    body = await read_body(request, limit)
    remote = request.client.host if request.client else None
    if body is None:
        outcome = await context.ingest.refuse(
            lab, TOO_LARGE, "hub.refusal.too_large", {"limit": limit}, remote=remote
        )
        return JSONResponse(outcome.as_json(_lang(request)), status_code=413)
    outcome = await context.ingest.push(lab, body, remote)
    if outcome.accepted:
        status = 200
    elif outcome.reason == "revoked":
        status = 403
    elif outcome.reason == "malformed":
        status = 422
    else:
        status = 409
    return JSONResponse(outcome.as_json(_lang(request)), status_code=status)


@router.get("/attachments/missing")
async def missing_attachments(request: Request, lab: str, caller: LabCaller) -> dict[str, Any]:
    """Certificate files the lab's entries name that the hub does not hold (up to 100)."""
    return {"missing": await attachments.missing(context_of(request).db, lab)}


@router.put("/attachments/{sha256}")
async def put_attachment(
    request: Request, lab: str, sha256: str, caller: LabCaller
) -> JSONResponse:
    """A certificate file, by its SHA-256 (201 stored, 200 held already)."""
    attachments.check_sha256(sha256)
    context = context_of(request)
    limit = context.config.api.max_attachment_bytes
    if caller.role < Role.VIEWER:  # a revoked lab
        return JSONResponse(
            {"detail": message("hub.refusal.revoked", {"lab": lab, "reason": ""}, _lang(request))},
            status_code=403,
        )
    body = await read_body(request, limit)
    if body is None:
        return JSONResponse(
            {"detail": message("hub.refusal.too_large", {"limit": limit}, _lang(request))},
            status_code=413,
        )
    stored = await attachments.store(context.db, lab, sha256, body)
    return JSONResponse({"sha256": sha256, "stored": stored}, status_code=201 if stored else 200)
