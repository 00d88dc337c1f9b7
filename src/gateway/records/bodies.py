"""What the ledger records of each record, and the one way to append it.

Every record a 17025 assessor relies on is chained as an entry whose body is the record as the
record store holds it, read back from its tables inside the same transaction as the change — so
verification can read the same rows again later and compare (:mod:`gateway.records.verify`):

- ``audit`` (subject: the audit row's): ``action``, ``details`` (the stored JSON text), ``ts_ns``;
  ``audit.imported``: the same and the row's ``id`` (rows older than the ledger);
- ``standard`` (``standard:ID``): the standard's row and its channel links;
- ``certificate`` (``certificate:N``): the row (exact decimals, DCC fields, file hash,
  signature verdict), its points and its traceability;
- ``instrument_identity`` (``SITE/AGENT/INSTRUMENT``): manufacturer, model, serial, firmware,
  the whole identity, first seen;
- ``calibration.result`` (``calibration:RUN``): a bench's calibration record, its row as stored
  (the record's canonical JSON text and SHA-256, the list's columns);
- ``records.start`` (the ledger id): format, software, what was imported;
- ``records.integrity`` (``ledger``): what a writer found written behind its back;
- ``key_rotation`` (the new key id): the ledger library's signed statement.

Values are canonical JSON (docs/ledger.md): a REAL column becomes the decimal string of the
float it holds (``repr``, exact), an integer beyond ±2⁵³ (a nanosecond time) a decimal string,
JSON text columns stay text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from core.errors import StoreError
from gateway.records.chain import START_KIND, RecordsLedger
from ledger import MAX_SAFE_INTEGER, Entry

AUDIT_KIND = "audit"
AUDIT_IMPORTED_KIND = "audit.imported"
STANDARD_KIND = "standard"
CERTIFICATE_KIND = "certificate"
IDENTITY_KIND = "instrument_identity"
CALIBRATION_KIND = "calibration.result"


class RecordConnection(sqlite3.Connection):
    """The record store's connection: it knows the ledger its records are chained in."""

    ledger: RecordsLedger | None = None


def ledger_of(db: sqlite3.Connection) -> RecordsLedger:
    """The ledger of the record store ``db`` belongs to."""
    found = getattr(db, "ledger", None)
    if found is None:
        raise StoreError("this connection is not the record store's: its records cannot be chained")
    assert isinstance(found, RecordsLedger)
    return found


