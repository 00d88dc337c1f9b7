"""A national hub for the tests, and labs' ledgers to push to it.

``LabLedger`` builds a lab's ledger with the ledger library itself, with the entry kinds and
bodies a gateway's record store chains (gateway.records.bodies): standards, certificates with
their traceability and file hash, instrument identities, calibrations, evaluations.
``running_hub`` runs a Hub in the test's own loop; ``hub_settings`` is its config.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from hub.config import HubConfig
from hub.service import Hub
from ledger import (
    ChainHead,
    Checkpoint,
    Entry,
    LedgerWriter,
    Segment,
    SigningKey,
    export_segment,
)
from tests.support.postgres import PostgresServer, database_settings

NS_PER_DAY = 86_400 * 10**9
BASE_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z

STAFF_TOKENS = {
    "HUB_VIEW_TOKEN": "hub-viewer-token-0123456789",
    "HUB_OPS_TOKEN": "hub-operator-token-0123456789",
    "HUB_ADMIN_TOKEN": "hub-admin-token-0123456789",
}
"""Environment variable → secret of the hub's viewer, operator and admin tokens."""


def staff_env() -> dict[str, str]:
    """The variables of the staff tokens, with their secrets."""
    return dict(STAFF_TOKENS)


def bearer(token: str) -> dict[str, str]:
    """The header of a token (a secret, or a variable of STAFF_TOKENS)."""
    return {"Authorization": f"Bearer {STAFF_TOKENS.get(token, token)}"}


