"""Tampering with a real gateway's record store, by raw SQL on the database file while the
gateway is stopped — each kind the issue names, and a live row changed behind the ledger:
``etalon records verify`` exits 3 naming it (English and Vietnamese), the restarted gateway's
``GET /api/v1/records/verify`` names it, and the gateway raises the records_integrity alert.
An untouched store verifies everywhere and raises nothing."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main
from ledger import Entry
from tests.support.gateway import bearer, token_env
from tests.support.processes import EtalonProcess, child_env, etalon_command, write_yaml
from tests.support.services import Mosquitto, free_port

Tamper = Callable[[sqlite3.Connection], None]


def settings(tmp: Path, broker: Mosquitto, port: int) -> dict[str, Any]:
    return {
        "site": "lab-1",
        "mqtt": {"port": broker.port},
        "spool": {"path": str(tmp / "spool.db")},
        "store": {"kind": "sqlite", "path": str(tmp / "readings.db")},
        "records": {"path": str(tmp / "records.db"), "ledger": {"verify_interval_s": 0}},
        "standards": {"analytics": False},
        "alerts": {"tick_s": 0.1},
        "api": {
            "port": port,
            "tokens": [
                {"name": "assessor", "role": "auditor", "token": {"env": "AUDIT_TOKEN"}},
                {"name": "quality-manager", "role": "admin", "token": {"env": "ADMIN_TOKEN"}},
                {"name": "wall", "role": "viewer", "token": {"env": "VIEW_TOKEN"}},
            ],
        },
    }


def records_verify(config: Path, lang: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        etalon_command("--lang", lang, "records", "verify", "-c", str(config)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )


def drop_triggers(db: sqlite3.Connection) -> None:
    for name in ("ledger_no_update", "ledger_no_delete", "audit_log_no_update",
                 "audit_log_no_delete"):  # fmt: skip
        db.execute(f"DROP TRIGGER IF EXISTS {name}")


def edit(db: sqlite3.Connection) -> None:
    db.execute("UPDATE ledger SET actor='mallory' WHERE seq=4")


def delete(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM ledger WHERE seq=4")


def insert_backdated(db: sqlite3.Connection) -> None:
    # The issue's own example: a backdated audit entry written straight into the table.
    db.execute(
        "INSERT INTO audit_log(ts_ns, actor, action, subject, details) "
        "VALUES (1600000000000000000, 'quality-manager', 'certificate.add', 'standard:Z10-01', "
        "'{}')"
    )


def reorder(db: sqlite3.Connection) -> None:
    db.execute("UPDATE ledger SET seq=-1 WHERE seq=4")
    db.execute("UPDATE ledger SET seq=4 WHERE seq=6")
    db.execute("UPDATE ledger SET seq=6 WHERE seq=-1")


def truncate(db: sqlite3.Connection) -> None:
    (count,) = db.execute("SELECT MAX(seq) FROM ledger").fetchone()
    db.execute("DELETE FROM ledger WHERE seq > ?", (count - 6,))


def rewrite(db: sqlite3.Connection) -> None:
    """Change entry 4 and recompute every hash after it: a consistent chain, without the key."""
    rows = [Entry(*row) for row in db.execute(
        "SELECT seq, ts_ns, kind, subject, actor, body_json, prev, hash FROM ledger ORDER BY seq"
    )]  # fmt: skip
    previous = rows[2].hash
    db.execute("DELETE FROM ledger WHERE seq >= 4")
    for row in rows[3:]:
        actor = "mallory" if row.seq == 4 else row.actor
        forged = Entry.create(row.seq, row.ts_ns, row.kind, row.subject, actor, row.body, previous)
        db.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?)", tuple(forged))
        previous = forged.hash


def live_row(db: sqlite3.Connection) -> None:
    db.execute("UPDATE certificates SET value=10.5, value_text='10.5'")


CASES: list[tuple[str, Tamper, str, str]] = [
    ("edit", edit, "edited", "bị sửa"),
    ("delete", delete, "deleted", "bị xóa"),
    ("insert", insert_backdated, "inserted", "bị chèn thêm"),
    ("reorder", reorder, "reordered", "bị đảo thứ tự"),
    ("truncate", truncate, "truncated", "bị cắt bớt"),
    ("rewrite", rewrite, "rewritten", "bị viết lại"),
    ("live-row", live_row, "edited", "bị sửa"),
]


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def wait_alert(api: httpx.AsyncClient) -> dict[str, Any]:
    for _ in range(200):
        alerts = (await api.get("/api/v1/alerts", headers=bearer("VIEW_TOKEN"))).json()
        found = [a for a in alerts if a["kind"] == "records_integrity"]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no records_integrity alert")


async def test_each_kind_of_tampering_is_named_everywhere_and_raises_the_alert(
    tmp_path: Path,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, secret in token_env().items():
        monkeypatch.setenv(name, secret)
    port = free_port()
    config = write_yaml(tmp_path / "gateway.yaml", settings(tmp_path, mosquitto, port))
    gateway = EtalonProcess("gateway", config, tmp_path / "gateway.log", env=token_env())
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
    admin = bearer("ADMIN_TOKEN")
    try:
        gateway.start()
        await in_thread(gateway.wait_log, "api listening", 60)
        standard = {"id": "Z10-01", "kind": "dc_voltage", "nominal": 10, "unit": "V",
                    "owner_lab": "VMI"}  # fmt: skip
        made = await api.post("/api/v1/standards", json=standard, headers=admin)
        assert made.status_code == 201
        certificate = {"number": "VMI-1", "issuer": "VMI", "calibration_date": "2025-03-10",
                       "value": 10.0000081, "expanded_uncertainty": 4e-7,
                       "coverage_factor": 2}  # fmt: skip
        created = await api.post(
            "/api/v1/standards/Z10-01/certificates", json=certificate, headers=admin
        )
        assert created.status_code == 201, created.text
        for n in range(4):
            changed = standard | {"description": f"Zener reference, revision {n}"}
            assert (await api.put("/api/v1/standards/Z10-01", json=changed, headers=admin)).json()
        clean = (await api.get("/api/v1/records/verify", headers=bearer("AUDIT_TOKEN"))).json()
        assert clean["ok"] and clean["entries"] >= 13, clean
        refused = await api.get("/api/v1/records/verify", headers=bearer("VIEW_TOKEN"))
        assert refused.status_code == 403  # verifying is an auditor's (or above) job
        key = (await api.get("/api/v1/records/key", headers=bearer("VIEW_TOKEN"))).json()
        assert key["key_id"].startswith("ed25519:") and "PRIVATE" not in str(key)
        assert await in_thread(gateway.stop) == 0
        assert "PRIVATE KEY" not in gateway.log()

        pristine = tmp_path / "pristine"
        pristine.mkdir()
        for name in ("records.db", "records.checkpoints"):
            shutil.copy2(tmp_path / name, pristine / name)
        ok = await in_thread(records_verify, config)
        assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr

        for case, tamper, kind, kind_vi in CASES:
            for name in ("records.db", "records.checkpoints"):
                shutil.copy2(pristine / name, tmp_path / name)
            for leftover in ("records.db-wal", "records.db-shm"):
                (tmp_path / leftover).unlink(missing_ok=True)
            db = sqlite3.connect(tmp_path / "records.db", isolation_level=None)
            drop_triggers(db)
            tamper(db)
            db.close()

            if case == "edit":  # the command as a user runs it, once
                found = await in_thread(records_verify, config)
                assert found.returncode == 3, (case, found.stdout, found.stderr)
                assert f"BROKEN ({kind})" in found.stdout, (case, found.stdout)
            for lang, word in (("en", f"BROKEN ({kind})"), ("vi", f"BỊ PHÁ VỠ ({kind_vi})")):
                capsys.readouterr()
                code = main(["--lang", lang, "records", "verify", "-c", str(config)])
                out = capsys.readouterr().out
                assert code == 3 and word in out, (case, out)

            mark = len(gateway.log())
            gateway.start()
            await in_thread(gateway.wait_log, "records broken", 60, mark)
            await in_thread(gateway.wait_log, "api listening", 60, mark)
            alert = await wait_alert(api)
            assert alert["state"] == "active_unacknowledged" and alert["severity"] == "critical"
            assert alert["detail"]["kind"] == kind, (case, alert)
            report = (
                await api.get(
                    "/api/v1/records/verify", params={"lang": "vi"}, headers=bearer("AUDIT_TOKEN")
                )
            ).json()
            assert not report["ok"] and report["finding"]["kind"] == kind, (case, report)
            assert kind_vi in report["summary"]
            assert await in_thread(gateway.stop) == 0, case
    finally:
        await api.aclose()
        await in_thread(gateway.ensure_stopped)
