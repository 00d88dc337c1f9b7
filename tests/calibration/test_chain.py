"""A run's readings and record reach the gateway through the normal chain — the bench's spool, a
real Mosquitto, the gateway's ingest — and the gateway serves the record, its report and its DCC
(signed with the lab's key). A redelivered record is stored once; another record for a stored run
and hostile calibration payloads are dead-lettered with their reason. A registered standard as
the reference: its value in use on the run date comes from the gateway's registry."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from calibration.state import RunStore
from calibration.stream import RunStream, run_of_message
from core.mqtt import MqttConfig
from edge_agent.wire_calibration import encode_calibration
from gateway.config import GatewayConfig
from gateway.service import Gateway
from metrology import dcc
from metrology.certificate.record import canonical_bytes, load_record, record_sha256
from tests.calibration.conftest import Bench, procedure, start_bench
from tests.support.calibration_record import sample_record
from tests.support.mqtt_client import RawClient
from tests.support.pki import certificate_authority, signer
from tests.support.services import Mosquitto

TOKENS = {"VIEW_TOKEN": "viewer-token-0123456789", "ADMIN_TOKEN": "admin-token-0123456789",
          "OPS_TOKEN": "operator-token-0123456789"}  # fmt: skip


def _pem(tmp_path: Path) -> tuple[Path, Path, Any]:
    ca = certificate_authority()
    lab = signer(ca)
    key = tmp_path / "lab.key"
    key.write_bytes(
        lab.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert = tmp_path / "lab.pem"
    cert.write_bytes(lab.certificate.public_bytes(serialization.Encoding.PEM))
    return key, cert, ca.certificate


@pytest.fixture
async def gateway(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Gateway, Any]]:
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    key, cert, anchor = _pem(tmp_path)
    config = GatewayConfig.model_validate(
        {
            "site": "hanoi",
            "mqtt": {"port": mosquitto.port},
            "spool": {"path": str(tmp_path / "gw-spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {"path": str(tmp_path / "records.db")},
            "standards": {"analytics_interval_s": 3600, "worker": "thread"},
            "calibrations": {"signing": {"key_file": str(key), "cert_file": str(cert)}},
            "api": {
                "port": 0,
                "tokens": [
                    {"name": "screen", "role": "viewer", "token": {"env": "VIEW_TOKEN"}},
                    {"name": "ops", "role": "operator", "token": {"env": "OPS_TOKEN"}},
                    {"name": "qm", "role": "admin", "token": {"env": "ADMIN_TOKEN"}},
                ],
            },
        }
    )
    stop = asyncio.Event()
    gw = Gateway(config)
    task = asyncio.create_task(gw.run(stop))
    await asyncio.wait_for(gw.started.wait(), 60)
    yield gw, anchor
    stop.set()
    await asyncio.wait_for(task, 30)


def as_(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


async def _stream(bench: Bench, store: RunStore, port: int) -> RunStream:
    async def delivered(message: bytes) -> None:
        run = run_of_message(message)
        if run is not None:
            await store.mark_published(run)

    mqtt = MqttConfig(port=port, connect_timeout_s=5)
    return RunStream(bench.directory / "data", mqtt, "hanoi", "dc-bench-1-cal", delivered)


async def _wait_for(http: httpx.AsyncClient, path: str, timeout_s: float = 30) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        answer = await http.get(path, headers=as_("VIEW_TOKEN"))
        if answer.status_code == 200 and answer.json():
            return answer
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{path}: {answer.status_code} {answer.text}")
        await asyncio.sleep(0.2)


async def test_a_run_reaches_the_gateway_which_serves_its_record_report_and_signed_dcc(
    tmp_path: Path, mosquitto: Mosquitto, gateway: tuple[Gateway, Any]
) -> None:
    gw, anchor = gateway
    bench = await start_bench(tmp_path / "bench")
    try:
        bench.agent(mqtt={"port": mosquitto.port})
        data = procedure(points=[{"nominal": 1, "range": 10}, {"nominal": 9, "range": 10}])
        async with RunStore(tmp_path / "bench" / "data" / "runs.db") as store:
            stream = await _stream(bench, store, mosquitto.port)
            run, outcome = await bench.run(store, bench.procedure(data), stream=stream)
            assert outcome.status == "completed"
            assert await stream.drain(20), "the broker did not take everything"
            await stream.stop()
            row = await store.get(run)
            assert row is not None and row.record is not None and row.published_ns is not None
            local = load_record(row.record)
    finally:
        await bench.sim.stop()
    assert gw.api_url is not None
    async with httpx.AsyncClient(base_url=gw.api_url + "/api/v1", timeout=30) as http:
        assert (await http.get("/calibrations")).status_code == 401
        listed = (await _wait_for(http, "/calibrations")).json()
        assert [item["run"] for item in listed] == [run]
        assert listed[0]["decision"] == local.decision and listed[0]["points"] == 2
        assert listed[0]["uut_serial"] == "MY12345" and listed[0]["agent"] == "dc-bench-1-cal"
        shown = await http.get(f"/calibrations/{run}", headers=as_("VIEW_TOKEN"))
        assert shown.status_code == 200
        body = shown.json()
        assert body["sha256"] == row.record_sha256 == shown.headers["x-etalon-sha256"]
        assert canonical_bytes(load_record(body["record"])) == row.record.encode()
        assert (await http.get("/calibrations/nope", headers=as_("VIEW_TOKEN"))).status_code == 404
        assert (await http.get("/calibrations/a b", headers=as_("VIEW_TOKEN"))).status_code == 422
        report = await http.get(f"/calibrations/{run}/report?lang=vi", headers=as_("VIEW_TOKEN"))
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
        assert "sandbox" in report.headers["content-security-policy"]
        assert "Báo cáo hiệu chuẩn" in report.text and run in report.text
        document = await http.get(f"/calibrations/{run}/dcc", headers=as_("VIEW_TOKEN"))
        assert document.status_code == 200
        dcc.validate(document.content)
        verdict = dcc.verify(document.content, anchors=[anchor])
        assert verdict.status == "valid", verdict
        assert dcc.parse(document.content).unique_identifier == run
        audit = await http.get(
            "/audit", params={"subject": f"calibration:{run}"}, headers=as_("VIEW_TOKEN")
        )
        assert [e["action"] for e in audit.json()] == ["calibration recorded"]
        assert audit.json()[0]["details"]["sha256"] == row.record_sha256
        # the record and its audit row are chained in the record store's ledger
        chained = await gw.records.query(
            "SELECT kind FROM ledger WHERE subject=? ORDER BY seq", (f"calibration:{run}",)
        )
        assert [c["kind"] for c in chained] == ["calibration.result", "audit"]
        verified = await http.get("/records/verify", headers=as_("ADMIN_TOKEN"))
        assert verified.json()["ok"] and "calibrations" in verified.json()["tables"], verified.text

        # every reading of the run reached the store, tagged with the run and its point
        await asyncio.sleep(1.5)  # the gateway's writer batches
        with sqlite3.connect(tmp_path / "readings.db") as db:
            rows = db.execute(
                "SELECT s.agent, s.instrument, s.tags, COUNT(*) FROM readings r "
                "JOIN series s ON s.id = r.series_id GROUP BY s.id"
            ).fetchall()
        tagged = [(a, i, json.loads(t), n) for a, i, t, n in rows if run in t]
        measured = [x for x in tagged if x[2].get("phase") == "measure"]
        assert {(x[1], x[2]["point"]) for x in measured} == {
            ("uut-dmm", "0"),
            ("reference", "0"),
            ("uut-dmm", "1"),
            ("reference", "1"),
        }
        assert all(n == 8 for *_, n in measured)
        assert all(a == "dc-bench-1-cal" for a, *_ in tagged)
        assert {x[2]["phase"] for x in tagged} == {"settling", "measure", "environment"}

        # a redelivery is the same record: stored once; another record for the run is refused
        client = RawClient(mosquitto.port, "test-replayer")
        try:
            topic = "etalon/v1/hanoi/dc-bench-1-cal/calibrations"
            client.publish(topic, encode_calibration(local))
            other = local.model_copy(update={"operator": "Someone else"})
            client.publish(topic, encode_calibration(other))
        finally:
            client.close()
        await asyncio.sleep(1.0)
        assert [i["run"] for i in (await http.get("/calibrations", headers=as_("VIEW_TOKEN"))
                                   ).json()] == [run]  # fmt: skip
    assert gw.metrics.calibrations_received == 1
    assert gw.metrics.calibrations_duplicate == 1
    letters = await gw.records.query("SELECT reason FROM deadletters")
    assert [r["reason"] for r in letters] == [
        f"run {run} already has a record (SHA-256 {row.record_sha256}); a calibration record "
        "never changes"
    ]


HOSTILE = [
    ("bench-x", b"{not json", "invalid JSON"),
    ("bench-x", b"[1]", "payload must be a JSON object, not list"),
    ("bench-x", b'{"schema": true}', "unknown schema version True"),
    ("bench-y", "good", "envelope names hanoi/bench-x but was published on hanoi/bench-y"),
    ("bench-x", "nan", "NaN is not a JSON number"),
    ("bench-x", "hash", "the record's SHA-256 is"),
    ("bench-x", "record", "bad record: points.0.verdict"),
]


def _hostile(kind: bytes | str) -> bytes:
    good = encode_calibration(sample_record(agent="bench-x"))
    if isinstance(kind, bytes):
        return kind
    if kind == "nan":
        return good.replace(b'"error":', b'"error":NaN,"e2":', 1)
    if kind == "hash":
        return good.replace(b'"operator":"Nguy', b'"operator":"Tran', 1)
    if kind == "record":
        data = json.loads(good)
        data["record"]["points"][0]["verdict"] = {"decision": "pass"}
        return json.dumps(data).encode()
    return good


async def test_hostile_calibration_payloads_are_dead_lettered_and_nothing_is_stored(
    mosquitto: Mosquitto, gateway: tuple[Gateway, Any]
) -> None:
    gw, _ = gateway
    client = RawClient(mosquitto.port, "test-hostile")
    try:
        for count, (topic_agent, kind, reason) in enumerate(HOSTILE, start=1):
            client.publish(f"etalon/v1/hanoi/{topic_agent}/calibrations", _hostile(kind))
            for _ in range(200):
                letters = await gw.records.query(
                    "SELECT topic, reason FROM deadletters ORDER BY id"
                )
                if len(letters) >= count:
                    break
                await asyncio.sleep(0.05)
            assert len(letters) == count, letters
            assert letters[-1]["topic"].endswith(f"/{topic_agent}/calibrations")
            assert reason in letters[-1]["reason"], letters[-1]["reason"]
    finally:
        client.close()
    assert await gw.records.query("SELECT run FROM calibrations") == []
    assert gw.metrics.calibrations_received == 0


async def test_a_registered_standard_is_the_reference_at_its_value_in_use(
    tmp_path: Path, mosquitto: Mosquitto, gateway: tuple[Gateway, Any]
) -> None:
    gw, _ = gateway
    assert gw.api_url is not None
    # the calibrator's 10 V output, registered as a standard with three certificates that drift
    # by +1 µV a year: on the run date (2026-11-20) the fit says 10.0000165 V
    standard = {
        "id": "CAL10V-01",
        "kind": "dc_voltage",
        "nominal": 10,
        "unit": "V",
        "owner_lab": "Example Lab",
        "description": "Calibrator 10 V output",
    }
    certificates = [
        {"number": f"C-{year}", "issuer": "VMI", "calibration_date": f"{year}-06-01",
         "due_date": f"{year + 1}-06-01", "value": value, "expanded_uncertainty": 1.0e-6,
         "coverage_factor": 2}
        for year, value in ((2024, 10.000014), (2025, 10.000015), (2026, 10.000016))
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=gw.api_url + "/api/v1", timeout=60) as http:
        assert (await http.post("/standards", json=standard, headers=as_("ADMIN_TOKEN"))
                ).status_code == 201  # fmt: skip
        for certificate in certificates:
            answer = await http.post("/standards/CAL10V-01/certificates", json=certificate,
                                     headers=as_("ADMIN_TOKEN"))  # fmt: skip
            assert answer.status_code == 201, answer.text
        evaluated = await http.post("/standards/CAL10V-01/evaluate", headers=as_("OPS_TOKEN"))
        assert evaluated.status_code == 200, evaluated.text
    bench = await start_bench(tmp_path / "bench")
    try:
        bench.agent()
        data = procedure(
            reference={"kind": "standard", "id": "CAL10V-01",
                       "gateway": {"url": gw.api_url, "token_env": "VIEW_TOKEN"}},
            points=[{"nominal": 10, "range": 10}],
        )  # fmt: skip
        data["settling"] = data["settling"] | {"on": "uut", "max_slope_per_s": 2e-5,
                                               "max_std": 1e-5}  # fmt: skip
        async with RunStore(tmp_path / "runs.db") as store:
            run, outcome = await bench.run(store, bench.procedure(data))
            assert outcome.status == "completed", outcome
            row = await store.get(run)
            assert row is not None and row.record is not None
            record = load_record(row.record)
            missing = procedure(
                reference={"kind": "standard", "id": "NOPE-1",
                           "gateway": {"url": gw.api_url, "token_env": "VIEW_TOKEN"}},
                points=[{"nominal": 10, "range": 10}],
            )  # fmt: skip
            from calibration.check import check_procedure

            problems, _ = await asyncio.to_thread(
                check_procedure, bench.procedure(missing, "missing.yaml")
            )
    finally:
        await bench.sim.stop()
    assert len(problems) == 1 and problems[0].endswith(
        f"reference.id: the registry at {gw.api_url} has no standard 'NOPE-1'"
    )
    point = record.points[0]
    assert point.status == "ok" and point.budget is not None and point.reference_value is not None
    assert abs(point.reference_value - 10.0000165) < 2e-7
    names = [c.name for c in point.budget.contributions]
    assert names == ["repeatability", "reference_value", "uut_resolution", "temperature"]
    assert record.reference.kind == "standard" and record.reference.certificate is not None
    assert record.reference.certificate.number == "C-2026"
    assert "drift fit of 3 certificates" in record.reference.value_from
    # the UUT's error against the calibrator's true output, within U
    uut_model = bench.sim.dmms["uut-dmm"].meter.error_model("VOLT:DC")
    true_level = 10.0 * (1 + 1.5e-6) + 1e-6
    truth = uut_model.apply(true_level, 0.0) - true_level
    assert point.error is not None and abs(point.error - truth) <= point.budget.expanded_uncertainty
    assert record_sha256(record) == row.record_sha256


async def test_a_run_with_the_broker_out_of_reach_keeps_everything_for_later(
    tmp_path: Path, mosquitto: Mosquitto, gateway: tuple[Gateway, Any]
) -> None:
    from tests.support.services import free_port

    gw, _ = gateway
    bench = await start_bench(tmp_path / "bench")
    try:
        bench.agent()
        data = procedure(points=[{"nominal": 3, "range": 10}])
        async with RunStore(tmp_path / "bench" / "data" / "runs.db") as store:
            offline = await _stream(bench, store, free_port())  # nobody listens there
            run, outcome = await bench.run(store, bench.procedure(data), stream=offline)
            assert outcome.status == "completed"
            assert not await offline.drain(0.5)
            readings, records = offline.readings.depth, offline.records.depth
            await offline.stop()
            assert readings > 20 and records == 1
            row = await store.get(run)
            assert row is not None and row.published_ns is None
            # the next command that reaches the broker sends what waited, the record included
            online = await _stream(bench, store, mosquitto.port)
            await online.start()
            assert await online.drain(20)
            await online.stop()
            row = await store.get(run)
            assert row is not None and row.published_ns is not None
    finally:
        await bench.sim.stop()
    assert gw.api_url is not None
    async with httpx.AsyncClient(base_url=gw.api_url + "/api/v1", timeout=30) as http:
        listed = (await _wait_for(http, "/calibrations")).json()
        assert [item["run"] for item in listed] == [run]
