"""A simulated year of a 10 V Zener through the real chain: agent and gateway processes,
Mosquitto, VictoriaMetrics; the agent and the gateway's analytics on the same accelerated clock.

The Zener drifts +2 µV/V per year from +0.8 µV/V at the start of the simulated year, with 0.2 µV
of white noise;
its tolerance is ±5 µV/V around nominal, so its true value leaves the tolerance 2.1 years after
the epoch. Three certificates lie on its true line. The gateway's scheduled analytics, reading
the history back from VictoriaMetrics, must find the drift rate inside the fitted slope's
interval and the true out-of-tolerance date inside the interval it states for it.

The simulated year ends before today: VictoriaMetrics refuses samples more than two days in the
future (and answers 204 all the same).

The intervals are asked at 99.9 % (``standards.confidence``): the readings' timing varies from
run to run, so the noise draws do too, and an honest 95 % interval would miss the truth in one
run out of twenty. At 99.9 % the slope interval is still about ±0.005 µV/V per year wide: a
bias of a quarter of a percent in the rate fails the test.

A second standard, Z10-S, does not drift but steps by +2 µV/V (20 µV) 200 days into the year,
far beyond its certificates' U (0.4 µV): the real analytics must tell the alert engine, which
raises its ``standard_certificate`` alert and the control-chart signals (``standard_control``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main
from tests.support.chain import Chain, stored_in_victoria, wait_for_count
from tests.support.processes import write_yaml
from tests.support.services import Mosquitto, VictoriaMetrics, free_port

EPOCH = datetime.fromtimestamp((time.time() // 86_400 - 400) * 86_400, UTC)
RATE = 1.2e6  # simulated seconds per second: a year in 26 s
RUN_S = 28.0
DRIFT_PPM, OFFSET_PPM, TOLERANCE_PPM = 2.0, 0.8, 5.0
STEP_AT, STEP_PPM = EPOCH + timedelta(days=200), 2.0
YEAR_S = 365.25 * 86_400
TOKEN = "e2e-operator-token-0123456789"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def true_value(when: datetime) -> float:
    years = (when - EPOCH).total_seconds() / YEAR_S
    return 10.0 * (1 + (OFFSET_PPM + DRIFT_PPM * years) * 1e-6)


def api(url: str, method: str = "GET") -> dict[str, object]:
    request = urllib.request.Request(
        url, method=method, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with OPENER.open(request, timeout=30) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def test_a_simulated_year_of_a_zener(
    tmp_path: Path,
    mosquitto: Mosquitto,
    victoria: VictoriaMetrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETALON_E2E_TOKEN", TOKEN)
    clock = {"kind": "accelerated", "start": EPOCH.isoformat(), "rate": RATE}
    port = free_port()
    instruments = [
        {
            "name": "zener-10v",
            "protocol": "sim",
            "model": {
                "kind": "zener",
                "offset_uv_per_v": OFFSET_PPM,
                "drift_uv_per_v_per_year": DRIFT_PPM,
                "noise_uv": 0.2,
                "epoch": EPOCH.isoformat(),
            },
            "channels": [
                {
                    "name": "voltage",
                    "quantity": "voltage",
                    "unit": "V",
                    "interval_s": 0.01,
                    "uncertainty": {"absolute": 5e-7},
                }
            ],
        },
        {
            "name": "zener-step",
            "protocol": "sim",
            "model": {
                "kind": "zener",
                "offset_uv_per_v": 0.0,
                "drift_uv_per_v_per_year": 0.0,
                "tempco_uv_per_v_per_k": 0.0,
                "noise_uv": 0.2,
                "epoch": EPOCH.isoformat(),
                "seed": 7,
                "step": {"at": STEP_AT.isoformat(), "size_ppm": STEP_PPM},
            },
            "channels": [
                {
                    "name": "voltage",
                    "quantity": "voltage",
                    "unit": "V",
                    "interval_s": 0.02,
                    "uncertainty": {"absolute": 5e-7},
                }
            ],
        },
    ]
    chain = Chain(
        tmp_path,
        mosquitto,
        {"kind": "influxdb_v2", "url": victoria.url, "bucket": "etalon", "org": "lab"},
        instruments=instruments,
        agent_extra={"clock": clock},
        gateway_extra={
            "standards": {
                "analytics_interval_s": 2,
                "confidence": 0.999,
                "clock": clock,
            },
            # The alert engine listens to the real analytics (StandardEvaluated on the hub).
            "alerts": {
                "rules": [
                    {"id": "forecast", "kind": "standard_prediction", "within_days": 1000},
                    {"id": "certificate", "kind": "standard_certificate", "factor": 3},
                    {"id": "calibration", "kind": "calibration_due", "within_days": 30},
                    {
                        "id": "control",
                        "kind": "standard_control",
                        "standards": ["Z10-S"],
                        "rules": ["nelson-1", "ewma", "cusum"],
                    },
                ]
            },
            "api": {
                "port": port,
                "tokens": [
                    {"name": "e2e", "role": "operator", "token": {"env": "ETALON_E2E_TOKEN"}}
                ],
            },
        },
    )
    certificates = [
        {
            "number": f"VMI-{years_before}-0042",
            "issuer": "VMI",
            "calibration_date": (EPOCH - timedelta(days=365 * years_before)).date().isoformat(),
            "due_date": (EPOCH - timedelta(days=365 * years_before - 365)).date().isoformat(),
            "value": true_value(EPOCH - timedelta(days=365 * years_before)),
            "expanded_uncertainty": 4e-7,
            "coverage_factor": 2,
            "traceable_to": [{"lab": "VMI", "standard": "JVS-1", "national": True}],
        }
        for years_before in (3, 2, 1)
    ]
    # Z10-S: 10 V exactly (no offset, no drift) on every certificate; the last due in 2 years.
    stable_certificates = [
        {
            "number": f"VMI-{years_before}-0077",
            "issuer": "VMI",
            "calibration_date": (EPOCH - timedelta(days=365 * years_before)).date().isoformat(),
            "due_date": (EPOCH - timedelta(days=365 * years_before - 3 * 365)).date().isoformat(),
            "value": 10.0,
            "expanded_uncertainty": 4e-7,
            "coverage_factor": 2,
            "traceable_to": [{"lab": "VMI", "standard": "JVS-1", "national": True}],
        }
        for years_before in (3, 2, 1)
    ]
    registry = write_yaml(
        tmp_path / "standards.yaml",
        {
            "standards": [
                {
                    "id": "Z10-01",
                    "kind": "dc_voltage",
                    "nominal": 10.0,
                    "unit": "V",
                    "owner_lab": "VMI Electrical",
                    "tolerance": f"±{TOLERANCE_PPM} ppm",
                    "channels": [
                        {"agent": "bench-1", "instrument": "zener-10v", "channel": "voltage",
                         "unit": "V"}
                    ],
                    "certificates": certificates,
                },
                {
                    "id": "Z10-S",
                    "kind": "dc_voltage",
                    "nominal": 10.0,
                    "unit": "V",
                    "owner_lab": "VMI Electrical",
                    "tolerance": f"±{TOLERANCE_PPM} ppm",
                    "channels": [
                        {"agent": "bench-1", "instrument": "zener-step", "channel": "voltage",
                         "unit": "V"}
                    ],
                    "certificates": stable_certificates,
                },
            ]
        },
    )  # fmt: skip
    assert main(["standards", "import", "-c", str(chain.gateway_config), str(registry)]) == 0
    base = f"http://127.0.0.1:{port}/api/v1/standards/Z10-01"
    try:
        chain.start()
        time.sleep(RUN_S)
        read = chain.stop_agent()
        stored = wait_for_count(lambda: stored_in_victoria(victoria), read["readings_read"])
        assert stored.distinct == read["readings_read"]
        victoria.export()  # flush, so the analytics read everything
        summary = api(base + "/evaluate", "POST")
        result = api(base + "/drift")
        history = api(base + "/drift/history")
        alerts = api(f"http://127.0.0.1:{port}/api/v1/alerts")
        assert chain.gateway.stop() == 0
    finally:
        chain.close()

    # A simulated year arrived: daily means over about a year.
    (channel,) = result["channels"]  # type: ignore[misc]
    assert channel["periods_used"] > 330, channel["notes"]
    drift = channel["drift"]
    low, high = (v / 10.0 * 1e6 for v in drift["slope_interval_per_year"])
    assert low <= DRIFT_PPM <= high, (low, drift["slope_ppm_per_year"], high)
    # The true value crosses +5 µV/V 2.1 years after the epoch; the stated interval holds it.
    true_crossing = EPOCH.timestamp() + (TOLERANCE_PPM - OFFSET_PPM) / DRIFT_PPM * YEAR_S
    crossing = drift["crossing"]
    first, last = (t / 1e9 for t in crossing["bounds_ns"])
    assert first <= true_crossing <= last, (first, true_crossing, last)
    assert crossing["side"] == "upper"
    assert crossing["earliest_ns"] / 1e9 <= first  # the plan-by date comes first
    # The certificates give the reference; the measured daily mean agrees with it.
    assert summary["reference"] == pytest.approx(
        true_value(datetime.fromtimestamp(int(summary["ts_ns"]) / 1e9, UTC)),  # type: ignore[arg-type]
        abs=1e-7,
    )
    measured_at = datetime.fromtimestamp(int(summary["measured_ts_ns"]) / 1e9, UTC)  # type: ignore[arg-type]
    # The latest period may hold a few readings only (one every 12,000 simulated s): the truth
    # must lie within its stated uncertainty (k = 4, so a correct value fails 1 run in 15,000),
    # not within a fixed band.
    u = float(summary["measured_u"])  # type: ignore[arg-type]
    assert 0 < u < 1e-6
    assert summary["measured"] == pytest.approx(true_value(measured_at), abs=max(4 * u, 5e-8))
    assert summary["predicted_out_of_tolerance_ns"] is not None
    # The alert engine raised what the evaluation says: the forecast exit within 1000 days and the
    # calibration due and then overdue (the last certificate was due at the epoch; like limits'
    # levels, the warning stays with the alarm); the measured value agrees with the certificates,
    # so no certificate alert.
    raised = {
        (a["rule_id"], a["level"]): a
        for a in alerts  # type: ignore[attr-defined]
        if a["subject"] == "lab-1/Z10-01"
    }
    assert {key for key, a in raised.items() if a["state"] == "active_unacknowledged"} == {
        ("forecast", "prediction"),
        ("calibration", "due"),
        ("calibration", "overdue"),
    }, raised
    forecast = raised[("forecast", "prediction")]
    assert forecast["subject"] == "lab-1/Z10-01"
    assert 0 < forecast["value"] < 1000
    assert raised[("calibration", "overdue")]["severity"] == "alarm"
    # Z10-S stepped 20 µV away from its certificates (± 3 × 0.4 µV allowed): the real analytics'
    # measured value against the certificates' reference raised the certificate alert, and the
    # control charts of its period means signalled the step.
    stepped = {
        (a["rule_id"], a["level"]): a
        for a in alerts  # type: ignore[attr-defined]
        if a["subject"] == "lab-1/Z10-S" and a["state"] == "active_unacknowledged"
    }
    certificate = stepped.get(("certificate", "certificate"))
    assert certificate is not None, alerts
    assert certificate["kind"] == "standard_certificate"
    assert certificate["detail"]["reference"] == pytest.approx(10.0, abs=1e-7)
    assert certificate["detail"]["deviation"] == pytest.approx(STEP_PPM * 10e-6, abs=1e-6)
    assert certificate["active_since_ns"] >= STEP_AT.timestamp() * 1e9
    signals = {level for rule, level in stepped if rule == "control"}
    # The step is about a hundred sigmas of the daily means: every chart signals it.
    assert signals == {"nelson-1", "ewma", "cusum"}, stepped
    assert all(stepped[("control", s)]["kind"] == "standard_control" for s in signals)
    # The scheduled evaluations ran all along, and wrote what Grafana draws.
    assert len(history) > 5  # type: ignore[arg-type]
    fits = victoria.export('{__name__="drift_fit_value",standard="Z10-01",source="channel"}')
    assert fits and len(fits[0]["values"]) > 5
    periods = victoria.export('{__name__="standard_period_mean",standard="Z10-01"}')
    assert len(periods[0]["values"]) > 330
