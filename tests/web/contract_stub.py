"""Stand-ins for the standards and alerts routers, serving exactly the shapes docs/api.md promises
("Contract for the standards and alerts endpoints"), so the dashboard's standard and alerts pages
are driven in a browser before those features are merged. The numbers are real: the drift fit,
its prediction band, the tolerance crossing and the control chart come from gateway.analytics; the
alert actions write the real audit log.

TEMPORARY: once the standards registry and the alert engine serve these endpoints, the lead points
tests/web/test_contract_pages.py at them and deletes this module.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from fastapi import APIRouter, HTTPException

from gateway.analytics.control import control_report
from gateway.analytics.drift import fit_drift, predict, time_to_out_of_tolerance
from gateway.api.auth import Viewer
from tests.support.lab import AGENT, SITE

DAY_NS = 86_400 * 1_000_000_000
NOW_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18
NOMINAL = 10.0
TOLERANCE = 0.6e-6 * NOMINAL  # ±0.6 ppm
CERTIFICATES = [
    # (days before NOW, certified value, expanded uncertainty, k)
    (1095, 10.0000010, 4.0e-7, 2.0),
    (730, 10.0000019, 4.0e-7, 2.0),
    (365, 10.0000031, 3.5e-7, 2.0),
    (30, 10.0000040, 3.5e-7, 2.0),
]


def _days(ns: int) -> float:
    return ns / DAY_NS


def _certificates() -> list[dict[str, Any]]:
    out = []
    for number, (days_ago, value, expanded, k) in enumerate(CERTIFICATES, start=1):
        calibrated = NOW_NS - days_ago * DAY_NS
        out.append(
            {
                "id": number,
                "number": f"VMI-{2023 + number}-{100 + number}",
                "issuer": "Viện Đo lường Việt Nam",
                "calibration_ns": calibrated,
                "due_ns": calibrated + 365 * DAY_NS,
                "value": value,
                "expanded_uncertainty": expanded,
                "coverage_factor": k,
            }
        )
    return out


@functools.cache
def _drift() -> dict[str, Any]:
    certificates = _certificates()
    x = [_days(c["calibration_ns"]) for c in certificates]
    fit = fit_drift(
        x,
        [c["value"] for c in certificates],
        [c["expanded_uncertainty"] / c["coverage_factor"] for c in certificates],
        model="linear",
    )
    low, high = NOMINAL - TOLERANCE, NOMINAL + TOLERANCE
    crossing = time_to_out_of_tolerance(
        fit,
        lower=low,
        upper=high,
        nominal=NOMINAL,
        start=_days(NOW_NS),
        horizon=_days(NOW_NS) + 5 * 365,
    )
    end_days = _days(NOW_NS) + 3 * 365
    steps = 120
    curve = []
    for i in range(steps + 1):
        day = x[0] + (end_days - x[0]) * i / steps
        at = predict(fit, day)
        curve.append(
            {
                "ts_ns": int(day * DAY_NS),
                "value": at.value,
                "low": at.prediction_interval[0],
                "high": at.prediction_interval[1],
            }
        )
    now = predict(fit, _days(NOW_NS))
    return {
        "model": fit.model,
        "confidence": now.confidence,
        "curve": curve,
        "tolerance": [
            {"ts_ns": curve[0]["ts_ns"], "low": low, "high": high},
            {"ts_ns": curve[-1]["ts_ns"], "low": low, "high": high},
        ],
        "value_in_use": {
            "value": now.value,
            "expanded_u": now.coverage_factor * now.u_prediction,
            "k": now.coverage_factor,
        },
        "predicted_out_of_tolerance_ns": (
            int(crossing.crossing * DAY_NS) if crossing.crossing is not None else None
        ),
        "calibration_due_ns": certificates[-1]["due_ns"],
    }


@functools.cache
def _control() -> dict[str, Any]:
    # Daily check-standard means: in control for 40 days, then a step of 2.5 sigma.
    values = [10.0000040 + 5e-8 * math.sin(i * 1.7) for i in range(40)]
    values += [10.0000040 + 1.8e-7 + 5e-8 * math.sin(i * 1.7) for i in range(40, 60)]
    report = control_report(values, baseline=30)
    stamps = [NOW_NS - (60 - i) * DAY_NS for i in range(60)]
    return {
        "center": report.limits.center,
        "ucl": report.limits.ucl,
        "lcl": report.limits.lcl,
        "points": [{"ts_ns": ts, "value": v} for ts, v in zip(stamps, values, strict=True)],
        "violations": [
            {"rule": f"nelson-{v.rule}", "ts_ns": stamps[v.index]} for v in report.violations
        ],
    }


def _standard() -> dict[str, Any]:
    drift = _drift()
    return {
        "id": "Z10-01",
        "kind": "dc_voltage",
        "description": "Zener 10 V reference",
        "nominal": NOMINAL,
        "unit": "V",
        "status": "active",
        "tolerance": "±0.6 ppm",
        "calibration_due_ns": drift["calibration_due_ns"],
        "predicted_out_of_tolerance_ns": drift["predicted_out_of_tolerance_ns"],
    }


router = APIRouter(prefix="/api/v1", tags=["contract stub"])


@router.get("/standards")
async def standards(_who: Viewer) -> list[dict[str, Any]]:
    return [_standard()]


@router.get("/standards/{standard_id}")
async def standard(standard_id: str, _who: Viewer) -> dict[str, Any]:
    if standard_id != "Z10-01":
        raise HTTPException(404, f"unknown standard {standard_id}")
    return _standard() | {
        "manufacturer": "Fluke",
        "model": "732C",
        "serial": "1234567",
        "owner_lab": "VMI",
        "channels": [
            {
                "site": SITE,
                "agent": AGENT,
                "instrument": "zener-10v",
                "channel": "voltage",
                "unit": "V",
                "scale": 1.0,
                "offset": 0.0,
            }
        ],
        "certificates": _certificates(),
        "evaluation": None,
    }


@router.get("/standards/{standard_id}/drift")
async def drift(standard_id: str, _who: Viewer) -> dict[str, Any]:
    if standard_id != "Z10-01":
        raise HTTPException(404, "no drift fit")
    return _drift()


@router.get("/standards/{standard_id}/control")
async def control(standard_id: str, _who: Viewer) -> dict[str, Any]:
    if standard_id != "Z10-01":
        raise HTTPException(404, "no control chart")
    return _control()
