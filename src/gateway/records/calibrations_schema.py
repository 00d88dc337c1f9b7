"""The calibration records' table in the record store (feature key ``calibrations`` of
records.MIGRATIONS). Append steps; never edit a step that has shipped.

One row per run, written once: the record's canonical JSON and its SHA-256, with the columns a
list needs. Triggers refuse any change or deletion, as for the audit log; the row is also a
``calibration.result`` ledger entry (gateway.records.bodies), so an edit behind the triggers'
back is found by ``etalon records verify``.
"""

from __future__ import annotations

CALIBRATIONS_MIGRATIONS = [
    """
    CREATE TABLE calibrations (
        run TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        received_ns INTEGER NOT NULL,
        started_ns INTEGER NOT NULL,
        finished_ns INTEGER NOT NULL,
        procedure_id TEXT NOT NULL,
        uut_serial TEXT,
        decision TEXT NOT NULL,
        points INTEGER NOT NULL,
        failed_points INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX calibrations_by_time ON calibrations(started_ns);
    CREATE TRIGGER calibrations_no_update BEFORE UPDATE ON calibrations
        BEGIN SELECT RAISE(ABORT, 'a calibration record cannot change'); END;
    CREATE TRIGGER calibrations_no_delete BEFORE DELETE ON calibrations
        BEGIN SELECT RAISE(ABORT, 'a calibration record cannot be deleted'); END;
    """,
]
