"""Issue 19's done-when, end to end: a simulated PRT readout with a known error curve publishes
through a real Mosquitto to a running gateway (SQLite store, record store, alerts, API); a DCC
the test makes describes that curve and is linked to the channel through the API.

- the stored corrected values equal the truth within their stated uncertainty (k = 2) at and
  between the calibration points, where the raw values do not;
- a reading outside the calibrated range and one after the certificate's due date are stored
  marked uncertain with the reason, and raise ``calibration_range`` / ``calibration_expired``
  (and the corrected value out of tolerance a ``conformity`` alert with its numbers);
- a certificate replaced mid-stream switches at the link's instant (a reading 1 ns before uses
  the old one, the reading at the instant the new one), both ids stored and traceable to the
  links and the ledger;
- a certificate for another serial is refused, naming both serials.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.service import Gateway
from tests.support.calibration import CALIBRATION_POINTS, SERIAL, ErrorCurve, prt_dcc
from tests.support.gateway import api_settings, bearer, running_gateway, token_env
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto

SITE, AGENT, INSTRUMENT, CHANNEL = "lab", "bath-1", "prt", "temperature"
PATH = f"{SITE}/{AGENT}/{INSTRUMENT}/{CHANNEL}"
ADMIN = bearer("ADMIN_TOKEN")
VIEW = bearer("VIEW_TOKEN")
DAY_NS = 86_400 * 10**9
CURVE_A = ErrorCurve()
CURVE_B = ErrorCurve(offset=0.060, linear=-2.0e-4, quadratic=1.0e-6)


@pytest.fixture
async def gateway(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    for key, value in token_env().items():
        monkeypatch.setenv(key, value)
    settings = {
        "site": SITE,
        "mqtt": {"port": mosquitto.port},
        "spool": {"path": str(tmp_path / "spool.db")},
        "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
        "records": {"path": str(tmp_path / "records.db")},
        "api": api_settings(),
        "alerts": {"tick_s": 0.1},
        "write": {"batch_max_delay_ms": 0},
        "corrections": {
            "channels": [
                {
                    "channel": PATH,
                    "resolution": 0.0001,
                    "tolerance": {"lower": 0.0, "upper": 100.0},
                    "decision_rule": {"kind": "guarded_acceptance"},
                }
            ]
        },
    }
    async with running_gateway(settings) as gw:
        yield gw


def _birth(serial: str) -> bytes:
    return json.dumps(
        {
            "schema": 1,
            "state": "online",
            "site": SITE,
            "agent": AGENT,
            "version": "test",
            "ts": time.time_ns(),
            "instruments": [
                {
                    "name": INSTRUMENT,
                    "protocol": "serial",
                    "identity": {
                        "manufacturer": "Example Instruments",
                        "model": "PRT-1",
                        "serial": serial,
                    },
                    "channels": [{"name": CHANNEL, "unit": "°C", "interval_s": 1.0}],
                }
            ],
        }
    ).encode()


class Readout:
    """The simulated PRT readout's agent: publishes indications of known true temperatures."""

    def __init__(self, port: int) -> None:
        self.client = RawClient(port, "prt-readout")
        self.seq = 0

    def announce(self, serial: str = SERIAL) -> None:
        self.client.publish(f"etalon/v1/{SITE}/{AGENT}/status", _birth(serial), retain=True)

    def publish(self, readings: list[tuple[int, float]]) -> None:
        """(ts, indication) readings in one batch."""
        self.seq += 1
        body = {
            "schema": 1,
            "site": SITE,
            "agent": AGENT,
            "seq": self.seq,
            "readings": [
                {
                    "instrument": INSTRUMENT,
                    "channel": CHANNEL,
                    "ts": ts,
                    "value": value,
                    "unit": "°C",
                    "quality": "good",
                }
                for ts, value in readings
            ],
        }
        self.client.publish(f"etalon/v1/{SITE}/{AGENT}/data", json.dumps(body).encode())


