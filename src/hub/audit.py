"""The hub's own audit chain: enrolments, revocations, refused pushes, traceability links.

A ledger like a lab's (docs/ledger.md): each entry hash-chained to the one before, each append
followed by a checkpoint signed with the hub's key, in the same transaction as the change it
records. Appends from several hub processes are serialised by a transaction-scoped advisory
lock, so the chain stays one chain. ``etalon hub verify-audit`` walks it with ``ledger.verify``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from core.errors import StoreError
from hub.db import Connection, fetch_all, fetch_one
from ledger import ChainHead, Entry, LedgerError, LedgerWriter, SigningKey, VerifyReport, verify

AUDIT_LOCK: Final = 0x6875622D61756469  # 'hub-audi'

LAB_ENROLLED: Final = "lab.enrolled"
LAB_REVOKED: Final = "lab.revoked"
LAB_TOKEN_ISSUED: Final = "lab.token_issued"
LAB_KEY_LEARNED: Final = "lab.key_learned"
SEGMENT_REFUSED: Final = "segment.refused"
LINK_ADDED: Final = "link.added"
LINK_WITHDRAWN: Final = "link.withdrawn"

ENTRY_COLUMNS: Final = "seq, ts_ns, kind, subject, actor, body_json, prev, hash"
"""The columns of ``hub_audit``, in the order of an :class:`ledger.Entry`'s fields."""


class HubAudit:
    """Appends to the hub's audit chain inside the caller's transaction."""

    def __init__(
        self, ledger_id: str, key: SigningKey, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.ledger_id = ledger_id
        self.key = key
        self.clock = clock

    async def head(self, conn: Connection) -> ChainHead:
        """Where the chain stands (read inside the caller's transaction)."""
        tail = await fetch_one(
            conn, "SELECT seq, hash, ts_ns FROM hub_audit ORDER BY seq DESC LIMIT 1"
        )
        signed = await fetch_one(
            conn, "SELECT key_id FROM hub_audit_checkpoints ORDER BY count DESC LIMIT 1"
        )
        key = None if signed is None else str(signed["key_id"])
        if tail is None:
            return ChainHead.start(self.ledger_id).model_copy(update={"key": key})
        return ChainHead(
            ledger=self.ledger_id,
            count=tail["seq"],
            hash=tail["hash"],
            ts_ns=tail["ts_ns"],
            key=key,
        )

    async def append(
        self, conn: Connection, kind: str, subject: str, actor: str, body: Mapping[str, Any]
    ) -> Entry:
        """Append one entry and sign the new head, in the caller's open transaction."""
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
        head = await self.head(conn)
        writer = LedgerWriter(head, clock=self.clock)
        try:
            entry = writer.append(kind, subject[:512] or "-", actor[:256] or "-", body)
            checkpoint = writer.checkpoint(self.key)
        except LedgerError as exc:
            raise StoreError(f"hub audit chain: {exc}") from None
        await conn.execute(
            f"INSERT INTO hub_audit ({ENTRY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            tuple(entry),
        )
        await conn.execute(
            "INSERT INTO hub_audit_checkpoints (count, key_id, line) VALUES (%s, %s, %s)",
            (checkpoint.count, checkpoint.key, checkpoint.to_json().decode()),
        )
        return entry

    async def check_key(self, conn: Connection) -> None:
        """Refuse a key that is not the one in force (someone replaced the key file)."""
        head = await self.head(conn)
        if head.key is not None and head.key != self.key.key_id:
            raise StoreError(
                f"the hub's audit chain is signed with {head.key}; the key file holds "
                f"{self.key.key_id}: configure the key in force"
            )


async def audit_page(conn: Connection, after: int, limit: int) -> dict[str, Any]:
    """A page of the audit chain (at most ``limit`` ``entries`` after seq ``after``) and its
    latest signed ``checkpoint`` line (None before the first)."""
    entries = await fetch_all(
        conn,
        f"SELECT {ENTRY_COLUMNS} FROM hub_audit WHERE seq > %s ORDER BY seq LIMIT %s",
        (after, limit),
    )
    last = await fetch_one(
        conn, "SELECT line FROM hub_audit_checkpoints ORDER BY count DESC LIMIT 1"
    )
    return {"entries": entries, "checkpoint": None if last is None else last["line"]}


async def verify_audit(conn: Connection, ledger_id: str, trusted: list[Any]) -> VerifyReport:
    """Walk the whole audit chain against its checkpoints and the trusted public keys."""
    rows = await fetch_all(conn, f"SELECT {ENTRY_COLUMNS} FROM hub_audit ORDER BY seq")
    lines = await fetch_all(conn, "SELECT line FROM hub_audit_checkpoints ORDER BY count")
    return verify(
        [tuple(row.values()) for row in rows],
        [row["line"] for row in lines],
        trusted,
        ledger=ledger_id,
    )
