"""A lab's push: verify the segment against the lab's enrolled keys and the hub's head for it,
then store its new entries, checkpoints and keys, move the head and project — all in one
transaction — or store nothing and record why it was refused.

Idempotent by entry hash: a segment the hub already holds (a push repeated after a lost answer,
or overlapping what arrived before the hub was killed) is recognised by ``verify_segment`` and
adds nothing. Pushes of one lab are serialised by the lock on its ``lab_heads`` row, so two
gateways of one lab (or a retry racing its original) cannot both append.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from pydantic import ValidationError

from core.errors import StoreError
from core.logs import log_event
from hub.audit import LAB_KEY_LEARNED, SEGMENT_REFUSED, HubAudit
from hub.db import Connection, Database, fetch_all, fetch_one
from hub.projection import Projection
from ledger import (
    ROTATION_KIND,
    ChainHead,
    PublicKey,
    Segment,
    SegmentVerdict,
    verify_segment,
)

log = logging.getLogger("etalon.hub")

MALFORMED: Final = "malformed"
REVOKED: Final = "revoked"
TOO_LARGE: Final = "too_large"
RESERVED_LOG_FIELDS: Final = frozenset(
    {"lab", "reason", "code", "level", "event"}
    | set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    | {"message", "asctime"}
)


@dataclass(frozen=True)
class PushOutcome:
    """What the hub answers a push: accepted or refused (with the reason), and its head."""

    accepted: bool
    head: ChainHead
    new: int = 0
    known: int = 0
    reason: str | None = None
    code: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    refusal_id: int | None = None

    def as_json(self, lang: str = "en") -> dict[str, Any]:
        """The API's answer."""
        from hub.messages import message, messages

        answer: dict[str, Any] = {
            "accepted": self.accepted,
            "head": self.head.model_dump(mode="json"),
        }
        if self.accepted:
            answer |= {"new": self.new, "known": self.known}
        else:
            answer |= {
                "reason": self.reason,
                "code": self.code,
                "params": dict(self.params),
                "message": message(self.code or "", self.params, lang),
                "messages": messages(self.code or "", self.params),
                "refusal": self.refusal_id,
            }
        return answer


def _head_of(lab: str, row: Mapping[str, Any]) -> ChainHead:
    return ChainHead(
        ledger=lab, count=row["count"], hash=row["hash"], ts_ns=row["ts_ns"], key=row["key_id"]
    )


async def _head_row(conn: Connection, lab: str, *, lock: bool = False) -> dict[str, Any]:
    """The lab's ``lab_heads`` row, locked until the transaction ends when ``lock`` (a lab's
    pushes are serialised on it); StoreError when the hub has none."""
    row = await fetch_one(
        conn, "SELECT * FROM lab_heads WHERE lab = %s" + (" FOR UPDATE" if lock else ""), (lab,)
    )
    if row is None:
        raise _no_head(lab)
    return row


def _no_head(lab: str) -> StoreError:
    return StoreError(f"lab {lab} has no head at the hub")


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"[:300]


