"""Verification of a record store: its ledger's chain and checkpoints (the ledger library), and
its live tables against what the ledger recorded of them.

The chain proves the entries are what the key holder signed; the tables are then compared with
the entries: an audit row, a standard, a certificate, a calibration record, an instrument
identity or an alert's state that the ledger does not explain (``inserted``), that differs from
its entry (``edited``), or that the ledger records but is gone (``deleted``) is a finding like a
broken link. docs/records.md says what this proves and what it cannot.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from core.errors import StoreError
from core.i18n import register
from gateway.records.bodies import (
    AUDIT_IMPORTED_KIND,
    AUDIT_KIND,
    CALIBRATION_KIND,
    CALIBRATION_LINK_KIND,
    CERTIFICATE_KIND,
    IDENTITY_KIND,
    INSTRUMENT_CERTIFICATE_KIND,
    STANDARD_KIND,
    audit_body,
    calibration_body,
    calibration_link_body,
    certificate_body,
    identity_body,
    instrument_certificate_body,
    query_rows,
    standard_body,
)
from gateway.records.chain import ENTRY_COLUMNS, ledger_id_of
from gateway.records.config import RecordsConfig
from gateway.records.keys import checkpoint_lines, trusted_keys
from gateway.records.messages import RECORDS_MESSAGES, text_of
from ledger import (
    MESSAGES,
    EntryFacts,
    PublicKey,
    VerifyReport,
    canonical_json,
    verify,
)
from ledger import Finding as ChainFinding

register(MESSAGES)
register(RECORDS_MESSAGES)

Kind = Literal[
    "edited",
    "deleted",
    "inserted",
    "reordered",
    "truncated",
    "rewritten",
    "checkpoint_forged",
    "checkpoint_replayed",
    "rotation_forged",
]


class RecordsFinding(BaseModel):
    """One broken thing: in the chain (``source: chain``: an entry, a checkpoint) or in a live
    table (``source: table``: a row that disagrees with the ledger)."""

    model_config = ConfigDict(frozen=True)

    source: Literal["chain", "table"]
    kind: Kind
    code: str
    seq: int | None = Field(None, description="The first ledger entry concerned.")
    last_seq: int | None = None
    table: str | None = Field(None, description="The live table (source: table).")
    key: str | None = Field(None, description="The row's key in that table.")
    checkpoint: int | None = None
    entry: EntryFacts | None = None
    params: dict[str, str | int] = Field(default_factory=dict)
    message: str

    def text(self, lang: str = "en") -> str:
        """The message in ``lang`` ("en" or "vi")."""
        return text_of(self.code, self.params, lang)

    @classmethod
    def of_chain(cls, finding: ChainFinding) -> RecordsFinding:
        """A finding of the ledger library."""
        return cls(
            source="chain",
            kind=finding.kind.value,
            code=finding.code,
            seq=finding.seq,
            last_seq=finding.last_seq,
            checkpoint=finding.checkpoint,
            entry=finding.entry,
            params=dict(finding.params),
            message=finding.message,
        )

    @classmethod
    def of_table(
        cls, kind: Literal["edited", "deleted", "inserted"], table: str, key: Any, seq: int | None
    ) -> RecordsFinding:
        """A live row that disagrees with the ledger."""
        code = f"records.{kind}" if seq is not None else f"records.{kind}.unrecorded"
        params: dict[str, str | int] = {"table": table, "key": str(key)}
        if seq is not None:
            params["seq"] = seq
        return cls(
            source="table",
            kind=kind,
            code=code,
            seq=seq,
            table=table,
            key=str(key),
            params=params,
            message=text_of(code, params, "en"),
        )


class RecordsReport(BaseModel):
    """What ``etalon records verify`` and ``GET /api/v1/records/verify`` answer."""

    model_config = ConfigDict(frozen=True)

    ledger: str | None
    ok: bool
    checked_ns: int
    duration_s: float
    entries: int = Field(..., description="Rows of the ledger read.")
    signed_count: int = Field(..., description="Entries covered by a verified checkpoint.")
    unsigned: int = Field(..., description="Entries after the last checkpoint (not signed yet).")
    checkpoints: int
    tables: list[str] = Field(default_factory=list, description="Live tables compared.")
    finding: RecordsFinding | None
    findings: list[RecordsFinding]
    notes: list[str] = Field(
        default_factory=list, description="What a clean result leaves open (English)."
    )
    keys: list[str] = Field(default_factory=list, description="Key ids trusted.")
    chain: VerifyReport | None = None

    def summary(self, lang: str = "en") -> str:
        """One line: what was verified, or the first finding."""
        if self.ledger is None:
            return text_of("records.no_ledger", {}, lang)
        if self.finding is not None:
            return text_of(
                "records.verify.broken",
                {
                    "ledger": self.ledger,
                    "kind": text_of(f"kind.{self.finding.kind}", {}, lang),
                    "what": self.finding.text(lang),
                },
                lang,
            )
        return text_of(
            "records.verify.ok",
            {
                "ledger": self.ledger,
                "entries": self.entries,
                "signed": self.signed_count,
                "unsigned": self.unsigned,
                "tables": len(self.tables),
            },
            lang,
        )


# -- live tables ---------------------------------------------------------------------------------


def _check_audit(db: sqlite3.Connection) -> RecordsFinding | None:
    """Audit rows against their entries: in SQL (the body is three strings SQLite writes as
    canonical JSON does), each candidate then checked again here with canonical JSON itself."""
    row = db.execute(
        "SELECT a.id, a.ledger_seq FROM audit_log a LEFT JOIN ledger l ON l.seq = a.ledger_seq "
        "WHERE l.seq IS NULL OR l.kind NOT IN (?, ?) ORDER BY a.id LIMIT 1",
        (AUDIT_KIND, AUDIT_IMPORTED_KIND),
    ).fetchone()
    inserted = None
    if row is not None:
        inserted = RecordsFinding.of_table("inserted", "audit_log", row[0], None)
    twice = db.execute(
        "SELECT MIN(id), ledger_seq FROM audit_log WHERE ledger_seq IS NOT NULL "
        "GROUP BY ledger_seq HAVING COUNT(*) > 1 ORDER BY 1 LIMIT 1"
    ).fetchone()
    if twice is not None and (inserted is None or twice[0] < int(inserted.key or 0)):
        inserted = RecordsFinding.of_table("inserted", "audit_log", twice[0], None)
    edited = None
    candidates = db.execute(
        "SELECT a.id, a.ts_ns, a.actor, a.action, a.subject, a.details, l.seq, l.kind, "
        "l.subject, l.actor, l.body_json FROM audit_log a JOIN ledger l ON l.seq = a.ledger_seq "
        "WHERE (l.kind = ?1 AND (l.subject IS NOT a.subject OR l.actor IS NOT a.actor OR "
        "l.body_json IS NOT json_object('action', a.action, 'details', a.details, 'ts_ns', "
        "CAST(a.ts_ns AS TEXT)))) OR (l.kind = ?2 AND (l.subject IS NOT a.subject OR l.actor "
        "IS NOT a.actor OR l.body_json IS NOT json_object('action', a.action, 'details', "
        "a.details, 'id', a.id, 'ts_ns', CAST(a.ts_ns AS TEXT)))) ORDER BY a.id",
        (AUDIT_KIND, AUDIT_IMPORTED_KIND),
    )
    for candidate in candidates:
        if not _audit_row_matches(*candidate):
            edited = RecordsFinding.of_table("edited", "audit_log", candidate[0], candidate[6])
            break
    deleted_seq = db.execute(
        "SELECT l.seq FROM ledger l WHERE l.kind IN (?, ?) AND NOT EXISTS "
        "(SELECT 1 FROM audit_log a WHERE a.ledger_seq = l.seq) ORDER BY l.seq LIMIT 1",
        (AUDIT_KIND, AUDIT_IMPORTED_KIND),
    ).fetchone()
    deleted = None
    if deleted_seq is not None:
        subject = db.execute("SELECT subject FROM ledger WHERE seq=?", deleted_seq).fetchone()[0]
        deleted = RecordsFinding.of_table("deleted", "audit_log", subject, deleted_seq[0])
    return _first(inserted, edited, deleted)


def _audit_row_matches(
    row_id: Any,
    ts_ns: Any,
    actor: Any,
    action: Any,
    subject: Any,
    details: Any,
    _seq: int,
    kind: str,
    e_subject: str,
    e_actor: str,
    body_json: str,
) -> bool:
    if not (isinstance(ts_ns, int) and isinstance(details, str) and isinstance(action, str)):
        return False
    if subject != e_subject or actor != e_actor:
        return False
    body = audit_body(ts_ns, action, details)
    if kind == AUDIT_IMPORTED_KIND:
        body["id"] = row_id
    try:
        return canonical_json(body) == body_json.encode()
    except Exception:  # noqa: BLE001 - a value canonical JSON refuses is not what was recorded
        return False


def _first(*findings: RecordsFinding | None) -> RecordsFinding | None:
    """The finding about the earliest row (by its row id or entry), None if none."""
    found = [f for f in findings if f is not None]
    if not found:
        return None

    def order(finding: RecordsFinding) -> tuple[int, int]:
        if finding.kind == "deleted":
            return (1, finding.seq or 0)
        key = finding.key or ""
        return (0, int(key) if key.isdigit() else 0)

    return min(found, key=order)


def _latest(db: sqlite3.Connection, kind: str) -> dict[str, tuple[int, str]]:
    """subject → (seq, body_json) of the latest entry of ``kind`` for each subject."""
    rows = db.execute(
        "SELECT l.subject, l.seq, l.body_json FROM ledger l JOIN (SELECT subject, MAX(seq) AS "
        "seq FROM ledger WHERE kind=? GROUP BY subject) m ON l.seq = m.seq",
        (kind,),
    )
    return {subject: (seq, body) for subject, seq, body in rows}


def _same(body_json: str, current: dict[str, Any] | None) -> bool:
    if current is None:
        return False
    try:
        return canonical_json(current) == body_json.encode()
    except Exception:  # noqa: BLE001 - a value canonical JSON refuses was not recorded
        return False


def _check_records(
    db: sqlite3.Connection,
    table: str,
    kind: str,
    prefix: str,
    ids: Sequence[Any],
    body_of: Callable[[sqlite3.Connection, Any], dict[str, Any] | None],
) -> RecordsFinding | None:
    latest = _latest(db, kind)
    for key in ids:
        entry = latest.pop(f"{prefix}{key}", None)
        if entry is None:
            return RecordsFinding.of_table("inserted", table, key, None)
        if not _same(entry[1], body_of(db, key)):
            return RecordsFinding.of_table("edited", table, key, entry[0])
    for subject, (seq, _) in sorted(latest.items(), key=lambda item: item[1][0]):
        return RecordsFinding.of_table("deleted", table, subject.removeprefix(prefix), seq)
    return None


def _check_standards(db: sqlite3.Connection) -> RecordsFinding | None:
    ids = [row[0] for row in db.execute("SELECT id FROM standards ORDER BY id")]
    return _check_records(db, "standards", STANDARD_KIND, "standard:", ids, standard_body)


def _check_certificates(db: sqlite3.Connection) -> RecordsFinding | None:
    ids = [row[0] for row in db.execute("SELECT id FROM certificates ORDER BY id")]
    return _check_records(
        db, "certificates", CERTIFICATE_KIND, "certificate:", ids, certificate_body
    )


def _check_instrument_certificates(db: sqlite3.Connection) -> RecordsFinding | None:
    ids = [row[0] for row in db.execute("SELECT id FROM instrument_certificates ORDER BY id")]
    return _check_records(
        db,
        "instrument_certificates",
        INSTRUMENT_CERTIFICATE_KIND,
        "instrument-certificate:",
        ids,
        instrument_certificate_body,
    )


def _check_calibration_links(db: sqlite3.Connection) -> RecordsFinding | None:
    ids = [row[0] for row in db.execute("SELECT id FROM calibration_links ORDER BY id")]
    return _check_records(
        db, "calibration_links", CALIBRATION_LINK_KIND, "calibration-link:", ids,
        calibration_link_body,
    )  # fmt: skip


def _check_calibrations(db: sqlite3.Connection) -> RecordsFinding | None:
    ids = [row[0] for row in db.execute("SELECT run FROM calibrations ORDER BY run")]
    return _check_records(
        db, "calibrations", CALIBRATION_KIND, "calibration:", ids, calibration_body
    )


def _check_identities(db: sqlite3.Connection) -> RecordsFinding | None:
    for row in query_rows(
        db,
        "SELECT i.*, l.kind AS entry_kind, l.body_json AS entry_body FROM instrument_identities i "
        "LEFT JOIN ledger l ON l.seq = i.ledger_seq ORDER BY i.id",
    ):
        if row["entry_kind"] != IDENTITY_KIND:
            return RecordsFinding.of_table("inserted", "instrument_identities", row["id"], None)
        if not _same(row["entry_body"], identity_body(row)):
            return RecordsFinding.of_table(
                "edited", "instrument_identities", row["id"], row["ledger_seq"]
            )
    missing = db.execute(
        "SELECT l.seq, l.subject FROM ledger l WHERE l.kind = ? AND NOT EXISTS (SELECT 1 FROM "
        "instrument_identities i WHERE i.ledger_seq = l.seq) ORDER BY l.seq LIMIT 1",
        (IDENTITY_KIND,),
    ).fetchone()
    if missing is not None:
        return RecordsFinding.of_table("deleted", "instrument_identities", missing[1], missing[0])
    return None


def _check_alerts(db: sqlite3.Connection) -> RecordsFinding | None:
    """Each alert's state is the state its audit trail (checked above) last recorded."""
    rows = db.execute(
        "SELECT a.id, a.state, (SELECT details FROM audit_log WHERE subject = 'alert:' || a.id "
        "ORDER BY id DESC LIMIT 1) FROM alerts a ORDER BY a.id"
    ).fetchall()
    known: set[str] = set()
    for alert_id, state, details in rows:
        known.add(f"alert:{alert_id}")
        recorded: str | None = "normal"
        if details is not None:
            try:
                recorded = orjson.loads(details).get("to", recorded)
            except (orjson.JSONDecodeError, AttributeError):
                recorded = None
        if state != recorded:
            return RecordsFinding.of_table("edited", "alerts", alert_id, None)
    for (subject,) in db.execute(
        "SELECT DISTINCT subject FROM audit_log WHERE subject LIKE 'alert:%' ORDER BY subject"
    ):
        if subject not in known:
            seq = db.execute(
                "SELECT MIN(ledger_seq) FROM audit_log WHERE subject=?", (subject,)
            ).fetchone()[0]
            return RecordsFinding.of_table("deleted", "alerts", subject.removeprefix("alert:"), seq)
    return None


