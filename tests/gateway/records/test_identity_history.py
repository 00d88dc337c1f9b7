"""The history of an instrument's identity through a running gateway: an agent's birth messages
over a real Mosquitto keep every identity the instrument had (a firmware update is a new row, the
same identity again only moves its last sighting — nothing is overwritten), each new one is a
ledger entry, ``GET /api/v1/instruments/{site}/{agent}/{instrument}/history`` serves them oldest
first, and an identity row changed behind the ledger is found by verify."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.records.verify import verify_file
from gateway.service import Gateway
from tests.support.gateway import API_TOKENS, api_settings, bearer, running_gateway
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto

URL = "/api/v1/instruments/lab-1/bench-1/dmm-1/history"


T0 = 1_796_000_000_000_000_000
"""A status time the wire accepts (after 2000); births are T0 + 1, 2, 3 ns."""


def birth(firmware: str, ts: int) -> bytes:
    status: dict[str, Any] = {
        "schema": 1,
        "state": "online",
        "site": "lab-1",
        "agent": "bench-1",
        "version": "1",
        "ts": T0 + ts,
        "instruments": [
            {
                "name": "dmm-1",
                "protocol": "visa",
                "identity": {
                    "manufacturer": "Keysight",
                    "model": "3458A",
                    "serial": "MY123",
                    "firmware": firmware,
                },
                "channels": [{"name": "voltage", "unit": "V", "interval_s": 1.0}],
            }
        ],
    }
    return json.dumps(status).encode()


async def wait_rows(http: httpx.AsyncClient, count: int, last_seen_after: int = 0) -> list[Any]:
    for _ in range(300):
        answer = await http.get(URL, headers=bearer("VIEW_TOKEN"))
        if answer.status_code == 200:
            rows = answer.json()
            if len(rows) == count and rows[-1]["last_seen_ns"] > last_seen_after:
                return list(rows)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no history of {count} identities")


async def test_identity_history_is_kept_served_and_verified(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, secret in API_TOKENS.items():
        monkeypatch.setenv(name, secret)
    settings = {
        "site": "lab-1",
        "mqtt": {"port": mosquitto.port},
        "spool": {"path": str(tmp_path / "spool.db")},
        "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
        "records": {"path": str(tmp_path / "records.db")},
        "api": api_settings(),
    }
    client = RawClient(mosquitto.port, "bench-1-test")
    topic = "etalon/v1/lab-1/bench-1/status"
    gateway: Gateway
    try:
        async with running_gateway(settings) as gateway:
            assert gateway.api_url is not None
            async with httpx.AsyncClient(base_url=gateway.api_url, timeout=30) as http:
                assert (await http.get(URL)).status_code == 401
                missing = await http.get(URL, headers=bearer("VIEW_TOKEN"))
                assert missing.status_code == 404 and "dmm-1" in missing.text
                client.publish(topic, birth("1.0", 1), retain=True)
                (first,) = await wait_rows(http, 1)
                client.publish(topic, birth("1.0", 2), retain=True)  # the same again
                (again,) = await wait_rows(http, 1, first["last_seen_ns"])
                assert again["first_seen_ns"] == first["first_seen_ns"]
                client.publish(topic, birth("1.1", 3), retain=True)  # a firmware update
                old, new = await wait_rows(http, 2)
                assert (old["firmware"], new["firmware"]) == ("1.0", "1.1")
                assert old["first_seen_ns"] == first["first_seen_ns"]
                assert old["last_seen_ns"] >= again["last_seen_ns"]
                assert new["first_seen_ns"] >= old["last_seen_ns"]
                assert old["serial"] == new["serial"] == "MY123"
                assert new["identity"]["model"] == "3458A"
                assert old["ledger_seq"] < new["ledger_seq"]
                bad = await http.get(
                    "/api/v1/instruments/lab-1/bench-1/a b/history", headers=bearer("VIEW_TOKEN")
                )
                assert bad.status_code == 422
    finally:
        client.close()
    config = gateway.config.records
    entries = sqlite3.connect(config.path).execute(
        "SELECT seq FROM ledger WHERE kind='instrument_identity' ORDER BY seq"
    )
    assert [seq for (seq,) in entries] == [old["ledger_seq"], new["ledger_seq"]]
    assert verify_file(config).ok
    db = sqlite3.connect(config.path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="never overwritten"):
        db.execute("UPDATE instrument_identities SET serial='MY999' WHERE firmware='1.0'")
    db.execute("DROP TRIGGER identities_keep_identity")  # as someone with the file would
    db.execute("UPDATE instrument_identities SET serial='MY999' WHERE firmware='1.0'")
    db.close()
    report = verify_file(config)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.table) == ("edited", "instrument_identities")
