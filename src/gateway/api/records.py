"""The records' integrity: verify the record store now, its state, its public key; and each
instrument's identity over time.

``GET /records/verify`` walks the whole ledger and compares the live tables with it (CPU work,
about a second per 100,000 entries, one at a time): auditors and above. Its public key is what
a national hub enrols; the private key is never served.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from core.errors import ConflictError, NotFoundError
from gateway.api.auth import Auditor, Viewer
from gateway.api.views import ERRORS, NOT_FOUND, NamePath, api_context
from gateway.records.keys import trusted_keys
from gateway.records.monitor import RecordsMonitor

router = APIRouter(prefix="/api/v1", tags=["records"], responses=ERRORS)

Lang = Annotated[Literal["en", "vi"], Query(description="Language of the summary.")]


def _monitor(request: Request) -> RecordsMonitor:
    monitor = api_context(request).monitor
    if monitor is None:
        raise ConflictError("the records' verification does not run on this gateway")
    return monitor


@router.get("/records/verify")
async def verify_records(request: Request, _who: Auditor, lang: Lang = "en") -> dict[str, Any]:
    """Verify the record store now: ``ok``, the first ``finding`` (kind of tampering, entry,
    table and row), every finding, what a clean result leaves open (``notes``), and ``summary``
    in the language asked. A finding also raises the records_integrity alert."""
    report = await _monitor(request).verify("request")
    answer: dict[str, Any] = report.model_dump(mode="json", exclude={"chain"})
    answer["summary"] = report.summary(lang)
    answer["findings_text"] = [finding.text(lang) for finding in report.findings]
    if report.chain is not None:
        answer["keys_in_force"] = [epoch.model_dump(mode="json") for epoch in report.chain.keys]
        answer["notes_text"] = [note.text(lang) for note in report.chain.notes]
    return answer


class LedgerState(BaseModel):
    """The ledger as this gateway holds it, and its last verification."""

    ledger: str | None
    entries: int = Field(..., description="The head this gateway committed.")
    unsigned: int = Field(..., description="Entries waiting for the next checkpoint.")
    key: str | None = Field(..., description="Key id in force.")
    checkpoints_signed: int = Field(..., description="Since this gateway started.")
    last_verification: dict[str, Any] | None


@router.get("/records")
async def records_state(request: Request, _who: Viewer, lang: Lang = "en") -> LedgerState:
    """The ledger's head and the latest verification's outcome (no new verification)."""
    monitor = _monitor(request)
    ledger = monitor.records.ledger
    latest = monitor.latest
    last = None
    if latest is not None:
        last = {
            "ok": latest.ok,
            "checked_ns": latest.checked_ns,
            "entries": latest.entries,
            "signed_count": latest.signed_count,
            "unsigned": latest.unsigned,
            "summary": latest.summary(lang),
            "finding": None if latest.finding is None else latest.finding.model_dump(mode="json"),
        }
    head = ledger.head
    return LedgerState(
        ledger=ledger.ledger_id,
        entries=0 if head is None else head.count,
        unsigned=ledger.unsigned,
        key=None if ledger.key is None else ledger.key.key_id,
        checkpoints_signed=ledger.checkpoints_signed,
        last_verification=last,
    )


class PublicKeyView(BaseModel):
    """The ledger's public key (what a hub enrols), and the keys verification trusts."""

    ledger: str | None
    key_id: str
    public_key: str = Field(..., description="Base64 of the 32 raw bytes.")
    public_key_pem: str
    trusted: list[str] = Field(..., description="Key ids verification trusts.")


@router.get("/records/key")
async def public_key(request: Request, _who: Viewer) -> PublicKeyView:
    """The signing key's public half (never the private key)."""
    monitor = _monitor(request)
    ledger = monitor.records.ledger
    if ledger.key is None:
        raise NotFoundError("this gateway holds no ledger key")
    public = ledger.key.public_key
    return PublicKeyView(
        ledger=ledger.ledger_id,
        key_id=public.key_id,
        public_key=public.to_text(),
        public_key_pem=public.to_pem().decode(),
        trusted=[key.key_id for key in trusted_keys(monitor.config, ledger.key)],
    )


class IdentityView(BaseModel):
    """An instrument's identity as its agent announced it, and when it was seen so."""

    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    identity: dict[str, Any] = Field(..., description="Everything the agent announced.")
    first_seen_ns: int
    last_seen_ns: int
    ledger_seq: int = Field(..., description="The ledger entry that recorded it.")


@router.get("/instruments/{site}/{agent}/{instrument}/history", responses=NOT_FOUND)
async def instrument_history(
    request: Request, site: NamePath, agent: NamePath, instrument: NamePath, _who: Viewer
) -> list[IdentityView]:
    """Every identity the instrument had, oldest first (a firmware update is a new one)."""
    import orjson

    rows = await api_context(request).records.query(
        "SELECT manufacturer, model, serial, firmware, identity, first_seen_ns, last_seen_ns, "
        "ledger_seq FROM instrument_identities WHERE site=? AND agent=? AND instrument=? "
        "ORDER BY id",
        (site, agent, instrument),
    )
    if not rows:
        raise NotFoundError(f"no identity recorded for {site}/{agent}/{instrument}")
    return [IdentityView(**(row | {"identity": orjson.loads(row["identity"])})) for row in rows]
