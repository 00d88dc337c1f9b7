"""Writing and reading calibration records in the record store."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from metrology.certificate.record import CalibrationRecord, canonical_bytes


def insert(db: sqlite3.Connection, record: CalibrationRecord, sha256: str, site: str) -> bool:
    """Keep a record (and its audit entry) unless the run is stored already; True if new."""
    exists = db.execute("SELECT sha256 FROM calibrations WHERE run = ?", (record.run,)).fetchone()
    if exists is not None:
        return False
    now = time.time_ns()
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
    db.execute(
        "INSERT INTO audit_log(ts_ns, actor, action, subject, details) VALUES (?,?,?,?,?)",
        (
            now,
            "gateway",
            "calibration recorded",
            f"calibration:{record.run}",
            json.dumps(
                {
                    "site": site,
                    "agent": record.agent,
                    "sha256": sha256,
                    "decision": record.decision,
                    "procedure": record.procedure.id,
                    "procedure_sha256": record.procedure.sha256,
                    "operator": record.operator,
                },
                ensure_ascii=False,
                sort_keys=True,
            ),
        ),
    )
    return True


SUMMARY_COLUMNS = (
    "run, site, agent, received_ns, started_ns, finished_ns, procedure_id, uut_serial, decision, "
    "points, failed_points, sha256"
)


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the list."""
    return {key: row[key] for key in row if key != "record"}
