"""MQTT → gateway spool: validate, spool, then acknowledge, in the order messages arrived.

A data message is acknowledged only after its readings are committed to the gateway's spool, so
a gateway killed at any moment loses nothing: the broker redelivers what was not acknowledged.
Acks go out in the order the messages were received, as MQTT requires for QoS 1, including for
refused payloads (dead-lettered first) and status messages (recorded first).

Refused payloads go to ``{prefix}/v1/{site}/deadletter`` with the reason and the raw bytes (up to
``deadletter_max_bytes``, base64), to the record store's ``deadletters`` table, and to a counter.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from core.errors import PayloadError
from core.logs import log_event
from core.mqtt import Message, MqttLink
from core.spool import Spool
from edge_agent.wire import (
    AgentStatus,
    InstrumentState,
    Rejected,
    Topics,
    WireReading,
    decode_batch,
)
from edge_agent.wire_calibration import decode_calibration
from gateway.config import GatewayConfig
from gateway.ingest.events import (
    AgentStateChanged,
    EventHub,
    InstrumentStateChanged,
    ReadingsArrived,
)
from gateway.metrics import GatewayMetrics
from gateway.records.store import RecordStore
from metrology.certificate.record import CalibrationRecord

log = logging.getLogger("etalon.gateway")


@dataclass
class _Pending:
    """A received message and what must happen before it is acknowledged."""

    message: Message
    entry: bytes | None = None
    record: Callable[[sqlite3.Connection], None] | None = None
    readings: list[WireReading] = field(default_factory=list)
    source: tuple[str, str] = ("", "")
    events: list[object] = field(default_factory=list)


class Ingest:
    """See the module doc."""

    def __init__(
        self,
        config: GatewayConfig,
        link: MqttLink,
        spool: Spool,
        records: RecordStore,
        metrics: GatewayMetrics,
        hub: EventHub | None = None,
    ) -> None:
        self.config = config
        self.hub = hub or EventHub()
        self.link = link
        self.spool = spool
        self.records = records
        self.metrics = metrics
        self.topics = Topics(config.mqtt.topic_prefix)
        self.agents: dict[tuple[str, str], str] = {}
        self.instruments: dict[tuple[str, str, str], str] = {}
        self.calibrations: dict[str, str] = {}
        """Run → SHA-256 of the calibration records stored (one record per run)."""
        self._pending: list[_Pending] = []
        self._arrived = asyncio.Event()
        link.on_message = self.on_message

    def subscriptions(self) -> list[str]:
        """Topics to subscribe: data (shared if configured), status, metrics, instrument states."""
        root = self.topics.root
        group = self.config.ingest.shared_group
        out = []
        for site in self.config.ingest_sites():
            data = f"{root}/{site}/+/data"
            out.append(f"$share/{group}/{data}" if group else data)
            out += [
                f"{root}/{site}/+/calibrations",
                f"{root}/{site}/+/status",
                f"{root}/{site}/+/metrics",
                f"{root}/{site}/+/instruments/+",
            ]
        return out

    async def load_known_agents(self) -> None:
        """Agent states from the record store, so a restart does not re-announce them."""
        rows = await self.records.query("SELECT site, agent, state FROM agents")
        self.agents = {(r["site"], r["agent"]): r["state"] for r in rows}
        rows = await self.records.query(
            "SELECT site, agent, instrument, state FROM instrument_states"
        )
        self.instruments = {(r["site"], r["agent"], r["instrument"]): r["state"] for r in rows}
        self.metrics.agents_online = sum(1 for s in self.agents.values() if s == "online")
        rows = await self.records.query("SELECT run, sha256 FROM calibrations")
        self.calibrations = {r["run"]: r["sha256"] for r in rows}

    # -- loop thread, synchronous: classify and validate -----------------------------------

    def on_message(self, message: Message) -> None:
        """Classify and validate one message; queue it for spooling and acknowledgement."""
        self.metrics.messages_received += 1
        pending = _Pending(message)
        parsed = self.topics.parse(message.topic)
        try:
            if parsed is None:
                raise PayloadError("not an etalon agent topic")
            site, agent, kind, instrument = parsed
            pending.source = (site, agent)
            if not message.payload:
                pass  # a cleared retained message: nothing to record
            elif len(message.payload) > self.config.ingest.max_payload_bytes:
                raise PayloadError(
                    f"payload of {len(message.payload)} bytes exceeds "
                    f"ingest.max_payload_bytes={self.config.ingest.max_payload_bytes}"
                )
            elif kind == "data":
                self._data(pending, site, agent)
            elif kind == "status":
                self._status(pending, site, agent)
            elif kind == "metrics":
                self._agent_metrics(pending, site, agent)
            elif kind == "calibrations":
                self._calibration(pending, site, agent)
            elif instrument is not None:
                self._instrument(pending, site, agent, instrument)
        except PayloadError as exc:
            self._deadletter(pending, exc.reason, [])
        self._pending.append(pending)
        self._arrived.set()

    def _data(self, pending: _Pending, site: str, agent: str) -> None:
        payload = pending.message.payload
        good, rejected, seq = decode_batch(payload, site, agent)
        self.metrics.readings_received += len(good)
        if rejected:
            self.metrics.readings_rejected += len(rejected)
            self._deadletter(
                pending,
                f"{len(rejected)} of {len(good) + len(rejected)} readings refused",
                rejected,
            )
            if good:
                body = {
                    "schema": 1,
                    "site": site,
                    "agent": agent,
                    "seq": seq,
                    "readings": good,
                }
                pending.entry = orjson.dumps(body)
        else:
            pending.entry = payload
        pending.readings = good

    def _status(self, pending: _Pending, site: str, agent: str) -> None:
        try:
            status = AgentStatus.model_validate_json(pending.message.payload)
        except ValidationError as exc:
            raise PayloadError(f"bad status message: {exc.errors()[0]['msg']}") from None
        now = time.time_ns()
        previous = self.agents.get((site, agent))
        self.agents[(site, agent)] = status.state
        self.metrics.agents_online = sum(1 for s in self.agents.values() if s == "online")
        if previous != status.state:
            expected = status.state == "online" or status.reason == "shutdown"
            level = logging.INFO if expected else logging.WARNING
            log_event(
                log, level, f"agent {status.state}", site=site, agent=agent, reason=status.reason
            )
            pending.events.append(
                AgentStateChanged(
                    site, agent, status.state, previous, status.reason, status.ts or now
                )
            )
        pending.record = lambda db: _record_status(db, site, agent, status, previous, now)

    def _instrument(self, pending: _Pending, site: str, agent: str, instrument: str) -> None:
        try:
            state = InstrumentState.model_validate_json(pending.message.payload)
        except ValidationError as exc:
            raise PayloadError(f"bad instrument state: {exc.errors()[0]['msg']}") from None
        previous = self.instruments.get((site, agent, instrument))
        self.instruments[(site, agent, instrument)] = state.state
        if previous != state.state:
            pending.events.append(
                InstrumentStateChanged(
                    site, agent, instrument, state.state, previous, state.reason, state.since
                )
            )
        pending.record = lambda db: _record_instrument(db, site, agent, instrument, state)

    def _calibration(self, pending: _Pending, site: str, agent: str) -> None:
        record, digest = decode_calibration(pending.message.payload, site, agent)
        known = self.calibrations.get(record.run)
        if known is not None and known != digest:
            raise PayloadError(
                f"run {record.run} already has a record (SHA-256 {known}); a calibration record "
                "never changes"
            )
        if known is not None:
            self.metrics.calibrations_duplicate += 1
            return  # a redelivery: stored already
        self.calibrations[record.run] = digest
        self.metrics.calibrations_received += 1
        log_event(
            log, logging.INFO, "calibration recorded", site=site, agent=agent, run=record.run,
            decision=record.decision,
        )  # fmt: skip
        pending.record = lambda db: _record_calibration(db, record, digest, site)

    def _agent_metrics(self, pending: _Pending, site: str, agent: str) -> None:
        try:
            body = json.loads(pending.message.payload)
            values = {
                k: v
                for k, v in body["metrics"].items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            ts = int(body["ts"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PayloadError(f"bad metrics message: {exc}") from None
        entry = {
            "kind": "metrics",
            "measurement": "etalon_agent",
            "tags": {"site": site, "agent": agent},
            "ts": ts,
            "values": values,
        }
        pending.entry = json.dumps(entry, separators=(",", ":")).encode()

    def _deadletter(self, pending: _Pending, reason: str, rejected: list[Rejected]) -> None:
        message = pending.message
        keep = self.config.ingest.deadletter_max_bytes
        raw = message.payload[:keep]
        site = pending.source[0] or self.config.site
        letter: dict[str, Any] = {
            "schema": 1,
            "ts": time.time_ns(),
            "gateway": self.config.id,
            "topic": message.topic,
            "reason": reason,
            "payload_bytes": len(message.payload),
            "payload_b64": base64.b64encode(raw).decode(),
            "truncated": len(raw) < len(message.payload),
        }
        if rejected:
            letter["rejected"] = [r.model_dump() for r in rejected[:100]]
        self.link.publish(self.topics.deadletter(site), json.dumps(letter).encode(), qos=1)
        self.metrics.payloads_deadlettered += 1
        log_event(
            log,
            logging.WARNING,
            "payload refused",
            topic=message.topic,
            reason=reason,
            bytes=len(message.payload),
        )
        full_reason = (
            reason
            if not rejected
            else f"{reason}: " + "; ".join(f"#{r.index}: {r.reason}" for r in rejected[:20])
        )
        previous = pending.record

        def record(db: sqlite3.Connection) -> None:
            if previous is not None:
                previous(db)
            db.execute(
                "INSERT INTO deadletters(ts_ns, topic, reason, payload_bytes, payload) "
                "VALUES (?,?,?,?,?)",
                (letter["ts"], message.topic, full_reason, len(message.payload), raw),
            )

        pending.record = record

    # -- task: spool, record, acknowledge -------------------------------------------------

    async def run(self) -> None:
        """Spool and acknowledge queued messages until cancelled."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            entries = [p.entry for p in batch if p.entry is not None]
            if entries:
                self.metrics.spool_dropped += await self.spool.append(entries)
                self.metrics.spooled += len(entries)
            records = [p.record for p in batch if p.record is not None]
            if records:
                await self.records.run(functools.partial(_apply_all, records=records))
            for pending in batch:
                self.link.ack(pending.message)
            for pending in batch:
                for event in pending.events:
                    self.hub.publish(event)
                if pending.readings:
                    self.hub.publish(ReadingsArrived(*pending.source, pending.readings))


