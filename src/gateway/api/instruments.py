"""Calibrated instruments: their certificates (DCC) and which certificate corrects which
channel (docs/corrections.md).

Reading needs a viewer token; importing a certificate and linking or unlinking a channel need
an admin (each change is chained in the ledger and audited with the token's name).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from core.models import NAME_PATTERN
from gateway.api.auth import Admin, Principal, Viewer
from gateway.api.context import ApiContext
from gateway.api.export import attachment
from gateway.api.uploads import DCC_MEDIA_TYPES, read_capped
from gateway.api.views import ERRORS, REFUSALS
from gateway.corrections import instruments
from gateway.corrections.instruments import Refused
from gateway.standards.config import StandardsConfig

router = APIRouter(prefix="/api/v1/instruments", tags=["instruments"], responses=ERRORS | REFUSALS)
Segment = Annotated[str, Path(pattern=NAME_PATTERN, description="A name.")]
CertificateId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A row id.")]

LINK_MARGIN_NS = 1_000_000_000
"""A link made through the API starts this far in the future (default), so the running
gateway has installed it before its instant: no reading taken after the instant is corrected
by the certificate it replaces."""


def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


def _actor(who: Principal) -> str:
    return f"api:{who.name}"


class LinkBody(BaseModel):
    """Which certificate (and which of its tables) corrects the channel, from when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate_id: int = Field(ge=1, le=2**63 - 1)
    table: int | None = Field(None, ge=0, le=10_000, description="Default: the one in its unit.")
    from_ns: int | None = Field(
        None,
        ge=0,
        lt=2**63,
        description="When it starts (UTC ns, not in the past); default: one second from now.",
    )


class UnlinkBody(BaseModel):
    """When the link in force ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    until_ns: int | None = Field(None, ge=0, lt=2**63, description="Default: one second from now.")


async def _reload(request: Request) -> None:
    corrector = _context(request).corrector
    if corrector is not None and _context(request).config.corrections.enabled:
        await corrector.load()


@router.get("/calibrated")
async def list_instruments(request: Request, _who: Viewer) -> list[dict[str, Any]]:
    """Every instrument with a calibration link: its identity and its channels' links in force
    (certificate, table, range, due date)."""
    return await _context(request).records.run(instruments.instruments_view)


@router.post("/certificates", status_code=status.HTTP_201_CREATED)
async def import_certificate(
    request: Request,
    who: Admin,
    accept_unsigned: Annotated[
        bool, Query(description="Register it even if its signature is invalid (recorded).")
    ] = False,
    due: Annotated[
        dt.date | None, Query(description="Due date, when the DCC states none (ISO 8601).")
    ] = None,
) -> dict[str, Any]:
    """Register an instrument's DCC 3.1.2 (``Content-Type: application/xml``): validated
    against the schema (422 with the schema's message and line), its signature verified (an
    invalid one is 422 unless ``accept_unsigned=true``), its calibration tables extracted (422
    when it has none), kept byte for byte."""
    from gateway.standards.dcc import load_anchors

    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in DCC_MEDIA_TYPES:
        raise Refused(
            "corrections.error.no_dcc",
            file="body",
            reason=f"Content-Type {media or '-'} (expected application/xml)",
        )
    data = await read_capped(request, instruments.MAX_DCC_BYTES)
    ctx = _context(request)
    done = await instruments.import_certificate(
        ctx.records,
        data,
        anchors=load_anchors((ctx.config.standards or StandardsConfig()).dcc),
        actor=_actor(who),
        accept_invalid=accept_unsigned,
        file_name=None,
        due=due,
    )
    return done.certificate.view()


@router.get("/certificates")
async def list_certificates(request: Request, _who: Viewer) -> list[dict[str, Any]]:
    """Every instrument certificate (without its document)."""
    found = await _context(request).records.run(instruments.load_certificates)
    return [c.view() for c in found]


@router.get("/certificates/{certificate_id}")
async def get_certificate(
    request: Request, certificate_id: CertificateId, _who: Viewer
) -> dict[str, Any]:
    """One instrument certificate: item, dates, tables (exact decimals), signature verdict."""
    found = await _context(request).records.run(
        lambda db: instruments.load_certificate(db, certificate_id)
    )
    return found.view()


@router.get("/certificates/{certificate_id}/dcc")
async def get_certificate_dcc(
    request: Request, certificate_id: CertificateId, _who: Viewer
) -> Response:
    """The DCC as it was received, byte for byte (its SHA-256 is in the certificate's view and
    in the ledger)."""
    data = await _context(request).records.run(
        lambda db: instruments.load_document(db, certificate_id)
    )
    return attachment(data, "application/xml", f"certificate-{certificate_id}.xml")


@router.get("/{site}/{agent}/{instrument}")
async def show_instrument(
    request: Request, site: Segment, agent: Segment, instrument: Segment, _who: Viewer
) -> dict[str, Any]:
    """One instrument: identity, channels, every calibration link (past and in force), the
    certificates for its serial."""
    return await _context(request).records.run(
        lambda db: instruments.instrument_view(db, site, agent, instrument)
    )


@router.put("/{site}/{agent}/{instrument}/channels/{channel}/calibration")
async def link_channel(
    request: Request,
    site: Segment,
    agent: Segment,
    instrument: Segment,
    channel: Segment,
    body: LinkBody,
    who: Admin,
) -> dict[str, Any]:
    """Correct the channel with a certificate's table from ``from_ns``: the instrument's
    reported serial must be the certificate's item serial (422 naming both otherwise); the
    link in force, if any, ends at the same instant."""
    ctx = _context(request)
    at = body.from_ns if body.from_ns is not None else time.time_ns() + LINK_MARGIN_NS
    done = await instruments.link(
        ctx.records,
        (site, agent, instrument, channel),
        body.certificate_id,
        table=body.table,
        config=ctx.config.corrections,
        actor=_actor(who),
        at_ns=at,
    )
    await _reload(request)
    return {
        "link": done.link.view(),
        "certificate": done.certificate.view(),
        "replaced": None if done.replaced is None else done.replaced.view(),
    }


@router.delete("/{site}/{agent}/{instrument}/channels/{channel}/calibration")
async def unlink_channel(
    request: Request,
    site: Segment,
    agent: Segment,
    instrument: Segment,
    channel: Segment,
    who: Admin,
    body: UnlinkBody | None = None,
) -> dict[str, Any]:
    """End the channel's link in force at ``until_ns``."""
    ctx = _context(request)
    until = body.until_ns if body is not None and body.until_ns is not None else None
    at = until if until is not None else time.time_ns() + LINK_MARGIN_NS
    ended, _certificate = await instruments.unlink(
        ctx.records, (site, agent, instrument, channel), actor=_actor(who), at_ns=at
    )
    await _reload(request)
    return {"link": ended.view()}
