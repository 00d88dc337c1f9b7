"""Reads and writes of the alert tables (run on the record store's thread via RecordStore.run)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.alerts.lifecycle import Alert
from gateway.records.bodies import append_audit, query_rows


def dumps(value: Any) -> str:
    """JSON as the record store keeps it (UTF-8, sorted keys)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


@dataclass(slots=True)
class OutboxRow:
    """A notification to deliver: ``medium`` mqtt, email or webhook; ``target`` a recipient id
    (or the site, for MQTT)."""

    medium: str
    target: str
    alert_id: int
    event: dict[str, Any]
    created_ns: int
    id: int = 0
    attempts: int = 0


@dataclass(slots=True)
class AuditRow:
    """One entry for the audit log."""

    ts_ns: int
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


def write_batch(
    db: sqlite3.Connection,
    alerts: Sequence[Alert],
    audits: Sequence[AuditRow],
    outbox: Sequence[OutboxRow],
) -> None:
    """Alert rows, audit entries and notifications in one transaction; sets each row's id."""
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO alerts(id, key, rule_id, kind, site, subject, level, severity, state, body, "
        "updated_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
        "severity=excluded.severity, state=excluded.state, body=excluded.body, "
        "updated_ns=excluded.updated_ns",
        [
            (
                a.id,
                a.key,
                a.rule_id,
                a.kind,
                a.site,
                a.subject,
                a.level,
                a.severity,
                a.state,
                dumps(a.to_dict()),
                a.updated_ns,
            )
            for a in alerts
        ],
    )
    for a in audits:
        append_audit(db, a.actor, a.action, a.subject, dumps(a.details), a.ts_ns)
    for row in outbox:
        cursor = db.execute(
            "INSERT INTO alert_outbox(created_ns, medium, target, alert_id, event) "
            "VALUES (?,?,?,?,?)",
            (row.created_ns, row.medium, row.target, row.alert_id, dumps(row.event)),
        )
        row.id = int(cursor.lastrowid or 0)
    db.execute("COMMIT")


def load_alerts(db: sqlite3.Connection) -> list[Alert]:
    """Every stored alert."""
    return [Alert.from_dict(json.loads(body)) for (body,) in db.execute("SELECT body FROM alerts")]


def load_open_outbox(db: sqlite3.Connection) -> list[OutboxRow]:
    """Notifications neither delivered nor given up."""
    rows = db.execute(
        "SELECT id, created_ns, medium, target, alert_id, event, attempts FROM alert_outbox "
        "WHERE sent_ns IS NULL AND failed IS NULL ORDER BY id"
    )
    return [
        OutboxRow(medium, target, alert_id, json.loads(event), created, row_id, attempts)
        for row_id, created, medium, target, alert_id, event, attempts in rows
    ]


def mark_outbox(
    db: sqlite3.Connection,
    ids: Sequence[int],
    sent_ns: int | None,
    failed: str | None,
    attempts: int,
    audit: AuditRow | None = None,
) -> None:
    """Record the outcome of a delivery (sent, or given up with the reason)."""
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "UPDATE alert_outbox SET sent_ns=?, failed=?, attempts=attempts+? WHERE id=?",
        [(sent_ns, failed, attempts, row_id) for row_id in ids],
    )
    if audit is not None:
        append_audit(
            db, audit.actor, audit.action, audit.subject, dumps(audit.details), audit.ts_ns
        )
    db.execute("COMMIT")


def load_rules(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """The rules in force at the last run: id → definition, source, config_hash, updated."""
    return {
        rule_id: {
            "definition": json.loads(definition),
            "source": source,
            "config_hash": config_hash,
            "updated_ns": updated_ns,
            "updated_by": updated_by,
        }
        for rule_id, definition, source, config_hash, updated_ns, updated_by in db.execute(
            "SELECT rule_id, definition, source, config_hash, updated_ns, updated_by "
            "FROM alert_rules"
        )
    }


def save_rules(
    db: sqlite3.Connection,
    upserts: Sequence[tuple[str, dict[str, Any], str, str | None, int, str]],
    deletes: Sequence[str],
    audits: Sequence[AuditRow],
) -> None:
    """Change the rules in force and audit each change, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT OR REPLACE INTO alert_rules(rule_id, definition, source, config_hash, "
        "updated_ns, updated_by) VALUES (?,?,?,?,?,?)",
        [(r, dumps(d), s, h, ts, by) for r, d, s, h, ts, by in upserts],
    )
    db.executemany("DELETE FROM alert_rules WHERE rule_id=?", [(r,) for r in deletes])
    for a in audits:
        append_audit(db, a.actor, a.action, a.subject, dumps(a.details), a.ts_ns)
    db.execute("COMMIT")


def audit_trail(db: sqlite3.Connection, subject: str) -> list[dict[str, Any]]:
    """The audit entries of one subject (``alert:ID``, ``alert-rule:ID``), oldest first."""
    rows = query_rows(
        db,
        "SELECT id, ts_ns, actor, action, details FROM audit_log WHERE subject = ? ORDER BY id",
        (subject,),
    )
    return [{**row, "details": json.loads(row["details"])} for row in rows]


def load_agent_states(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The last state the gateway recorded of each agent."""
    return query_rows(db, "SELECT site, agent, state, reason FROM agents")


def load_instrument_states(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The last state the gateway recorded of each instrument."""
    return query_rows(db, "SELECT site, agent, instrument, state, reason FROM instrument_states")


def load_catalogue(
    db: sqlite3.Connection, agent: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """Channels of the agents' latest birth messages (older rows are channels since removed);
    of one agent (site, agent) if given."""
    sql = (
        "SELECT site, agent, instrument, channel, unit, interval_s, tags FROM channels c "
        "WHERE updated_ns = (SELECT MAX(updated_ns) FROM channels d "
        "WHERE d.site = c.site AND d.agent = c.agent)"
    )
    params: tuple[str, ...] = ()
    if agent is not None:
        sql += " AND site = ? AND agent = ?"
        params = agent
    return query_rows(db, sql, params)
