"""Bad input gets a clear error and loses nothing: malformed payloads go to the dead-letter topic
with a reason while the good readings around them all arrive; a sick instrument does not delay
the others."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from tests.support.chain import (
    AGENT,
    SITE,
    Chain,
    clock_steps,
    max_gap_ms,
    stored_in_victoria,
    wait_for_count,
)
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto, VictoriaMetrics

TS0 = 1_790_000_000_000_000_000


def reading(i: int, **override: object) -> dict[str, object]:
    body: dict[str, object] = {
        "instrument": "dmm-1",
        "channel": "voltage",
        "ts": TS0 + i * 10**9,
        "value": 10.0 + i * 1e-7,
        "unit": "V",
        "quality": "good",
    }
    body.update(override)
    return body


def batch(*readings: dict[str, object], schema: object = 1, site: str = SITE) -> bytes:
    return json.dumps(
        {"schema": schema, "site": site, "agent": AGENT, "seq": 0, "readings": list(readings)}
    ).encode()


def test_malformed_payloads_are_dead_lettered_and_good_readings_arrive(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    chain = Chain(
        tmp_path, mosquitto, {"kind": "influxdb_v2", "url": victoria.url, "bucket": "b", "org": "o"}
    )
    client = RawClient(mosquitto.port)
    topic = f"etalon/v1/{SITE}/{AGENT}/data"
    try:
        chain.start_gateway()
        client.subscribe(f"etalon/v1/{SITE}/deadletter")
        valid_a = batch(reading(0), reading(1))
        truncated = batch(reading(2))[:-7]
        wrong_types = batch(reading(3, ts=str(TS0), quality="excellent"))
        with_nan = batch(reading(4), reading(5, value=float("nan")), reading(6))
        with_inf = batch(reading(7, value=float("inf")), reading(8, u=float("-inf")), reading(9))
        huge = batch(*[reading(100 + i, reason="x" * 2000) for i in range(5000)])
        assert len(huge) > 10_000_000
        unknown_schema = batch(reading(10), schema=2)
        one_bad = batch(reading(11), reading(12, unit=None), reading(13))
        wrong_site = batch(reading(14), site="elsewhere")
        valid_b = batch(reading(15))
        for payload in (
            valid_a,
            truncated,
            wrong_types,
            with_nan,
            with_inf,
            huge,
            unknown_schema,
            one_bad,
            wrong_site,
            valid_b,
        ):
            client.publish(topic, payload)
        letters = client.wait_messages(8)
        expected_good = {0, 1, 4, 6, 9, 11, 13, 15}
        stored = wait_for_count(lambda: stored_in_victoria(victoria), len(expected_good))
        assert chain.gateway.stop() == 0
        gateway = chain.gateway.final_metrics()
    finally:
        client.close()
        chain.close()

    reasons = [json.loads(payload)["reason"] for _, payload in letters]
    assert len(reasons) == 8, reasons
    assert "invalid JSON" in reasons[0]
    assert reasons[1].startswith("1 of 1 readings refused")
    assert reasons[2] == "1 of 3 readings refused"  # NaN
    assert reasons[3] == "2 of 3 readings refused"  # +inf value, -inf uncertainty
    assert "exceeds ingest.max_payload_bytes" in reasons[4]
    assert "unknown schema version 2" in reasons[5]
    assert reasons[6] == "1 of 3 readings refused"
    assert "envelope names elsewhere/bench-1" in reasons[7]
    nan_letter = json.loads(letters[2][1])
    assert nan_letter["rejected"] == [
        {"index": 1, "reason": "value: Input should be a finite number"}
    ]
    huge_letter = json.loads(letters[4][1])
    assert huge_letter["truncated"] is True and huge_letter["payload_bytes"] == len(huge)
    assert len(base64.b64decode(huge_letter["payload_b64"])) == 64 * 1024
    # Exactly the good readings, once each.
    got = {(ts - TS0 // 1_000_000) // 1000 for _, _, _, ts in stored.samples}
    assert got == expected_good
    assert stored.count == len(expected_good)
    assert gateway["payloads_deadlettered"] == 8
    assert gateway["readings_rejected"] == 5  # wrong types 1, NaN 1, infinities 2, unit 1


def test_a_hung_and_a_garbage_instrument_do_not_delay_the_others(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    instruments = [
        {
            "name": "healthy",
            "protocol": "sim",
            "model": {"kind": "zener"},
            "channels": [
                {"name": "voltage", "quantity": "voltage", "unit": "V", "interval_s": 0.2}
            ],
        },
        {
            "name": "hung",
            "protocol": "sim",
            "model": {"kind": "room"},
            "timeout_s": 1.0,
            "faults": {"hang": True},
            "reconnect": {"initial_s": 0.2, "max_s": 0.5},
            "channels": [
                {"name": "temperature", "quantity": "temperature", "unit": "°C", "interval_s": 0.5}
            ],
        },
        {
            "name": "garbage",
            "protocol": "sim",
            "model": {"kind": "resistor"},
            "faults": {"garbage_rate": 1.0},
            "channels": [
                {"name": "resistance", "quantity": "resistance", "unit": "Ω", "interval_s": 0.5}
            ],
        },
    ]
    chain = Chain(
        tmp_path,
        mosquitto,
        {"kind": "influxdb_v2", "url": victoria.url, "bucket": "b", "org": "o"},
        instruments=instruments,
    )
    try:
        chain.start()
        time.sleep(6)
        metrics = chain.stop_agent()
        stored = wait_for_count(lambda: stored_in_victoria(victoria), metrics["readings_read"])
        assert chain.gateway.stop() == 0
    finally:
        chain.close()
    healthy = stored.timestamps("healthy", "voltage")
    assert len(healthy) >= 28
    # Measured less the host clock's steps the agent reported (a paused virtual machine).
    steps = clock_steps(chain.agent.log())
    assert len(steps) == metrics["clock_steps"]
    assert max_gap_ms(stored, "healthy", "voltage", steps) <= 350
    # The sick ones are recorded as bad readings (quality 2), with their reasons in the log.
    bad = {(i, c) for (i, c, _, _), n in stored.samples.items()}
    assert ("hung", "temperature") in bad and ("garbage", "resistance") in bad
    assert stored.qualities[2] == metrics["readings_bad"] > 0
    assert stored.count == stored.distinct == metrics["readings_read"]
    assert metrics["read_timeouts"] >= 3
    log = chain.agent.log()
    assert log.count("instrument unavailable instrument=hung") == 1, log
    assert "recovered" not in log