def stored(path: Path) -> dict[int, dict[str, Any]]:
    """Every stored reading of the channel, by timestamp."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cursor = db.execute(
            "SELECT r.ts, r.value, r.quality, r.reason, r.corrected, r.u_corrected, "
            "r.certificate, r.certificate_id, r.conformity FROM readings r "
            "JOIN series s ON s.id = r.series_id WHERE s.channel = ?",
            (CHANNEL,),
        )
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


async def wait_stored(path: Path, timestamps: list[int], timeout_s: float = 30) -> dict[int, Any]:
    import asyncio

    deadline = time.monotonic() + timeout_s
    while True:
        rows = stored(path)
        if all(ts in rows for ts in timestamps):
            return rows
        assert time.monotonic() < deadline, f"not stored: {set(timestamps) - set(rows)}"
        await asyncio.sleep(0.1)


async def wait_for(fetch: Any, check: Any, timeout_s: float = 30) -> Any:
    import asyncio

    deadline = time.monotonic() + timeout_s
    while True:
        value = await fetch()
        if check(value):
            return value
        assert time.monotonic() < deadline, f"never true: {value}"
        await asyncio.sleep(0.1)


async def test_prt_readout_corrected_end_to_end(
    gateway: Gateway, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    readings_db = tmp_path / "readings.db"
    readout = Readout(mosquitto.port)
    assert gateway.api_url is not None
    today = dt.datetime.now(dt.UTC).date()
    due_a, due_b = today + dt.timedelta(days=60), today + dt.timedelta(days=20)
    try:
        readout.announce()
        async with httpx.AsyncClient(base_url=gateway.api_url, timeout=60) as http:

            async def channel_known() -> int:
                rows = await gateway.records.query(
                    "SELECT COUNT(*) AS n FROM instrument_identities WHERE serial=?", (SERIAL,)
                )
                return int(rows[0]["n"])

            await wait_for(channel_known, lambda n: n == 1)

            def upload(data: bytes) -> Any:
                return http.post(
                    "/api/v1/instruments/certificates",
                    content=data,
                    headers={**ADMIN, "Content-Type": "application/xml"},
                )

            answer = await upload(prt_dcc("PRT-CAL-A", CURVE_A, due=due_a))
            assert answer.status_code == 201, answer.text
            cert_a = answer.json()
            assert cert_a["serial"] == SERIAL
            assert cert_a["due_date"] == due_a.isoformat()
            answer = await upload(prt_dcc("PRT-CAL-B", CURVE_B, due=due_b))
            assert answer.status_code == 201, answer.text
            cert_b = answer.json()

            # a certificate of another readout: refused, naming both serials
            answer = await upload(prt_dcc("PRT-CAL-X", CURVE_A, due=due_a, serial="PRT-9999"))
            assert answer.status_code == 201
            other = answer.json()["id"]
            link_url = (
                f"/api/v1/instruments/{SITE}/{AGENT}/{INSTRUMENT}/channels/{CHANNEL}/calibration"
            )
            refused = await http.put(link_url, json={"certificate_id": other}, headers=ADMIN)
            assert refused.status_code == 422, refused.text
            assert "PRT-4711" in refused.text
            assert "PRT-9999" in refused.text

            # link A from an instant of our choosing (a link never starts in the past)
            start = time.time_ns() + 500_000_000
            linked = await http.put(
                link_url, json={"certificate_id": cert_a["id"], "from_ns": start}, headers=ADMIN
            )
            assert linked.status_code == 200, linked.text
            assert linked.json()["link"]["from_ns"] == start

            # at the points and between them: truth within the stated uncertainty
            truths = [*CALIBRATION_POINTS, 12.5, 37.0, 61.3, 88.8, 99.0]
            phase_a = [(start + 1_000_000 * (i + 1), t) for i, t in enumerate(truths)]
            before = (start - 1, 50.0)  # before the link: stored raw only
            readout.publish([before, *[(ts, CURVE_A.indication(t)) for ts, t in phase_a[:1]]])
            readout.publish([(ts, CURVE_A.indication(t)) for ts, t in phase_a[1:]])
            rows = await wait_stored(readings_db, [before[0], *(ts for ts, _ in phase_a)])
            rows_a = rows
            assert rows[before[0]]["corrected"] is None
            assert rows[before[0]]["certificate"] is None
            for ts, truth in phase_a:
                row = rows[ts]
                assert row["quality"] == 0, row
                assert row["certificate"] == "PRT-CAL-A"
                assert row["certificate_id"] == cert_a["id"]
                assert row["value"] == CURVE_A.indication(truth)  # the raw value stays
                assert abs(row["corrected"] - truth) <= 2 * row["u_corrected"], (truth, row)
                assert row["u_corrected"] == pytest.approx(0.005, rel=0.05)
                if abs(CURVE_A.error(truth)) > 0.015:  # where the raw value is clearly off
                    assert abs(row["value"] - truth) > 2 * row["u_corrected"]
                guard = 2 * row["u_corrected"]  # guarded acceptance: w = U
                inside = guard <= row["corrected"] <= 100.0 - guard
                assert row["conformity"] == (0 if inside else 3), row

            # outside the calibrated range: stored corrected, marked uncertain, alerted
            hot = (start + 100_000_000, CURVE_A.indication(120.0))
            readout.publish([hot])
            row = (await wait_stored(readings_db, [hot[0]]))[hot[0]]
            assert row["quality"] == 1
            assert row["reason"].startswith("calibration_range: indication")
            assert row["corrected"] is not None
            assert row["certificate"] == "PRT-CAL-A"
            assert row["conformity"] == 3  # 120 °C against 0 … 100 °C

            # certificate B replaces A mid-stream, at an instant we name
            switch = time.time_ns() + 1_000_000_000
            linked = await http.put(
                link_url, json={"certificate_id": cert_b["id"], "from_ns": switch}, headers=ADMIN
            )
            assert linked.status_code == 200, linked.text
            assert linked.json()["replaced"]["until_ns"] == switch
            around = [(switch - 1, 42.0), (switch, 42.0), (switch + 1_000, 42.0)]
            readout.publish([(ts, CURVE_A.indication(t)) for ts, t in around[:1]])
            readout.publish([(ts, CURVE_B.indication(t)) for ts, t in around[1:]])
            rows = await wait_stored(readings_db, [ts for ts, _ in around])
            assert rows[switch - 1]["certificate"] == "PRT-CAL-A"
            assert rows[switch - 1]["certificate_id"] == cert_a["id"]
            for ts, truth in around[1:]:
                assert rows[ts]["certificate"] == "PRT-CAL-B"
                assert rows[ts]["certificate_id"] == cert_b["id"]
                assert abs(rows[ts]["corrected"] - truth) <= 2 * rows[ts]["u_corrected"]
            assert abs(rows[switch - 1]["corrected"] - 42.0) <= 2 * rows[switch - 1]["u_corrected"]

            # after B's due date: marked and alerted
            late = (
                int(dt.datetime.combine(due_b, dt.time(), dt.UTC).timestamp()) * 10**9 + 2 * DAY_NS,
                CURVE_B.indication(30.0),
            )
            readout.publish([late])
            row = (await wait_stored(readings_db, [late[0]]))[late[0]]
            assert row["quality"] == 1
            assert row["reason"] == (
                f"calibration_expired: certificate PRT-CAL-B was due on {due_b.isoformat()}"
            )
            assert row["certificate"] == "PRT-CAL-B"

            async def alert_kinds() -> dict[str, Any]:
                answer = await http.get("/api/v1/alerts", headers=VIEW)
                return {a["kind"]: a for a in answer.json()}

            alerts = await wait_for(
                alert_kinds,
                lambda found: (
                    {"calibration_range", "calibration_expired", "conformity"} <= set(found)
                ),
            )
            assert alerts["calibration_range"]["subject"] == PATH
            assert alerts["calibration_range"]["detail"]["certificate"] == "PRT-CAL-A"
            assert alerts["calibration_range"]["detail"]["high"] == pytest.approx(100.01)
            assert alerts["calibration_expired"]["detail"]["certificate"] == "PRT-CAL-B"
            verdict = alerts["conformity"]["detail"]
            assert verdict["decision"] == "fail"
            assert verdict["tolerance_upper"] == 100.0
            assert verdict["measured"] == pytest.approx(120.0, abs=0.05)
            assert verdict["guard_band"] > 0

            # where people look: the history (JSON and CSV) carries raw, corrected, u, certificate
            history_url = f"/api/v1/channels/{SITE}/{AGENT}/{INSTRUMENT}/{CHANNEL}/history"
            window = {
                "start": dt.datetime.fromtimestamp((start - 10**9) / 1e9, dt.UTC).isoformat(),
                "end": dt.datetime.fromtimestamp((switch + 10**9) / 1e9, dt.UTC).isoformat(),
            }
            history = (await http.get(history_url, params=window, headers=VIEW)).json()
            by_ts = {p["ts_ns"]: p for p in history["points"]}
            assert by_ts[switch]["certificate"] == "PRT-CAL-B"
            assert by_ts[switch]["certificate_id"] == cert_b["id"]
            assert by_ts[phase_a[2][0]]["corrected"] == rows_a[phase_a[2][0]]["corrected"]
            assert by_ts[before[0]]["corrected"] is None
            csv_text = (
                await http.get(history_url, params={**window, "format": "csv"}, headers=VIEW)
            ).text
            header = csv_text.splitlines()[0].split(",")
            assert header[-5:] == ["u", "corrected", "u_corrected", "certificate_id", "certificate"]
            assert csv_text.count("PRT-CAL-A") == len(phase_a) + 2  # + the hot one and switch-1
            assert csv_text.count("PRT-CAL-B") == 2

            # both certificates traceable: the links (and their ledger entries) name the instants
            shown = (
                await http.get(f"/api/v1/instruments/{SITE}/{AGENT}/{INSTRUMENT}", headers=VIEW)
            ).json()
            links = [(x["certificate_id"], x["from_ns"], x["until_ns"]) for x in shown["links"]]
            assert links == [(cert_a["id"], start, switch), (cert_b["id"], switch, None)]
            listed = (await http.get("/api/v1/instruments/calibrated", headers=VIEW)).json()
            assert [x["path"] for x in listed] == [f"{SITE}/{AGENT}/{INSTRUMENT}"]
            in_force = listed[0]["channels"][CHANNEL]["certificate"]
            assert in_force["id"] == cert_b["id"]
            dcc_a = await http.get(
                f"/api/v1/instruments/certificates/{cert_a['id']}/dcc", headers=VIEW
            )
            assert dcc_a.content == prt_dcc("PRT-CAL-A", CURVE_A, due=due_a)
            entries = await gateway.records.query(
                "SELECT kind, subject FROM ledger WHERE kind IN "
                "('instrument_certificate', 'calibration_link') ORDER BY seq"
            )
            kinds = [(e["kind"], e["subject"]) for e in entries]
            assert ("instrument_certificate", f"instrument-certificate:{cert_a['id']}") in kinds
            assert kinds.count(("calibration_link", "calibration-link:1")) == 2  # made, ended
            verified = await http.get("/api/v1/records/verify", headers=bearer("AUDIT_TOKEN"))
            assert verified.json()["ok"] is True, verified.text
    finally:
        readout.client.close()
