"""A gateway configured with ``hub:`` pushes its record store's ledger to a running hub on its
own, and serves the sync state (last entry pushed, lag, the hub's refusal in en/vi) at
``GET /api/v1/hub/sync`` — what the dashboard's hub tile shows."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from core.errors import ConfigError
from gateway.hubsync.config import HubSyncConfig
from gateway.hubsync.sync import HubSync, HubUnreachable, LedgerSource, source_of
from ledger import SigningKey
from tests.support.gateway import API_TOKENS, api_settings, bearer, running_gateway
from tests.support.hub import LabLedger, LabStore, hub_settings, running_hub, staff_env
from tests.support.hub import bearer as hub_bearer
from tests.support.postgres import PostgresServer
from tests.support.services import Mosquitto, free_port


async def wait_for(read: Any, check: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await read()
        if check(value):
            return value
        assert time.monotonic() < deadline, f"not reached: {value}"
        await asyncio.sleep(0.1)


async def test_a_gateway_pushes_its_ledger(
    tmp_path: Path,
    postgres: PostgresServer,
    hub_database: str,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway's own record store and ledger (records.ledger), its own key: what it chains
    (records.start, a standard registered over its API, a certificate) reaches the hub exactly
    as stored; an entry edited in the store by raw SQL is refused and shown."""
    for key, value in (staff_env() | API_TOKENS).items():
        monkeypatch.setenv(key, value)
    key = SigningKey.open(tmp_path / "lab.ledger.key")
    records = tmp_path / "records.db"
    async with running_hub(hub_settings(tmp_path, postgres, hub_database)) as hub:
        async with httpx.AsyncClient(base_url=hub.url or "", timeout=30) as client:
            r = await client.post(
                "/api/v1/admin/labs",
                json={"lab": "lab-gw", "public_key": key.public_key.to_text(), "name": "GW"},
                headers=hub_bearer("HUB_ADMIN_TOKEN"),
            )
            assert r.status_code == 201, r.text
            monkeypatch.setenv("LAB_HUB_TOKEN", r.json()["token"])
        settings = {
            "site": "lab-1",
            "mqtt": {"port": mosquitto.port},
            "spool": {"path": str(tmp_path / "spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {
                "path": str(records),
                "ledger": {
                    "id": "lab-gw",
                    "key_file": str(tmp_path / "lab.ledger.key"),
                    "checkpoint_every_entries": 1000,
                    "checkpoint_every_s": 86400,
                    "publish_checkpoints": False,
                },
            },
            "api": api_settings(),
            "hub": {
                "url": hub.url,
                "token": {"env": "LAB_HUB_TOKEN"},
                "interval_s": 0.2,
                "backoff": {"initial_s": 0.1, "max_s": 1},
            },
        }

        async def state(api: httpx.AsyncClient) -> dict[str, Any]:
            r = await api.get("/api/v1/hub/sync", headers=bearer("VIEW_TOKEN"))
            assert r.status_code == 200, r.text
            return dict(r.json())

        async with (
            running_gateway(settings) as gateway,
            httpx.AsyncClient(base_url=gateway.api_url or "", timeout=60) as api,
        ):
            assert (await api.get("/api/v1/hub/sync")).status_code == 401
            done = await wait_for(lambda: state(api), lambda s: s["hub_count"] and s["lag"] == 0)
            assert (done["lab"], done["refusals"]) == ("lab-gw", 0)
            pushed = done["hub_count"]
            standard = {"id": "Z10-01", "kind": "dc_voltage", "nominal": 10, "unit": "V",
                        "owner_lab": "VMI", "serial": "GW-Z10"}  # fmt: skip
            made = await api.post("/api/v1/standards", json=standard, headers=bearer("ADMIN_TOKEN"))
            assert made.status_code == 201, made.text
            # Not signed yet (a checkpoint comes every 1,000 entries or at stop): it waits.
            waiting = await wait_for(
                lambda: state(api), lambda s: s["waiting_for_checkpoint"] and s["lag"]
            )
            assert waiting["hub_count"] == pushed
        # At stop the gateway signed its head (and may have pushed it before it stopped).
        local = await asyncio.to_thread(ledger_rows, records)
        pushed = len(rows_at_hub(postgres, hub_database))
        assert rows_at_hub(postgres, hub_database) == local[:pushed]  # as the gateway chained them
        # A run without hub: appends and signs entries the hub has not seen; someone edits one.
        offline = {k: v for k, v in settings.items() if k != "hub"}
        async with (
            running_gateway(offline) as gateway,
            httpx.AsyncClient(base_url=gateway.api_url or "", timeout=60) as api,
        ):
            made = await api.post(
                "/api/v1/standards", json=standard | {"id": "Z10-02"}, headers=bearer("ADMIN_TOKEN")
            )
            assert made.status_code == 201, made.text
        local = await asyncio.to_thread(ledger_rows, records)
        assert len(local) > pushed
        await asyncio.to_thread(tamper, records, pushed + 1)
        async with (
            running_gateway(settings) as gateway,
            httpx.AsyncClient(base_url=gateway.api_url or "", timeout=60) as api,
        ):
            refused = await wait_for(lambda: state(api), lambda s: s["last_refusal"] is not None)
        assert refused["last_refusal"]["status"] == 409, refused
        assert refused["last_refusal"]["reason"] == "edited", refused
        messages = refused["last_refusal"]["messages"]
        assert str(pushed + 1) in messages["en"] and messages["vi"] != messages["en"]
        assert refused["hub_count"] == pushed
        assert rows_at_hub(postgres, hub_database) == local[:pushed]  # nothing of it stored


def ledger_rows(path: Path) -> list[tuple[Any, ...]]:
    """The gateway's ledger as its record store holds it."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [
            tuple(row)
            for row in db.execute(
                "SELECT seq, ts_ns, kind, subject, actor, body_json, prev, hash FROM ledger "
                "ORDER BY seq"
            )
        ]


def rows_at_hub(postgres: PostgresServer, dbname: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(postgres.conninfo(dbname), password=postgres.password) as conn:
        return [
            tuple(row)
            for row in conn.execute(
                "SELECT seq, ts_ns, kind, subject, actor, body_json, prev, hash FROM entries "
                "WHERE lab = 'lab-gw' ORDER BY seq"
            )
        ]


def tamper(path: Path, seq: int) -> None:
    """Edit one entry by raw SQL (the append-only trigger is dropped first, as anyone with the
    file can)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("DROP TRIGGER IF EXISTS ledger_no_update")
        changed = db.execute("UPDATE ledger SET actor = 'mallory' WHERE seq = ?", (seq,)).rowcount
        db.commit()
    assert changed == 1


def source(tmp_path: Path) -> LedgerSource:
    return source_of(tmp_path / "records.db")


def config(**changes: Any) -> HubSyncConfig:
    return HubSyncConfig.model_validate(
        {"url": f"http://127.0.0.1:{free_port()}", "token": {"env": "LAB_HUB_TOKEN"}} | changes
    )


async def test_nothing_to_push_before_the_ledger_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_HUB_TOKEN", "x")
    sync = HubSync(config(), source(tmp_path))
    async with sync:
        assert await sync.sync_once() == 0  # no store, no ledger id: the hub is not asked
    assert sync.state.lab is None and sync.state.hub_count is None


async def test_an_unreachable_hub_is_retried_and_the_loop_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_HUB_TOKEN", "x")
    lab = LabLedger("lab-x")
    lab.audit()
    lab.checkpoint()
    LabStore(lab, tmp_path).flush()
    sync = HubSync(config(timeout_s=2, interval_s=0.05), source(tmp_path))
    async with sync:
        with pytest.raises(HubUnreachable, match="Connect"):
            await sync.sync_once()
    stop = asyncio.Event()
    task = asyncio.create_task(sync.run(stop))
    await wait_for(_value(lambda: sync.state.error), lambda e: e is not None, 20)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert sync.state.local_count == 1 and sync.state.hub_count is None


def _value(get: Any) -> Any:
    async def read() -> Any:
        return get()

    return read


async def test_hostile_hub_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub (or something in its place) answering garbage: the gateway says so, stores
    nothing, and does not crash."""
    monkeypatch.setenv("LAB_HUB_TOKEN", "x")
    lab = LabLedger("lab-x")
    lab.audit()
    lab.checkpoint()
    LabStore(lab, tmp_path).flush()
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json",
        b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{"count":-1}',
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
        b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy",
        b"garbage\r\n\r\n",
    ]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answers.pop(0))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        sync = HubSync(config(url=f"http://127.0.0.1:{port}", timeout_s=5), source(tmp_path))
        async with sync:
            for expected in ("not a head", "not a head", "not a head", "HTTP 503", "Error"):
                with pytest.raises(HubUnreachable, match=expected):
                    await sync.sync_once()
    assert sync.state.pushes == 0 and sync.state.refusals == 0


def test_checkpoints_far_apart(tmp_path: Path) -> None:
    lab = LabLedger("lab-x")
    for n in range(30):
        lab.audit(str(n))
    lab.checkpoint()
    LabStore(lab, tmp_path).flush()
    segment = source(tmp_path).segment("lab-x", 1, 10)  # the first checkpoint is at 30
    assert segment is not None and (segment.from_seq, segment.to_seq) == (1, 30)
    assert source(tmp_path).segment("lab-x", 31, 10) is None


def test_a_token_that_does_not_resolve_is_a_config_error(tmp_path: Path) -> None:
    sync = HubSync(config(token={"env": "NOT_SET_ANYWHERE"}), source(tmp_path))
    with pytest.raises(ConfigError, match=r"hub\.token"):
        sync.check()
    sync = HubSync(config(ca_file=str(tmp_path / "none.pem")), source(tmp_path))
    with pytest.raises(ConfigError, match=r"hub\.ca_file"):
        sync.check()
