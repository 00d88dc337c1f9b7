"""The hub's staff routes: refused pushes and the audit chain (operators), enrolment,
revocation, push tokens and traceability links (administrators; ``etalon hub …`` does the same
on the hub's machine)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from hub.api.auth import Admin, Operator, Reader
from hub.api.context import context_of
from hub.api.params import AnyLabQuery, LabId
from hub.audit import audit_page, verify_audit
from hub.ingest import list_refusals
from hub.labs import Enrolment, Revocation, enrol, reissue_token, revoke
from hub.links import LinkSpec, add_link, list_links, withdraw_link
from hub.messages import messages
from ledger import PublicKey

router = APIRouter(prefix="/api/v1", tags=["staff"])

LinkId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/refusals")
async def refusals(
    request: Request,
    caller: Operator,
    lab: AnyLabQuery = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Refused pushes, newest first, with their reason in English and Vietnamese."""
    async with context_of(request).db.read() as conn:
        rows = await list_refusals(conn, lab, before, limit)
    for row in rows:
        row["messages"] = messages(row["code"], row["params"])
    return {"refusals": rows}


@router.get("/audit")
async def audit_entries(
    request: Request,
    caller: Operator,
    after: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """The hub's audit chain (enrolments, revocations, refusals, links) and its checkpoints."""
    async with context_of(request).db.read() as conn:
        return await audit_page(conn, after, limit)


@router.get("/audit/verify")
async def audit_verify(request: Request, caller: Operator) -> Any:
    """Walk the whole audit chain against its signed checkpoints and the hub's key."""
    context = context_of(request)
    async with context.db.read() as conn:
        report = await verify_audit(conn, context.config.id, [context.audit.key.public_key])
    return report.model_dump(mode="json")


@router.post("/admin/labs", status_code=201)
async def enrol_lab(request: Request, enrolment: Enrolment, caller: Admin) -> dict[str, Any]:
    """Enrol a lab with its ledger public key; the answer holds its push token (shown once)."""
    token = await context_of(request).audited(
        lambda conn, audit: enrol(conn, audit, enrolment, caller.name)
    )
    return {
        "lab": enrolment.lab,
        "key": PublicKey.from_text(enrolment.public_key).key_id,
        "token": token,
    }


@router.post("/admin/labs/{lab}/revoke")
async def revoke_lab(
    request: Request, lab: LabId, revocation: Revocation, caller: Admin
) -> dict[str, Any]:
    """Revoke a lab: its later pushes are refused (and recorded)."""
    await context_of(request).audited(
        lambda conn, audit: revoke(conn, audit, lab, revocation, caller.name)
    )
    return {"lab": lab, "revoked": True}


@router.post("/admin/labs/{lab}/token")
async def new_token(request: Request, lab: LabId, caller: Admin) -> dict[str, Any]:
    """A new push token for a lab (the old one stops working)."""
    token = await context_of(request).audited(
        lambda conn, audit: reissue_token(conn, audit, lab, caller.name)
    )
    return {"lab": lab, "token": token}


@router.get("/links")
async def links(
    request: Request,
    caller: Reader,
    lab: AnyLabQuery = None,
) -> dict[str, Any]:
    """Traceability links (the institute's and those from certificates)."""
    async with context_of(request).db.read() as conn:
        return {"links": await list_links(conn, lab)}


@router.post("/admin/links", status_code=201)
async def add(request: Request, spec: LinkSpec, caller: Admin) -> dict[str, Any]:
    """Type in a traceability link (national designation, key comparison, CMC, calibration)."""
    link_id = await context_of(request).audited(
        lambda conn, audit: add_link(conn, audit, spec, caller.name)
    )
    return {"id": link_id}


@router.post("/admin/links/{link_id}/withdraw")
async def withdraw(
    request: Request, link_id: LinkId, revocation: Revocation, caller: Admin
) -> JSONResponse:
    """Withdraw an institute link (kept on record, out of the graph)."""
    await context_of(request).audited(
        lambda conn, audit: withdraw_link(conn, audit, link_id, revocation, caller.name)
    )
    return JSONResponse({"id": link_id, "withdrawn": True})
