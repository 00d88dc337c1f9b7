"""Reference standards through the whole chain: two simulated Zener standards (one with a step,
one drifting fast) on an accelerated clock (a day per second), an agent process, Mosquitto, the
gateway and its alert engine, fed by ``StandardEvaluated`` events.

Until the standards service is merged, the events come from ``standards_stub.StubEvaluator``
(the pure analytics of ``gateway.analytics`` on the gateway's event hub); after the merge, the
same scenario runs with the gateway's own ``standards:`` configuration instead of the stub.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from drivers.sim.models import Zener, ZenerParams, datetime_ns
from gateway.alerts.lifecycle import ACTIVE, Alert
from tests.gateway.alerts.harness import (
    agent_process,
    agent_settings,
    gateway_settings,
    set_secrets,
    wait_for,
)
from tests.gateway.alerts.standards_stub import DAY_NS, Certificate, Standard, StubEvaluator
from tests.support.gateway import running_gateway
from tests.support.services import Mosquitto

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
STEP_AT = START + 3 * DAY
DUE_A = START + 5 * DAY
DRIFT_UV_PER_V_PER_DAY = -0.2  # zener-b: -2 µV a day on 10 V
TOLERANCE_B = 20e-6  # ±20 µV: zener-b leaves it 10 days after START


ZENER_A = {
    "kind": "zener",
    "epoch": START.isoformat(),
    "noise_uv": 0.2,
    "seed": 11,
    "step": {"at": STEP_AT.isoformat(), "size_ppm": 1.0},
}
ZENER_B = {
    "kind": "zener",
    "epoch": START.isoformat(),
    "noise_uv": 0.2,
    "seed": 12,
    "drift_uv_per_v_per_year": DRIFT_UV_PER_V_PER_DAY * 365.25,
}


def instruments() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "protocol": "sim",
            "model": model,
            "channels": [
                {
                    "name": "voltage",
                    "quantity": "voltage",
                    "unit": "V",
                    "interval_s": 0.05,
                    "tags": {"standard": standard},
                }
            ],
        }
        for name, model, standard in (("zener-a", ZENER_A, "Z10-A"), ("zener-b", ZENER_B, "Z10-B"))
    ]


def certificate(model: dict[str, Any], due: dt.datetime, tolerance: float) -> Certificate:
    """The certificate a lab would hold: the value at START (without noise), U = 1 µV."""
    params = ZenerParams.model_validate({k: v for k, v in model.items() if k != "step"})
    truth = Zener(params)
    start = datetime_ns(START)
    per_day = truth.true_value("voltage", start + DAY_NS) - truth.true_value("voltage", start)
    return Certificate(
        value=truth.true_value("voltage", start),
        expanded_u=1e-6,
        k=2.0,
        issued_ns=start,
        drift_per_day=per_day,
        due_ns=datetime_ns(due),
        tolerance=tolerance,
    )


ALERTS = {
    "rules": [
        {"id": "certificates", "kind": "standard_certificate"},
        {
            "id": "zener-control",
            "kind": "standard_control",
            "standards": ["Z10-A"],
            "rules": ["nelson-1", "ewma", "cusum"],
        },
        {"id": "drift-forecast", "kind": "standard_prediction", "within_days": 5},
        {"id": "calibrations", "kind": "calibration_due", "within_days": 2},
    ]
}


async def test_zener_step_breaks_its_certificate_and_a_drifting_zener_is_forecast_days_ahead(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    standards = [
        Standard(
            "Z10-A", "lab-1/bench-1/zener-a/voltage", certificate(ZENER_A, DUE_A, tolerance=50e-6)
        ),
        Standard(
            "Z10-B",
            "lab-1/bench-1/zener-b/voltage",
            certificate(ZENER_B, START + 365 * DAY, tolerance=TOLERANCE_B),
        ),
    ]
    clock = {"kind": "accelerated", "start": START.isoformat(), "rate": 86_400.0}
    async with running_gateway(gateway_settings(tmp_path, mosquitto, ALERTS)) as gateway:
        assert gateway.alerts is not None
        tracker = gateway.alerts.tracker
        evaluator = StubEvaluator(gateway.hub, "lab-1", standards)
        stub = asyncio.create_task(evaluator.run())

        def alert(rule: str, standard: str, level: str) -> Alert | None:
            return next(
                (
                    a
                    for a in tracker.alerts.values()
                    if a.rule_id == rule and a.subject == f"lab-1/{standard}" and a.level == level
                ),
                None,
            )

        def active(rule: str, standard: str, level: str) -> Alert | None:
            found = alert(rule, standard, level)
            return found if found is not None and found.state == ACTIVE else None

        try:
            async with agent_process(
                tmp_path, agent_settings(tmp_path, mosquitto, instruments(), clock=clock)
            ):
                step = await wait_for(
                    lambda: active("certificates", "Z10-A", "certificate"),
                    timeout_s=30,
                    what="certificate alert",
                )
                forecast = await wait_for(
                    lambda: active("drift-forecast", "Z10-B", "prediction"),
                    timeout_s=30,
                    what="forecast alert",
                )
                overdue = await wait_for(
                    lambda: active("calibrations", "Z10-A", "overdue"),
                    timeout_s=30,
                    what="overdue calibration",
                )
        finally:
            stub.cancel()
            await asyncio.wait([stub])

    # The step of 10 µV (1 ppm) breaks "certificate ± U" within a simulated half day.
    assert 0 <= step.active_since_ns - datetime_ns(STEP_AT) <= DAY_NS // 2
    assert step.detail["deviation"] == pytest.approx(10e-6, abs=1e-6)
    for signal in ("nelson-1", "ewma", "cusum"):
        # Each control chart's signal is an alert of its own (level = the signal's name).
        control = active("zener-control", "Z10-A", signal)
        assert control is not None, signal
        assert control.kind == "standard_control"
        assert 0 <= control.active_since_ns - datetime_ns(STEP_AT) <= DAY_NS // 2, signal
        assert control.detail["violation_ts_ns"] >= datetime_ns(STEP_AT)

    # Zener B leaves ±20 µV 10 days after START; the forecast said so days before.
    crosses = datetime_ns(START) + 10 * DAY_NS
    days_ahead = (crosses - forecast.active_since_ns) / DAY_NS
    assert 4.0 <= days_ahead <= 6.5, days_ahead
    assert alert("certificates", "Z10-B", "certificate") is None  # drift is in the certificate

    # Calibration due in 2 days, then overdue, on the simulated calendar.
    due = alert("calibrations", "Z10-A", "due")
    assert due is not None and due.state == ACTIVE
    assert 0 <= due.active_since_ns - (datetime_ns(DUE_A) - 2 * DAY_NS) <= DAY_NS // 2
    assert 0 <= overdue.active_since_ns - datetime_ns(DUE_A) <= DAY_NS // 2
    assert evaluator.published > 20
