"""The ledger's tables in the record store (feature key ``ledger`` of records.MIGRATIONS).

- ``ledger``: the hash-chained entries (docs/ledger.md's table), one chain per gateway;
- ``ledger_meta``: the ledger's id and when it started (the genesis binds the id anyway);
- ``audit_log.ledger_seq``: the entry that records each audit row (the row and its entry are
  written in one transaction; verification compares them);
- ``instrument_identities``: each instrument's identity over time (never overwritten).

Triggers refuse UPDATE and DELETE on the ledger as on the audit log: they stop mistakes, not a
person with the database file — the chain and its signed checkpoints are what catch that.

Append steps; never edit a step that has shipped.
"""

from __future__ import annotations

LEDGER_MIGRATIONS = [
    """
    CREATE TABLE ledger (
        seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, kind TEXT NOT NULL,
        subject TEXT NOT NULL, actor TEXT NOT NULL, body_json TEXT NOT NULL,
        prev TEXT NOT NULL, hash TEXT NOT NULL UNIQUE
    );
    CREATE INDEX ledger_by_subject ON ledger(kind, subject, seq);
    CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
    CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
    CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    ALTER TABLE audit_log ADD COLUMN ledger_seq INTEGER;
    CREATE UNIQUE INDEX audit_log_by_entry ON audit_log(ledger_seq);
    CREATE INDEX audit_log_by_subject ON audit_log(subject, id);
    CREATE TABLE instrument_identities (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site TEXT NOT NULL, agent TEXT NOT NULL, instrument TEXT NOT NULL,
        manufacturer TEXT, model TEXT, serial TEXT, firmware TEXT,
        identity TEXT NOT NULL,
        first_seen_ns INTEGER NOT NULL,
        last_seen_ns INTEGER NOT NULL,
        ledger_seq INTEGER NOT NULL UNIQUE
    );
    CREATE INDEX identities_by_instrument ON instrument_identities(site, agent, instrument, id);
    CREATE TRIGGER identities_no_delete BEFORE DELETE ON instrument_identities
        BEGIN SELECT RAISE(ABORT, 'an instrument identity is never deleted'); END;
    CREATE TRIGGER identities_keep_identity BEFORE UPDATE OF site, agent, instrument,
        manufacturer, model, serial, firmware, identity, first_seen_ns, ledger_seq
        ON instrument_identities
        BEGIN SELECT RAISE(ABORT, 'an instrument identity is never overwritten'); END;
    """,
]
"""Append steps; never edit one that has shipped."""
