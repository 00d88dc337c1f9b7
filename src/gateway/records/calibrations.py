"""Writing and reading calibration records in the record store."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.records.bodies import append_audit, chain_calibration, ledger_of
from metrology.certificate.record import CalibrationRecord, canonical_bytes


def insert(db: sqlite3.Connection, record: CalibrationRecord, sha256: str, site: str) -> bool:
    """Keep a record, its ledger entry and its audit entry (all in the caller's transaction)
    unless the run is stored already; True if new."""
    exists = db.execute("SELECT sha256 FROM calibrations WHERE run = ?", (record.run,)).fetchone()
    if exists is not None:
        return False
    now = ledger_of(db).settings.clock()
    failed = sum(1 for p in record.points if p.status != "ok")
    db.execute(
        "INSERT INTO calibrations(run, site, agent, received_ns, started_ns, finished_ns, "
        "procedure_id, uut_serial, decision, points, failed_points, sha256, record) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            record.run,
            site,
            record.agent,
            now,
            record.started_ns,
            record.finished_ns,
            record.procedure.id,
            record.uut.identity_start.get("serial") or record.uut.declared.get("serial"),
            record.decision,
            len(record.points),
            failed,
            sha256,
            canonical_bytes(record).decode("utf-8"),
        ),
    )
    chain_calibration(db, record.run, "gateway")
    append_audit(
        db,
        "gateway",
        "calibration recorded",
        f"calibration:{record.run}",
        {
            "site": site,
            "agent": record.agent,
            "sha256": sha256,
            "decision": record.decision,
            "procedure": record.procedure.id,
            "procedure_sha256": record.procedure.sha256,
            "operator": record.operator,
        },
        now,
    )
    return True


SUMMARY_COLUMNS = (
    "run, site, agent, received_ns, started_ns, finished_ns, procedure_id, uut_serial, decision, "
    "points, failed_points, sha256"
)


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the list."""
    return {key: row[key] for key in row if key != "record"}