LIVE_CHECKS: list[tuple[str, Callable[[sqlite3.Connection], RecordsFinding | None]]] = [
    ("audit_log", _check_audit),
    ("standards", _check_standards),
    ("certificates", _check_certificates),
    ("calibrations", _check_calibrations),
    ("instrument_identities", _check_identities),
    ("instrument_certificates", _check_instrument_certificates),
    ("calibration_links", _check_calibration_links),
    ("alerts", _check_alerts),
]
"""Each live table and its comparison with the ledger, in the order findings are reported."""


# -- everything ----------------------------------------------------------------------------------


def _rows(db: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    cursor = db.execute(f"SELECT {ENTRY_COLUMNS} FROM ledger ORDER BY seq")
    cursor.arraysize = 1000
    while True:
        batch = cursor.fetchmany()
        if not batch:
            return
        yield from batch


def verify_records(
    db: sqlite3.Connection,
    checkpoints: Sequence[str],
    trusted: Sequence[PublicKey],
    *,
    clock: Callable[[], int] = time.time_ns,
) -> RecordsReport:
    """Verify the record store ``db`` (read in one read transaction, so that concurrent
    writers do not make a consistent store look broken)."""
    started = time.perf_counter()
    now = clock()
    ledger_id = ledger_id_of(db)
    keys = [key.key_id for key in trusted]
    if ledger_id is None:
        return RecordsReport(
            ledger=None,
            ok=True,
            checked_ns=now,
            duration_s=time.perf_counter() - started,
            entries=0,
            signed_count=0,
            unsigned=0,
            checkpoints=len(checkpoints),
            finding=None,
            findings=[],
            notes=[text_of("records.no_ledger", {})],
            keys=keys,
        )
    own = not db.in_transaction
    if own:
        db.execute("BEGIN")  # one snapshot for the chain and the tables (WAL)
    try:
        chain = verify(_rows(db), checkpoints, trusted, ledger=ledger_id)
        findings = [RecordsFinding.of_chain(f) for f in chain.findings]
        tables = []
        for table, check in LIVE_CHECKS:
            tables.append(table)
            found = check(db)
            if found is not None:
                findings.append(found)
    finally:
        if own:
            db.execute("ROLLBACK")
    return RecordsReport(
        ledger=ledger_id,
        ok=not findings,
        checked_ns=now,
        duration_s=round(time.perf_counter() - started, 6),
        entries=chain.rows,
        signed_count=chain.signed_count,
        unsigned=chain.unsigned,
        checkpoints=chain.checkpoints,
        tables=tables,
        finding=findings[0] if findings else None,
        findings=findings,
        notes=[note.message for note in chain.notes],
        keys=keys,
        chain=chain,
    )


def verify_file(
    records: RecordsConfig, trusted: Sequence[PublicKey] | None = None
) -> RecordsReport:
    """Verify the record store a config names, on a connection of its own (blocking: run it in
    a thread). The checkpoint lines are read before the database's snapshot is taken, so a
    writer signing meanwhile never makes a checkpoint count more entries than are seen."""
    if not records.path.exists():
        raise StoreError(f"no record store at {records.path}")
    keys = list(trusted) if trusted is not None else trusted_keys(records)
    lines = checkpoint_lines(records)
    db = sqlite3.connect(records.path, isolation_level=None)
    try:
        db.execute("PRAGMA query_only=ON")
        return verify_records(db, lines, keys)
    except sqlite3.Error as exc:
        raise StoreError(f"record store {records.path}: {exc}") from exc
    finally:
        db.close()