def _apply_all(db: sqlite3.Connection, records: list[Callable[[sqlite3.Connection], None]]) -> None:
    db.execute("BEGIN")
    for record in records:
        record(db)
    db.execute("COMMIT")


def _record_status(
    db: sqlite3.Connection,
    site: str,
    agent: str,
    status: AgentStatus,
    previous: str | None,
    now: int,
) -> None:
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
    if previous != status.state:
        db.execute(
            "INSERT INTO audit_log(ts_ns, actor, action, subject, details) VALUES (?,?,?,?,?)",
            (
                now,
                "gateway",
                f"agent {status.state}",
                f"{site}/{agent}",
                json.dumps(
                    {"previous": previous, "reason": status.reason, "version": status.version}
                ),
            ),
        )


def _record_calibration(
    db: sqlite3.Connection, record: CalibrationRecord, digest: str, site: str
) -> None:
    from gateway.records.calibrations import insert

    insert(db, record, digest, site)


def _record_instrument(
    db: sqlite3.Connection, site: str, agent: str, instrument: str, state: InstrumentState
) -> None:
    row = db.execute(
        "SELECT state FROM instrument_states WHERE site=? AND agent=? AND instrument=?",
        (site, agent, instrument),
    ).fetchone()
    db.execute(
        "INSERT OR REPLACE INTO instrument_states VALUES (?,?,?,?,?,?)",
        (site, agent, instrument, state.state, state.since, state.reason),
    )
    if row is None or row[0] != state.state:
        db.execute(
            "INSERT INTO audit_log(ts_ns, actor, action, subject, details) VALUES (?,?,?,?,?)",
            (
                state.since,
                "gateway",
                f"instrument {state.state}",
                f"{site}/{agent}/{instrument}",
                json.dumps({"previous": row[0] if row else None, "reason": state.reason}),
            ),
        )
