"""The record store's rows of what agents tell the gateway: an agent's state and its channel
catalogue (with its instruments' identities, and an audit entry when its state changes), and its
instruments' states (audited the same way). Ingest writes them, each message in a savepoint.
"""

from __future__ import annotations

import json
import sqlite3

from edge_agent.wire import AgentStatus, InstrumentState
from gateway.records.bodies import append_audit, record_identity


def record_status(
    db: sqlite3.Connection,
    site: str,
    agent: str,
    status: AgentStatus,
    previous: str | None,
    now: int,
) -> None:
    """An agent's status: its row, its channels, its instruments' identities (when online), and
    an audit entry when its state changed from ``previous``."""
    db.execute(
        "INSERT INTO agents(site, agent, state, version, since_ns, last_seen_ns, clock, reason) "
        "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(site, agent) DO UPDATE SET "
        "state=excluded.state, version=COALESCE(excluded.version, agents.version), "
        "since_ns=CASE WHEN agents.state=excluded.state THEN agents.since_ns "
        "ELSE excluded.since_ns END, last_seen_ns=excluded.last_seen_ns, "
        "clock=CASE WHEN excluded.clock='{}' THEN agents.clock ELSE excluded.clock END, "
        "reason=excluded.reason",
        (
            site,
            agent,
            status.state,
            status.version,
            status.ts or now,
            now,
            json.dumps(status.clock),
            status.reason,
        ),
    )
    for instrument in status.instruments:
        for channel in instrument.channels:
            db.execute(
                "INSERT OR REPLACE INTO channels VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    site,
                    agent,
                    instrument.name,
                    channel.name,
                    instrument.protocol,
                    channel.unit,
                    channel.interval_s,
                    json.dumps(channel.tags, sort_keys=True),
                    json.dumps(instrument.identity, sort_keys=True),
                    now,
                ),
            )
    if status.state == "online":
        for instrument in status.instruments:
            record_identity(db, site, agent, instrument.name, instrument.identity, now)
    if previous != status.state:
        append_audit(
            db,
            "gateway",
            f"agent {status.state}",
            f"{site}/{agent}",
            {"previous": previous, "reason": status.reason, "version": status.version},
            now,
        )


def record_instrument(
    db: sqlite3.Connection, site: str, agent: str, instrument: str, state: InstrumentState
) -> None:
    """An instrument's state, and an audit entry when it changed."""
    row = db.execute(
        "SELECT state FROM instrument_states WHERE site=? AND agent=? AND instrument=?",
        (site, agent, instrument),
    ).fetchone()
    db.execute(
        "INSERT OR REPLACE INTO instrument_states VALUES (?,?,?,?,?,?)",
        (site, agent, instrument, state.state, state.since, state.reason),
    )
    if row is None or row[0] != state.state:
        append_audit(
            db,
            "gateway",
            f"instrument {state.state}",
            f"{site}/{agent}/{instrument}",
            {"previous": row[0] if row else None, "reason": state.reason},
            state.since,
        )
