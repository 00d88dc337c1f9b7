"""A minimal, test-only evaluator of reference standards: it publishes ``StandardEvaluated``
from the pure functions of ``gateway.analytics``, so the engine's standard rules are driven by
scenarios whose truth is known (the real service feeding the real engine is tested in
tests/gateway/standards/test_e2e_zener.py). It keeps each standard's readings in memory, and every
``period_s`` it publishes: the mean of the last readings as the measured value, the
certificate's value (drift-corrected) ± U as the reference, the drift fit's predicted exit from
the tolerance, the calibration due date, and Nelson rule 1 if it fires in the recent readings.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from dataclasses import dataclass, field

from gateway.analytics import control_report, fit_drift, time_to_out_of_tolerance
from gateway.analytics.errors import AnalyticsError
from gateway.ingest.events import ControlViolation, EventHub, ReadingsArrived, StandardEvaluated

DAY_NS = 86_400 * 1_000_000_000


@dataclass
class Certificate:
    """What a calibration certificate says, and the tolerance the lab keeps the standard in."""

    value: float
    expanded_u: float
    k: float
    issued_ns: int
    drift_per_day: float
    due_ns: int
    tolerance: float


@dataclass
class Standard:
    """A standard watched through one channel."""

    standard_id: str
    channel: str
    """site/agent/instrument/channel"""
    certificate: Certificate
    history: list[tuple[int, float]] = field(default_factory=list)


class StubEvaluator:
    """See the module doc."""

    def __init__(
        self,
        hub: EventHub,
        site: str,
        standards: list[Standard],
        period_s: float = 0.2,
        min_days_for_fit: float = 2.0,
    ) -> None:
        self.hub = hub
        self.site = site
        self.by_channel = {s.channel: s for s in standards}
        self.period_s = period_s
        self.min_days_for_fit = min_days_for_fit
        self.published = 0
        hub.subscribe(ReadingsArrived, self._on_readings)

    def _on_readings(self, event: ReadingsArrived) -> None:
        for reading in event.readings:
            path = f"{event.site}/{event.agent}/{reading['instrument']}/{reading['channel']}"
            standard = self.by_channel.get(path)
            value = reading["value"]
            if standard is not None and isinstance(value, float) and reading["quality"] == "good":
                standard.history.append((reading["ts"], value))

    async def run(self) -> None:
        """Evaluate every standard every ``period_s``, until cancelled."""
        while True:
            await asyncio.sleep(self.period_s)
            for standard in self.by_channel.values():
                if len(standard.history) >= 10:
                    self.hub.publish(self.evaluate(standard))
                    self.published += 1

    def evaluate(self, standard: Standard) -> StandardEvaluated:
        """One evaluation from the readings so far."""
        cert = standard.certificate
        times = [ts for ts, _ in standard.history]
        values = [v for _, v in standard.history]
        now = times[-1]
        recent = values[-5:]
        measured = statistics.fmean(recent)
        measured_u = statistics.stdev(recent) / math.sqrt(len(recent))
        reference = cert.value + cert.drift_per_day * (now - cert.issued_ns) / DAY_NS
        nominal = cert.value
        predicted: int | None = None
        days = [(ts - times[0]) / DAY_NS for ts in times]
        if days[-1] >= self.min_days_for_fit:
            try:
                fit = fit_drift(days, values, model="linear")
                crossing = time_to_out_of_tolerance(
                    fit,
                    lower=nominal - cert.tolerance,
                    upper=nominal + cert.tolerance,
                    start=days[-1],
                    horizon=days[-1] + 365,
                )
            except AnalyticsError:
                crossing = None
            if crossing is not None and crossing.crossing is not None:
                predicted = times[0] + int(crossing.crossing * DAY_NS)
        violations: tuple[ControlViolation, ...] = ()
        if len(values) >= 60:
            report = control_report(values[-200:], baseline=40, rules=[1])
            window = values[-200:]
            offset = len(times) - len(window)
            recent_from = len(window) - 10  # still signalling: among the latest readings
            signals = [(f"nelson-{v.rule}", v.index) for v in report.violations]
            signals += [("ewma", index) for index in report.ewma.signals]
            signals += [("cusum", s.index) for s in report.cusum.signals]
            violations = tuple(
                ControlViolation(rule, times[offset + index])
                for rule, index in signals
                if index >= recent_from
            )
        return StandardEvaluated(
            site=self.site,
            standard_id=standard.standard_id,
            ts_ns=now,
            unit="V",
            measured=measured,
            measured_u=measured_u,
            measured_ts_ns=now,
            reference=reference,
            reference_expanded_u=cert.expanded_u,
            k=cert.k,
            tolerance_low=nominal - cert.tolerance,
            tolerance_high=nominal + cert.tolerance,
            predicted_out_of_tolerance_ns=predicted,
            calibration_due_ns=cert.due_ns,
            violations=violations,
        )
