"""What an evaluation sends to the time-series store through the gateway's spool: the
``standard_evaluation``, ``drift_fit``, ``standard_period`` and stability points Grafana draws."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.analytics.stability import StabilityResult
from gateway.standards.results import (
    NS_PER_DAY,
    StandardResult,
)


def _spool_entry(
    measurement: str, tags: dict[str, str], ts_ns: int, values: dict[str, Any]
) -> bytes | None:
    fields = {k: v for k, v in values.items() if v is not None}
    if not fields:
        return None
    return orjson.dumps(
        {"kind": "metrics", "measurement": measurement, "tags": tags, "ts": ts_ns, "values": fields}
    )


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def tsdb_points(
    result: StandardResult, new_periods: dict[str, list[tuple[int, dict[str, Any]]]]
) -> list[bytes]:
    """The time-series points of one evaluation (see docs/standards.md, "In the TSDB")."""
    base = {"site": result.site, "standard": result.standard_id}
    certificates = result.certificates
    entries = [
        _spool_entry(
            "standard_evaluation",
            base,
            result.ts_ns,
            {
                "measured": _float(result.measured),
                "measured_u": _float(result.measured_u),
                "reference": _float(certificates.reference),
                "reference_expanded_u": _float(certificates.reference_expanded_u),
                "k": _float(certificates.k),
                "tolerance_low": _float(result.tolerance.low) if result.tolerance else None,
                "tolerance_high": _float(result.tolerance.high) if result.tolerance else None,
                "predicted_out_of_tolerance_ns": result.predicted_out_of_tolerance_ns,
                # Grafana's InfluxQL cannot subtract now(): the days are written ready to show.
                "days_to_out_of_tolerance": (result.predicted_out_of_tolerance_ns - result.ts_ns)
                / NS_PER_DAY
                if result.predicted_out_of_tolerance_ns is not None
                else None,
                "calibration_due_ns": result.calibration_due_ns,
                "violations": len(result.violations),
            },
        )
    ]
    sources: list[tuple[dict[str, str], Any]] = []
    if certificates.drift is not None:
        sources.append(({"source": "certificates"}, certificates.drift))
    for channel in result.channels:
        if channel.drift is not None:
            tags = {
                "source": "channel",
                "agent": channel.agent,
                "instrument": channel.instrument,
                "channel": channel.channel_name,
            }
            sources.append((tags, channel.drift))
    for tags, drift in sources:
        k = drift.coverage_factor
        crossing = drift.crossing
        entries.append(
            _spool_entry(
                "drift_fit",
                base | tags,
                result.ts_ns,
                {
                    "value": float(drift.value_now),
                    "u_fit": float(drift.u_fit_now),
                    "u_prediction": float(drift.u_prediction_now),
                    "ci_low": float(drift.value_now - k * drift.u_fit_now),
                    "ci_high": float(drift.value_now + k * drift.u_fit_now),
                    "pi_low": float(drift.value_now - k * drift.u_prediction_now),
                    "pi_high": float(drift.value_now + k * drift.u_prediction_now),
                    "slope_per_year": _float(drift.slope_per_year),
                    "u_slope_per_year": _float(drift.u_slope_per_year),
                    "out_of_tolerance_ns": crossing.earliest_ns if crossing else None,
                    "out_of_tolerance_likely_ns": crossing.likely_ns if crossing else None,
                },
            )
        )
    for channel in result.channels:
        tags = base | {
            "agent": channel.agent,
            "instrument": channel.instrument,
            "channel": channel.channel_name,
        }
        for ts_ns, values in new_periods.get(channel.channel, []):
            entries.append(_spool_entry("standard_period", tags, ts_ns, values))
        entries += _stability_entries(result, channel.stability, tags)
    return [entry for entry in entries if entry is not None]


def _stability_entries(
    result: StandardResult, stability: StabilityResult | None, tags: dict[str, str]
) -> list[bytes | None]:
    """One ``standard_stability`` point per averaging time of a channel's Allan deviation."""
    if stability is None:
        return []
    nominal = abs(result.nominal)
    return [
        _spool_entry(
            "standard_stability",
            tags | {"tau": format(point.tau, ".15g")},
            result.ts_ns,
            {
                "deviation": float(point.deviation),
                "deviation_ppm": float(point.deviation / nominal * 1e6) if nominal else None,
                "ci_low": float(point.ci_low),
                "ci_high": float(point.ci_high),
                "edf": float(point.edf),
                "tau_s": float(point.tau),
                "tau_days": float(point.tau / 86_400),
                "m": int(point.m),
                "alpha": int(point.alpha),
                "periods": int(stability.n),
            },
        )
        for point in stability.points
    ]