class Ingest:
    """Takes the labs' pushes (see the module doc)."""

    def __init__(self, db: Database, audit: HubAudit) -> None:
        self.db = db
        self.audit = audit
        self.accepted = 0
        self.refused = 0
        self.entries_stored = 0

    async def push(self, lab: str, body: bytes, remote: str | None = None) -> PushOutcome:
        """Judge and store one segment pushed by ``lab`` (already authenticated)."""
        digest = hashlib.sha256(body).hexdigest()
        try:
            segment = Segment.model_validate_json(body)
        except (ValueError, RecursionError) as exc:  # a ValidationError is a ValueError
            error = _validation_reason(exc) if isinstance(exc, ValidationError) else str(exc)[:300]
            return await self.refuse(
                lab,
                MALFORMED,
                "hub.refusal.malformed",
                {"error": error},
                sha256=digest,
                remote=remote,
            )
        refused: tuple[SegmentVerdict | None, str, str, dict[str, Any]] | None = None
        async with self.db.write() as conn:
            head_row = await _head_row(conn, lab, lock=True)
            lab_row = await fetch_one(
                conn, "SELECT revoked_ns, revoked_reason, province FROM labs WHERE id = %s", (lab,)
            )
            if lab_row is None:
                raise _no_head(lab)
            head = _head_of(lab, head_row)
            if lab_row["revoked_ns"] is not None:
                refused = (
                    None,
                    REVOKED,
                    "hub.refusal.revoked",
                    {"lab": lab, "reason": lab_row["revoked_reason"] or ""},
                )
            else:
                verdict = await self._verify(conn, lab, head, segment)
                if verdict.accepted:
                    await self._store(conn, lab, lab_row["province"], verdict, segment)
                    self.accepted += 1
                    self.entries_stored += len(verdict.new_entries)
                    return PushOutcome(
                        True,
                        verdict.head,
                        new=len(verdict.new_entries),
                        known=verdict.known_entries,
                    )
                assert verdict.reason is not None and verdict.code is not None
                refused = (verdict, str(verdict.reason), verdict.code, dict(verdict.params))
        judged, reason, code, params = refused
        return await self.refuse(
            lab,
            reason,
            code,
            params,
            segment=segment,
            sha256=digest,
            remote=remote,
            finding=None if judged is None else judged.finding,
        )

    async def _verify(
        self, conn: Connection, lab: str, head: ChainHead, segment: Segment
    ) -> SegmentVerdict:
        keys = [
            PublicKey.from_text(row["public_key"])
            for row in await fetch_all(
                conn, "SELECT public_key FROM lab_keys WHERE lab = %s", (lab,)
            )
        ]
        known: dict[int, str] = {}
        if segment.from_seq <= head.count:
            wanted = [segment.from_seq - 1, segment.to_seq]
            for row in await fetch_all(
                conn,
                "SELECT seq, hash FROM entries WHERE lab = %s AND seq = ANY(%s)",
                (lab, wanted),
            ):
                known[row["seq"]] = row["hash"]
        # CPU work (hashing, signatures) off the loop; the head row stays locked meanwhile.
        return await asyncio.to_thread(verify_segment, segment, head, keys, known_hash=known.get)

    async def _store(
        self,
        conn: Connection,
        lab: str,
        province: str | None,
        verdict: SegmentVerdict,
        segment: Segment,
    ) -> None:
        now = time.time_ns()
        new = verdict.new_entries
        if new:
            async with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY entries (lab, seq, ts_ns, kind, subject, actor, body_json, prev, hash, "
                    "received_ns) FROM STDIN"
                ) as copy,
            ):
                for entry in new:
                    await copy.write_row((lab, *entry, now))
        head = verdict.head
        fresh = [cp for cp in segment.checkpoints if cp.count > verdict.head.count - len(new)]
        if fresh:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO checkpoints (lab, count, key_id, line, received_ns) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(lab, cp.count, cp.key, cp.to_json().decode(), now) for cp in fresh],
                )
        for key in verdict.new_keys:
            seq = next(
                (e.seq for e in new if e.kind == ROTATION_KIND and e.subject == key.key_id), None
            )
            await conn.execute(
                "INSERT INTO lab_keys (lab, key_id, public_key, source, added_ns, added_seq) "
                "VALUES (%s, %s, %s, 'rotation', %s, %s) ON CONFLICT DO NOTHING",
                (lab, key.key_id, key.to_text(), now, seq),
            )
            await self.audit.append(
                conn, LAB_KEY_LEARNED, lab, "hub", {"key": key.key_id, "seq": seq or 0}
            )
        await conn.execute(
            "UPDATE lab_heads SET count = %s, hash = %s, ts_ns = %s, key_id = %s, "
            "pushes = pushes + 1, last_push_ns = %s WHERE lab = %s",
            (head.count, head.hash, head.ts_ns, head.key, now, lab),
        )
        if new:
            await Projection(conn, lab, province).run(new)

    async def refuse(
        self,
        lab: str,
        reason: str,
        code: str,
        params: Mapping[str, Any],
        *,
        segment: Segment | None = None,
        sha256: str | None = None,
        remote: str | None = None,
        finding: Any = None,
    ) -> PushOutcome:
        """Record a refused push (a row for the operators, an entry in the audit chain)."""
        now = time.time_ns()
        plain = {k: v if isinstance(v, int | str) else str(v) for k, v in params.items()}
        async with self.db.write() as conn:
            head_row = await _head_row(conn, lab, lock=True)
            row = await fetch_one(
                conn,
                "INSERT INTO refusals (lab, received_ns, reason, code, params, from_seq, to_seq, "
                "entries, segment_sha256, finding, remote) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    lab,
                    now,
                    reason,
                    code,
                    orjson.dumps(plain).decode(),
                    None if segment is None else segment.from_seq,
                    None if segment is None else segment.to_seq,
                    None if segment is None else len(segment.entries),
                    sha256,
                    None if finding is None else finding.model_dump_json(),
                    None if remote is None else remote[:100],
                ),
            )
            assert row is not None
            await conn.execute(
                "UPDATE lab_heads SET refusals = refusals + 1, last_refusal_ns = %s WHERE lab = %s",
                (now, lab),
            )
            body: dict[str, Any] = {"reason": reason, "code": code, "refusal": row["id"]}
            if segment is not None:
                body |= {"from_seq": segment.from_seq, "to_seq": segment.to_seq}
            if sha256 is not None:
                body["sha256"] = sha256
            await self.audit.append(conn, SEGMENT_REFUSED, lab, "hub", body)
        self.refused += 1
        # The verifier's values go in the log too, but never over the line's own fields or
        # the attributes of a LogRecord (a parameter named "name" or "lab" would break it).
        extra = {k: v for k, v in plain.items() if k not in RESERVED_LOG_FIELDS}
        log_event(log, logging.WARNING, "push refused", lab=lab, reason=reason, code=code, **extra)
        return PushOutcome(
            False,
            _head_of(lab, head_row),
            reason=reason,
            code=code,
            params=plain,
            refusal_id=int(row["id"]),
        )

    async def cursor(self, lab: str) -> ChainHead:
        """Where the lab's chain stands at the hub (the lab pushes from ``count + 1``)."""
        async with self.db.write() as conn:  # the primary: a replica may lag behind
            return _head_of(lab, await _head_row(conn, lab))


async def list_refusals(
    conn: Connection, lab: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Refused pushes, newest first (one lab's or every lab's, those with an id below
    ``before``), their ``params`` and ``finding`` parsed from the stored JSON."""
    rows = await fetch_all(
        conn,
        "SELECT id, lab, received_ns, reason, code, params, from_seq, to_seq, entries, "
        "segment_sha256, finding, remote FROM refusals "
        "WHERE (%s::text IS NULL OR lab = %s) AND (%s::bigint IS NULL OR id < %s) "
        "ORDER BY id DESC LIMIT %s",
        (lab, lab, before, before, limit),
    )
    for row in rows:
        row["params"] = orjson.loads(row["params"])
        row["finding"] = orjson.loads(row["finding"]) if row["finding"] else None
    return rows
