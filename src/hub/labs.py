"""Enrolment: a lab is known to the hub by its ledger id and public key, pushes with a token
issued at enrolment, and can be revoked. Every change is recorded in the hub's audit chain."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from core.models import FrozenModel
from hub.audit import LAB_ENROLLED, LAB_REVOKED, LAB_TOKEN_ISSUED, HubAudit
from hub.db import Connection, fetch_all, fetch_one
from hub.errors import HubConflict, HubInvalid, HubNotFound
from ledger import LedgerError, PublicKey, genesis_hash

LAB_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
TEXT = re.compile(r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$")
TOKEN_PREFIX = "etalon-lab-"


def plain_text(field: str, value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not TEXT.match(value):
        raise ValueError(f"{field} holds control characters")
    if len(value) > limit:
        raise ValueError(f"{field} is longer than {limit} characters")
    return value or None


class Enrolment(FrozenModel):
    """What the national institute gives to enrol a lab (CLI options or an admin API body)."""

    lab: str = Field(pattern=LAB_ID, description="The lab's ledger id (records.ledger.id).")
    public_key: str = Field(
        min_length=40,
        max_length=4000,
        description="The lab's ledger public key (PEM, or base64 of the 32 raw bytes).",
    )
    name: str = Field(min_length=1, max_length=200)
    province: str | None = Field(None, max_length=100)
    country: str = Field("VN", pattern=r"^[A-Z]{2}$")
    contact: str | None = Field(None, max_length=300)

    @field_validator("name", "province", "contact")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return plain_text(str(info.field_name), value, 300)

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        try:
            return PublicKey.from_text(value).to_text()
        except (LedgerError, ValueError) as exc:
            raise ValueError(f"not an Ed25519 public key: {exc}") from None


class Revocation(FrozenModel):
    """Why a lab is revoked (its later pushes are refused)."""

    reason: str = Field(min_length=1, max_length=500)

    @field_validator("reason")
    @classmethod
    def _text(cls, value: str) -> str:
        checked = plain_text("reason", value, 500)
        if not checked:
            raise ValueError("a reason is required")
        return checked


def token_digest(token: str) -> str:
    """What the hub keeps of a push token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A push token (shown once; the hub keeps its SHA-256)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def enrol(conn: Connection, audit: HubAudit, enrolment: Enrolment, actor: str) -> str:
    """Enrol a lab in the caller's transaction; returns its push token."""
    if await fetch_one(conn, "SELECT id FROM labs WHERE id = %s", (enrolment.lab,)):
        raise HubConflict("hub.error.enrolled_already", lab=enrolment.lab)
    key = PublicKey.from_text(enrolment.public_key)
    token = new_token()
    now = time.time_ns()
    await conn.execute(
        "INSERT INTO labs (id, name, province, country, contact, token_sha256, enrolled_ns, "
        "enrolled_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            enrolment.lab,
            enrolment.name,
            enrolment.province,
            enrolment.country,
            enrolment.contact,
            token_digest(token),
            now,
            actor,
        ),
    )
    await conn.execute(
        "INSERT INTO lab_keys (lab, key_id, public_key, source, added_ns) "
        "VALUES (%s, %s, %s, 'enrolled', %s)",
        (enrolment.lab, key.key_id, key.to_text(), now),
    )
    await conn.execute(
        "INSERT INTO lab_heads (lab, count, hash) VALUES (%s, 0, %s)",
        (enrolment.lab, genesis_hash(enrolment.lab)),
    )
    await audit.append(
        conn,
        LAB_ENROLLED,
        enrolment.lab,
        actor,
        {
            "name": enrolment.name,
            "province": enrolment.province,
            "country": enrolment.country,
            "key": key.key_id,
            "public_key": key.to_text(),
        },
    )
    return token


async def reissue_token(conn: Connection, audit: HubAudit, lab: str, actor: str) -> str:
    """A new push token for a lab (the old one stops working)."""
    found = await lab_row(conn, lab)
    if found["revoked_ns"] is not None:
        raise HubConflict("hub.error.revoked_no_token", lab=lab)
    token = new_token()
    await conn.execute(
        "UPDATE labs SET token_sha256 = %s WHERE id = %s", (token_digest(token), lab)
    )
    await audit.append(conn, LAB_TOKEN_ISSUED, lab, actor, {})
    return token


async def revoke(
    conn: Connection, audit: HubAudit, lab: str, revocation: Revocation, actor: str
) -> None:
    """Revoke a lab in the caller's transaction: its later pushes are refused."""
    found = await lab_row(conn, lab, lock=True)
    if found["revoked_ns"] is not None:
        raise HubConflict("hub.error.revoked_already", lab=lab)
    await conn.execute(
        "UPDATE labs SET revoked_ns = %s, revoked_by = %s, revoked_reason = %s WHERE id = %s",
        (time.time_ns(), actor, revocation.reason, lab),
    )
    await audit.append(conn, LAB_REVOKED, lab, actor, {"reason": revocation.reason})


async def lab_row(conn: Connection, lab: str, *, lock: bool = False) -> dict[str, Any]:
    """A lab's row; NotFoundError if it is not enrolled."""
    sql = "SELECT * FROM labs WHERE id = %s" + (" FOR UPDATE" if lock else "")
    found = await fetch_one(conn, sql, (lab,))
    if found is None:
        raise HubNotFound("hub.error.not_enrolled", lab=lab)
    return found


async def lab_of_token(conn: Connection, token: str) -> dict[str, Any] | None:
    """The lab a push token belongs to (revoked or not), or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    return await fetch_one(
        conn,
        "SELECT id, revoked_ns, revoked_reason FROM labs WHERE token_sha256 = %s",
        (token_digest(token),),
    )


LAB_COLUMNS = (
    "l.id, l.name, l.province, l.country, l.contact, l.enrolled_ns, l.enrolled_by, "
    "l.revoked_ns, l.revoked_by, l.revoked_reason, h.count, h.hash, h.ts_ns AS head_ts_ns, "
    "h.key_id, h.pushes, h.refusals, h.last_push_ns, h.last_refusal_ns"
)


async def list_labs(conn: Connection) -> list[dict[str, Any]]:
    """Every enrolled lab with where its chain stands."""
    return await fetch_all(
        conn,
        f"SELECT {LAB_COLUMNS} FROM labs l JOIN lab_heads h ON h.lab = l.id ORDER BY l.id",
    )


async def lab_keys(conn: Connection, lab: str) -> list[dict[str, Any]]:
    """A lab's keys (enrolled, then learned from rotations)."""
    return await fetch_all(
        conn,
        "SELECT key_id, public_key, source, added_ns, added_seq FROM lab_keys WHERE lab = %s "
        "ORDER BY added_ns, key_id",
        (lab,),
    )


def check_lab_id(lab: str) -> str:
    """A lab id from a path or an option; InvalidInputError if it cannot be one."""
    if not re.match(LAB_ID, lab):
        raise HubInvalid("hub.error.lab_id", lab=lab[:80])
    return lab