def hub_settings(
    tmp_path: Path, server: PostgresServer, dbname: str, **overrides: Any
) -> dict[str, Any]:
    """A hub config for a test: its database, a free port, the three staff tokens."""
    settings: dict[str, Any] = {
        "id": "hub-test",
        "database": database_settings(server, dbname),
        "key_file": str(tmp_path / "hub.key"),
        "api": {
            "port": 0,
            "tokens": [
                {"name": "viewer", "role": "viewer", "token": {"env": "HUB_VIEW_TOKEN"}},
                {"name": "ops", "role": "operator", "token": {"env": "HUB_OPS_TOKEN"}},
                {"name": "admin", "role": "admin", "token": {"env": "HUB_ADMIN_TOKEN"}},
            ],
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return settings


@contextlib.asynccontextmanager
async def running_hub(settings: dict[str, Any] | HubConfig) -> AsyncIterator[Hub]:
    """A hub in the test's own loop, stopped cleanly at the end."""
    config = settings if isinstance(settings, HubConfig) else HubConfig.model_validate(settings)
    hub = Hub(config)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    started = asyncio.create_task(hub.started.wait())
    done, _ = await asyncio.wait({task, started}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        started.cancel()
        await task
    assert started in done, "hub did not start"
    try:
        yield hub
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class LabLedger:
    """A lab's ledger and its checkpoints, made the way a gateway's record store makes them."""

    def __init__(self, lab: str, key: SigningKey | None = None, start_ns: int = BASE_NS) -> None:
        self.lab = lab
        self.key = key or SigningKey.generate()
        self.now = start_ns
        self.writer = LedgerWriter(ChainHead.start(lab), clock=lambda: self.now)
        self.entries: list[Entry] = []
        self.checkpoints: list[Checkpoint] = []
        self.files: dict[str, bytes] = {}
        self._certificate_ids = 0

    def tick(self, ns: int = 10**9) -> None:
        """Let the lab's clock move on."""
        self.now += ns

    def append(self, kind: str, subject: str, body: dict[str, Any], actor: str = "alice") -> Entry:
        """One entry (the clock moves a second)."""
        self.tick()
        entry = self.writer.append(kind, subject, actor, body)
        self.entries.append(entry)
        return entry

    def checkpoint(self) -> Checkpoint:
        """Sign the head."""
        self.tick()
        checkpoint = self.writer.checkpoint(self.key)
        self.checkpoints.append(checkpoint)
        return checkpoint

    def rotate(self, new: SigningKey) -> Entry:
        """Hand over to a new key (recorded in the chain)."""
        self.tick()
        entry = self.writer.rotate(self.key, new, "admin")
        self.entries.append(entry)
        self.key = new
        return entry

    # -- the record kinds -----------------------------------------------------------------------

    def standard(self, standard_id: str, **fields: Any) -> Entry:
        """A ``standard`` entry (the standard's row as the record store keeps it)."""
        body = {
            "id": standard_id,
            "kind": "dc_voltage",
            "description": f"Reference {standard_id}",
            "nominal": "10.0",
            "unit": "V",
            "manufacturer": "Fluke",
            "model": "732C",
            "serial": f"SN-{standard_id}",
            "owner_lab": self.lab,
            "tolerance": None,
            "status": "active",
            "analysis": "{}",
            "created_ns": str(self.now),
            "updated_ns": str(self.now),
            "channels": [],
        } | fields
        return self.append("standard", f"standard:{standard_id}", body)

    def certificate(
        self,
        standard_id: str,
        number: str,
        issuer: str,
        *,
        calibrated_ns: int,
        due_ns: int | None,
        traceable_to: list[tuple[str, str, str | None]] = (),  # type: ignore[assignment]
        file: bytes | None = None,
        **fields: Any,
    ) -> Entry:
        """A ``certificate`` entry: its row, points and traceability (lab, standard, cert)."""
        self._certificate_ids += 1
        certificate_id = self._certificate_ids
        digest = None
        if file is not None:
            digest = hashlib.sha256(file).hexdigest()
            self.files[digest] = file
        body = {
            "id": certificate_id,
            "standard_id": standard_id,
            "number": number,
            "issuer": issuer,
            "calibration_date": _date(calibrated_ns),
            "calibration_ns": str(calibrated_ns),
            "due_date": None if due_ns is None else _date(due_ns),
            "due_ns": None if due_ns is None else str(due_ns),
            "value": "10.000012",
            "expanded_uncertainty": "1.2e-06",
            "coverage_factor": "2.0",
            "value_text": "10.000012",
            "expanded_uncertainty_text": "0.0000012",
            "coverage_factor_text": "2",
            "conditions": "{}",
            "notes": None,
            "file_name": None if file is None else f"{number}.xml",
            "file_sha256": digest,
            "file_size": None if file is None else len(file),
            "media_type": None if file is None else "application/xml",
            "dcc": None,
            "signature": None,
            "created_ns": str(self.now),
            "updated_ns": str(self.now),
            "points": [],
            "traceability": [
                {
                    "id": index + 1,
                    "certificate_id": certificate_id,
                    "parent_id": None,
                    "position": index,
                    "lab": lab,
                    "standard": standard,
                    "description": None,
                    "certificate": reference,
                    "national": 0,
                }
                for index, (lab, standard, reference) in enumerate(traceable_to)
            ],
        } | fields
        return self.append("certificate", f"certificate:{certificate_id}", body)

    def identity(self, instrument: str, **fields: Any) -> Entry:
        """An ``instrument_identity`` entry (SITE/AGENT/INSTRUMENT)."""
        site, agent, name = instrument.split("/")
        body = {
            "site": site,
            "agent": agent,
            "instrument": name,
            "manufacturer": "Keysight",
            "model": "34465A",
            "serial": "MY" + hashlib.sha256(instrument.encode()).hexdigest()[:8].upper(),
            "firmware": "3.0",
            "identity": "{}",
            "first_seen_ns": str(self.now),
        } | fields
        return self.append("instrument_identity", instrument, body, actor="gateway")

    def audit(self, action: str = "standard updated") -> Entry:
        """An ``audit`` entry (a kind the hub stores without projecting)."""
        body = {"action": action, "details": "{}", "ts_ns": str(self.now)}
        return self.append("audit", "standard:Z", body)

    # -- segments -------------------------------------------------------------------------------

    def segment(
        self, from_seq: int, to_seq: int | None = None, max_entries: int = 10_000
    ) -> Segment:
        """The segment from ``from_seq`` to a checkpoint."""
        return export_segment(
            self.entries,
            self.checkpoints,
            ledger=self.lab,
            from_seq=from_seq,
            to_seq=to_seq,
            max_entries=max_entries,
        )

    def segments(self, from_seq: int = 1, max_entries: int = 1000) -> Iterator[Segment]:
        """Consecutive segments from ``from_seq`` to the last checkpoint."""
        last = max((cp.count for cp in self.checkpoints), default=0)
        while from_seq <= last:
            segment = self.segment(from_seq, max_entries=max_entries)
            yield segment
            from_seq = segment.to_seq + 1


def _date(ns: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).date().isoformat()


LEDGER_TABLES = """
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL, actor TEXT NOT NULL, body_json TEXT NOT NULL,
    prev TEXT NOT NULL, hash TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
"""The ledger's tables as the gateway's record store makes them (gateway.records.ledger_schema)."""


class LabStore:
    """A lab gateway's record store on disk: a ``LabLedger`` written into the ``ledger`` table
    of a SQLite file and its signed checkpoints into the checkpoints file beside it — what
    ``gateway.hubsync.LedgerSource`` reads."""

    def __init__(self, lab: LabLedger, directory: Path, filename: str = "records.db") -> None:
        import sqlite3

        self.lab = lab
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / filename
        self.checkpoints = self.path.with_name(self.path.stem + ".checkpoints")
        with contextlib.closing(sqlite3.connect(self.path)) as db, db:
            db.executescript(LEDGER_TABLES)
            db.execute("INSERT OR IGNORE INTO ledger_meta VALUES ('ledger', ?)", (lab.lab,))
        self._checkpoints_written = 0

    def flush(self) -> None:
        """Store the entries and checkpoints the lab made since the last flush."""
        import sqlite3

        from ledger import CheckpointFile

        with contextlib.closing(sqlite3.connect(self.path)) as db, db:
            stored = db.execute("SELECT coalesce(max(seq), 0) FROM ledger").fetchone()[0]
            db.executemany(
                "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [tuple(e) for e in self.lab.entries if e.seq > stored],
            )
        file = CheckpointFile(self.checkpoints)
        for checkpoint in self.lab.checkpoints[self._checkpoints_written :]:
            file.append(checkpoint)
        self._checkpoints_written = len(self.lab.checkpoints)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Raw SQL on the store (the tests' tampering)."""
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.path)) as db, db:
            db.execute(sql, params)

    def source(self) -> Any:
        """The gateway's reader of this store."""
        from gateway.hubsync.sync import source_of

        return source_of(self.path)