def dumps(value: Any) -> str:
    """JSON as the record store keeps it (UTF-8, sorted keys)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def plain(value: Any) -> Any:
    """A stored value as the ledger writes it (see the module doc)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def query_rows(
    db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """The rows of a read query, as dicts of column → value (as SQLite returns them)."""
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def row_body(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    """A row as a JSON object of its columns (see :func:`plain`)."""
    names = [d[0] for d in cursor.description or ()]
    return {name: plain(value) for name, value in zip(names, row, strict=True)}


def _rows(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    return [row_body(cursor, row) for row in cursor.fetchall()]


def _first(
    db: sqlite3.Connection, sql: str, key: Any, children: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The first row ``sql`` selects by ``key`` (None when there is none), with each of
    ``children``: the rows its query selects by the same key, under its name."""
    rows = _rows(db, sql, (key,))
    if not rows:
        return None
    body = rows[0]
    for name, child_sql in (children or {}).items():
        body[name] = _rows(db, child_sql, (key,))
    return body


# -- the audit log -------------------------------------------------------------------------------


def audit_body(ts_ns: int, action: str, details: str) -> dict[str, Any]:
    """The body of an ``audit`` entry."""
    return {"action": action, "details": details, "ts_ns": str(ts_ns)}


def append_audit(
    db: sqlite3.Connection,
    actor: str,
    action: str,
    subject: str,
    details: Any,
    ts_ns: int | None = None,
) -> int:
    """Append an audit row and its ledger entry inside the caller's transaction; returns the
    row's id. ``ts_ns``: the time the row carries (default: the gateway's time now) — an
    agent's own time stays in the row and the entry's body, the entry is stamped by the
    gateway."""
    ledger = ledger_of(db)
    text = details if isinstance(details, str) else dumps(details)
    when = ledger.settings.clock() if ts_ns is None else ts_ns
    entry = ledger.append(db, AUDIT_KIND, subject, actor, audit_body(when, action, text))
    cursor = db.execute(
        "INSERT INTO audit_log(ts_ns, actor, action, subject, details, ledger_seq) "
        "VALUES (?,?,?,?,?,?)",
        (when, actor, action, subject, text, entry.seq),
    )
    return int(cursor.lastrowid or 0)


# -- registry records ----------------------------------------------------------------------------


def standard_body(db: sqlite3.Connection, standard_id: str) -> dict[str, Any] | None:
    """A standard's row and channel links as the ledger records them (None if not there)."""
    return _first(
        db,
        "SELECT * FROM standards WHERE id=?",
        standard_id,
        {
            "channels": "SELECT * FROM standard_channels WHERE standard_id=? "
            "ORDER BY position, channel"
        },
    )


def certificate_body(db: sqlite3.Connection, certificate_id: int) -> dict[str, Any] | None:
    """A certificate's row, points and traceability as the ledger records them."""
    return _first(
        db,
        "SELECT * FROM certificates WHERE id=?",
        certificate_id,
        {
            "points": "SELECT * FROM certificate_points WHERE certificate_id=? ORDER BY position",
            "traceability": "SELECT * FROM certificate_traceability WHERE certificate_id=? "
            "ORDER BY id",
        },
    )


def _chain(
    db: sqlite3.Connection, kind: str, subject: str, body: dict[str, Any] | None, actor: str
) -> Entry:
    """Append ``body`` as the state of ``subject`` (``kind:id``); StoreError if its row is gone."""
    if body is None:
        what, _, key = subject.partition(":")
        raise StoreError(f"{what.replace('-', ' ')} {key} is not in the record store")
    return ledger_of(db).append(db, kind, subject, actor, body)


def chain_standard(db: sqlite3.Connection, standard_id: str, actor: str) -> Entry:
    """Record a standard's state (after a change in the caller's transaction)."""
    body = standard_body(db, standard_id)
    return _chain(db, STANDARD_KIND, f"standard:{standard_id}", body, actor)


def chain_certificate(db: sqlite3.Connection, certificate_id: int, actor: str) -> Entry:
    """Record a certificate's state (after a change in the caller's transaction)."""
    body = certificate_body(db, certificate_id)
    return _chain(db, CERTIFICATE_KIND, f"certificate:{certificate_id}", body, actor)


def calibration_body(db: sqlite3.Connection, run: str) -> dict[str, Any] | None:
    """A calibration record's row as the ledger records it (None if not there)."""
    return _first(db, "SELECT * FROM calibrations WHERE run=?", run)


def chain_calibration(db: sqlite3.Connection, run: str, actor: str) -> Entry:
    """Record a calibration record (after its insert in the caller's transaction)."""
    return _chain(db, CALIBRATION_KIND, f"calibration:{run}", calibration_body(db, run), actor)


# -- instrument identities -----------------------------------------------------------------------

IDENTITY_FIELDS = ("manufacturer", "model", "serial", "firmware")


def identity_body(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the ledger records of an identity row (its last sighting moves; it is not chained)."""
    keys = ("site", "agent", "instrument", *IDENTITY_FIELDS, "identity", "first_seen_ns")
    return {key: plain(row[key]) for key in keys}


def record_identity(
    db: sqlite3.Connection,
    site: str,
    agent: str,
    instrument: str,
    identity: Mapping[str, str],
    seen_ns: int,
) -> bool:
    """Keep an instrument's identity as its agent announced it: the same as last time moves
    its last sighting; a different one is a new row (never an overwrite) and a ledger entry.
    Returns whether the identity changed."""
    if not identity:
        return False
    text = dumps(dict(identity))
    last = db.execute(
        "SELECT id, identity FROM instrument_identities WHERE site=? AND agent=? AND "
        "instrument=? ORDER BY id DESC LIMIT 1",
        (site, agent, instrument),
    ).fetchone()
    if last is not None and last[1] == text:
        db.execute(
            "UPDATE instrument_identities SET last_seen_ns=MAX(last_seen_ns, ?) WHERE id=?",
            (seen_ns, last[0]),
        )
        return False
    row = {
        "site": site,
        "agent": agent,
        "instrument": instrument,
        **{key: identity.get(key) for key in IDENTITY_FIELDS},
        "identity": text,
        "first_seen_ns": seen_ns,
    }
    subject = f"{site}/{agent}/{instrument}"
    entry = ledger_of(db).append(db, IDENTITY_KIND, subject, "gateway", identity_body(row))
    db.execute(
        "INSERT INTO instrument_identities(site, agent, instrument, manufacturer, model, serial, "
        "firmware, identity, first_seen_ns, last_seen_ns, ledger_seq) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            site,
            agent,
            instrument,
            *(row[key] for key in IDENTITY_FIELDS),
            text,
            seen_ns,
            seen_ns,
            entry.seq,
        ),
    )
    return True


# -- a ledger's first entries --------------------------------------------------------------------


def import_existing(db: sqlite3.Connection, ledger: RecordsLedger) -> dict[str, int]:
    """Start a ledger in the caller's transaction: ``records.start``, then every record already
    in the store as it is now (audit rows as ``audit.imported``, linked to their entries)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        software = version("etalon-edge")
    except PackageNotFoundError:
        software = "0"
    counts = {
        "audit_rows": db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0],
        "standards": db.execute("SELECT COUNT(*) FROM standards").fetchone()[0],
        "certificates": db.execute("SELECT COUNT(*) FROM certificates").fetchone()[0],
        "calibrations": db.execute("SELECT COUNT(*) FROM calibrations").fetchone()[0],
        "instruments": db.execute(
            "SELECT COUNT(DISTINCT site || '/' || agent || '/' || instrument) FROM channels "
            "WHERE identity != '{}'"
        ).fetchone()[0],
    }
    assert ledger.ledger_id is not None
    ledger.append(
        db,
        START_KIND,
        ledger.ledger_id,
        "gateway",
        {"format": "etalon-records/1", "software": software, "imported": counts},
    )
    if counts["audit_rows"]:
        # The rows are linked to their entries by ledger_seq: the append-only triggers step
        # aside for this one update, in this transaction.
        db.execute("DROP TRIGGER audit_log_no_update")
        rows = db.execute(
            "SELECT id, ts_ns, actor, action, subject, details FROM audit_log ORDER BY id"
        ).fetchall()
        for row_id, ts_ns, actor, action, subject, details in rows:
            body = audit_body(ts_ns, action, details) | {"id": row_id}
            entry = ledger.append(db, AUDIT_IMPORTED_KIND, subject, actor, body)
            db.execute("UPDATE audit_log SET ledger_seq=? WHERE id=?", (entry.seq, row_id))
        db.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
    for (standard_id,) in db.execute("SELECT id FROM standards ORDER BY id").fetchall():
        chain_standard(db, standard_id, "import")
    for (certificate_id,) in db.execute("SELECT id FROM certificates ORDER BY id").fetchall():
        chain_certificate(db, certificate_id, "import")
    for (run,) in db.execute("SELECT run FROM calibrations ORDER BY run").fetchall():
        chain_calibration(db, run, "import")
    latest = db.execute(
        "SELECT site, agent, instrument, identity, MAX(updated_ns) FROM channels "
        "WHERE identity != '{}' GROUP BY site, agent, instrument ORDER BY site, agent, instrument"
    ).fetchall()
    for site, agent, instrument, identity, seen_ns in latest:
        record_identity(db, site, agent, instrument, orjson.loads(identity), seen_ns)
    return counts


# -- calibrated instruments (issue 19) -----------------------------------------------------------

INSTRUMENT_CERTIFICATE_KIND = "instrument_certificate"
CALIBRATION_LINK_KIND = "calibration_link"


def instrument_certificate_body(
    db: sqlite3.Connection, certificate_id: int
) -> dict[str, Any] | None:
    """An instrument certificate's row as the ledger records it: every column but the document,
    which its SHA-256 stands for."""
    return _first(
        db,
        "SELECT id, number, issuer, manufacturer, model, serial, calibration_date, due_date, "
        "due_ns, tables, signature, file_name, file_sha256, file_size, created_ns, created_by "
        "FROM instrument_certificates WHERE id=?",
        certificate_id,
    )


def calibration_link_body(db: sqlite3.Connection, link_id: int) -> dict[str, Any] | None:
    """A calibration link's row as the ledger records it."""
    return _first(db, "SELECT * FROM calibration_links WHERE id=?", link_id)


def chain_instrument_certificate(db: sqlite3.Connection, certificate_id: int, actor: str) -> Entry:
    """Record an instrument certificate (after its insert in the caller's transaction)."""
    body = instrument_certificate_body(db, certificate_id)
    subject = f"instrument-certificate:{certificate_id}"
    return _chain(db, INSTRUMENT_CERTIFICATE_KIND, subject, body, actor)


def chain_calibration_link(db: sqlite3.Connection, link_id: int, actor: str) -> Entry:
    """Record a calibration link's state (after a change in the caller's transaction)."""
    body = calibration_link_body(db, link_id)
    return _chain(db, CALIBRATION_LINK_KIND, f"calibration-link:{link_id}", body, actor)
