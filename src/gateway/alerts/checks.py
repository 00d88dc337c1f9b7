"""Conditions of the channel rules, evaluated per reading: limits, rate of change, bad quality,
stale data. Built to be cheap in the common case (a value inside its limits costs two
comparisons), since every reading of every watched channel passes through here.

A :class:`Watch` is one channel with the checks of every rule that covers it; a check holds its
rule's per-channel state (hysteresis side, rate window, alerts) and feeds the :class:`Tracker`.
The module stays above 500 lines because the watch and its checks share one invariant, the quiet
band each check publishes and the watch folds, which splitting them would scatter.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from gateway.alerts.config import Schedule
from gateway.alerts.lifecycle import ACTIVE_STATES, EVENT_CLOCK, GATEWAY_CLOCK, Alert, Tracker
from gateway.alerts.rule_config import BadQualityRule, LimitsRule, PathMatcher, RateRule, StaleRule

NS = 1_000_000_000
NEVER = 2**63
"""A time bound that is never reached."""
INF = float("inf")


@dataclass(eq=False)
class CompiledRule:
    """A rule in force, with its matcher and whether its schedule is on."""

    config: Any
    matcher: PathMatcher
    schedule: Schedule | None = None
    in_schedule: bool = True

    @property
    def id(self) -> str:
        """The rule's id."""
        rule_id: str = self.config.id
        return rule_id

    @property
    def kind(self) -> str:
        """The rule's kind."""
        kind: str = self.config.kind
        return kind

    @property
    def delays_ns(self) -> tuple[int, int]:
        """The rule's on- and off-delay in nanoseconds."""
        config = self.config
        return int(config.on_delay_s * NS), int(config.off_delay_s * NS)

    @property
    def suppressed(self) -> str | None:
        """Why the rule may not raise now (``schedule``), or None."""
        return None if self.in_schedule else "schedule"

    def covers(self, path: str, tags: dict[str, str]) -> bool:
        """Whether the rule watches the channel (or agent, instrument, standard) at ``path``."""
        wanted: dict[str, str] = getattr(self.config, "tags", {})
        if not self.matcher.matches(path):
            return False
        return not wanted or all(tags.get(k) == v for k, v in wanted.items())


@dataclass(eq=False, slots=True)
class Watch:
    """One channel: what the catalogue says of it, when it was last heard, its checks."""

    site: str
    agent: str
    instrument: str
    channel: str
    unit: str | None = None
    interval_s: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    declared: bool = False
    numeric: list[Any] = field(default_factory=list)
    quality: list[BadQualityCheck] = field(default_factory=list)
    stale: list[StaleCheck] = field(default_factory=list)
    calibration: list[CalibrationCheck] = field(default_factory=list)
    """Checks of corrected readings (only readings a certificate corrected reach them)."""
    last_ts: int = 0
    heard_ts: int = 0
    seen: float = 0.0
    """Gateway (monotonic) time a new reading was last noticed, to tick precision."""
    bad_run: int = 0
    lo: float = INF
    hi: float = -INF
    until: int = 0
    """The quiet band of all numeric checks: a value in [lo, hi] read before ``until`` changes
    nothing, so it costs no check at all (the common case)."""

    @property
    def path(self) -> str:
        """``site/agent/instrument/channel``."""
        return f"{self.site}/{self.agent}/{self.instrument}/{self.channel}"

    def settle(self) -> None:
        """Recompute the quiet band after a check did work."""
        lo, hi, until = -INF, INF, NEVER
        for check in self.numeric:
            if check.lo > lo:
                lo = check.lo
            if check.hi < hi:
                hi = check.hi
            if check.until < until:
                until = check.until
        self.lo, self.hi, self.until = lo, hi, until


def _key(rule: CompiledRule, subject: str, level: str) -> str:
    return f"{rule.id}|{subject}|{level}"


def raise_alert(
    tracker: Tracker,
    rule: CompiledRule,
    site: str,
    subject: str,
    level: str,
    severity: str,
    *,
    kind: str | None = None,
    clock: str = EVENT_CLOCK,
) -> Alert:
    """The tracker's alert of ``rule`` on ``subject`` at ``level`` (created, normal, if new);
    ``kind`` defaults to the rule's."""
    return tracker.alert(
        _key(rule, subject, level),
        rule_id=rule.id,
        kind=kind or rule.kind,
        site=site,
        subject=subject,
        level=level,
        severity=severity,
        clock=clock,
    )


class _SingleAlertCheck:
    """A check with one alert per channel at its rule's severity (all but limits, which has one
    per level): the rule's delays and the alert it already has."""

    __slots__ = ("alert", "off_ns", "on_ns", "rule", "tracker", "watch")

    def __init__(self, rule: CompiledRule, watch: Watch, tracker: Tracker) -> None:
        self.rule, self.watch, self.tracker = rule, watch, tracker
        self.on_ns, self.off_ns = rule.delays_ns
        self.alert: Alert | None = tracker.alerts.get(_key(rule, watch.path, rule.config.severity))

    def _judged(self, condition: bool, clock: str = EVENT_CLOCK) -> Alert | None:
        """The alert to judge ``condition`` on, raised when the condition first holds; None
        when there is nothing to do (no alert and no condition, or an idle one that stays so)."""
        alert = self.alert
        if alert is None:
            if not condition:
                return None
            severity = self.rule.config.severity
            watch = self.watch
            alert = self.alert = raise_alert(
                self.tracker, self.rule, watch.site, watch.path, severity, severity, clock=clock
            )
        elif not condition and alert.idle:
            return None
        return alert

    def _update(self, alert: Alert, condition: bool, ts: int, reading: Any) -> None:
        self.tracker.update(
            alert, condition, ts, self.on_ns, self.off_ns, reading, self.rule.suppressed
        )


class _Level:
    """One level of a limits rule on one channel."""

    __slots__ = ("alert", "hi", "hi_clear", "lo", "lo_clear", "off_ns", "on_ns", "severity", "side")

    def __init__(self, level: Any) -> None:
        self.severity: str = level.severity
        inf = float("inf")
        self.lo: float = -inf if level.low is None else level.low
        self.hi: float = inf if level.high is None else level.high
        self.lo_clear = self.lo + level.deadband
        self.hi_clear = self.hi - level.deadband
        self.on_ns = int(level.on_delay_s * NS)
        self.off_ns = int(level.off_delay_s * NS)
        self.side: str | None = None
        self.alert: Alert | None = None


class LimitCheck:
    """Low/high limits at several levels, each with hysteresis and its own delays."""

    __slots__ = ("hi", "levels", "lo", "quiet", "rule", "tracker", "until", "watch")

    def __init__(self, rule: CompiledRule, watch: Watch, tracker: Tracker) -> None:
        config: LimitsRule = rule.config
        self.rule, self.watch, self.tracker = rule, watch, tracker
        self.levels = [_Level(level) for level in config.levels]
        for level in self.levels:
            alert = tracker.alerts.get(_key(rule, watch.path, level.severity))
            if alert is not None:
                level.alert = alert
                if alert.condition:
                    level.side = alert.detail.get("side")
        self._settle()

    def _settle(self) -> None:
        """The band of values that change nothing, level by level: inside the limits while a
        level is quiet; beyond the limit minus its deadband while it is out and active (or
        pending, until its on-delay ends). Anything else needs the slow path."""
        lo, hi, until = -INF, INF, NEVER
        quiet = True
        for level in self.levels:
            alert, side = level.alert, level.side
            if side is None:
                if alert is not None and not alert.idle:
                    self.quiet, self.lo, self.hi, self.until = False, INF, -INF, NEVER
                    return
                level_lo, level_hi = level.lo, level.hi
            else:
                quiet = False
                if alert is None or not alert.condition or alert.clearing_since_ns is not None:
                    self.quiet, self.lo, self.hi, self.until = False, INF, -INF, NEVER
                    return
                if alert.state not in ACTIVE_STATES:
                    if alert.pending_since_ns is None or alert.suppressed is not None:
                        self.quiet, self.lo, self.hi, self.until = False, INF, -INF, NEVER
                        return
                    until = min(until, alert.pending_since_ns + level.on_ns)
                if side == "high":
                    level_lo, level_hi = math.nextafter(level.hi_clear, INF), INF
                else:
                    level_lo, level_hi = -INF, math.nextafter(level.lo_clear, -INF)
            lo = level_lo if level_lo > lo else lo
            hi = level_hi if level_hi < hi else hi
        if lo > hi:
            lo, hi = INF, -INF
        self.quiet, self.lo, self.hi, self.until = quiet, lo, hi, until

    def feed(self, value: float, ts: int, reading: Any) -> None:
        """One numeric reading."""
        if self.lo <= value <= self.hi and ts < self.until:
            return
        rule, watch, tracker = self.rule, self.watch, self.tracker
        suppressed = rule.suppressed
        for level in self.levels:
            side = level.side
            if side is None:
                if value > level.hi:
                    side = "high"
                elif value < level.lo:
                    side = "low"
            elif side == "high":
                if value <= level.hi_clear:
                    side = "low" if value < level.lo else None
            elif value >= level.lo_clear:
                side = "high" if value > level.hi else None
            level.side = side
            alert = level.alert
            if alert is None:
                if side is None:
                    continue
                alert = level.alert = raise_alert(
                    tracker, rule, watch.site, watch.path, level.severity, level.severity
                )
            alert.value = value
            if side is not None and alert.condition and ts >= alert.last_event_ns:
                # Still out: while active (not clearing), or pending with its on-delay still
                # running, nothing but the time of the last judgement changes.
                if alert.state in ACTIVE_STATES:
                    if alert.clearing_since_ns is None:
                        alert.last_event_ns = ts
                        continue
                elif (
                    alert.pending_since_ns is not None
                    and ts - alert.pending_since_ns < level.on_ns
                    and suppressed is None
                ):
                    alert.last_event_ns = ts
                    continue
            alert.unit = reading["unit"]
            if side is not None:
                alert.limit = level.hi if side == "high" else level.lo
                if alert.detail.get("side") != side:
                    alert.detail = {"side": side}
            tracker.update(
                alert, side is not None, ts, level.on_ns, level.off_ns, reading, suppressed
            )
        self._settle()


class RateCheck(_SingleAlertCheck):
    """Change over a window: the newest value against the oldest kept within ``window_s``.

    Samples are kept at least window/32 apart, so a window of 15 min on a 1 s channel holds
    about 33 values, not 900.
    """

    __slots__ = (
        "clear_at",
        "direction",
        "hi",
        "limit",
        "lo",
        "samples",
        "spacing_ns",
        "until",
        "window_ns",
    )

    def __init__(self, rule: CompiledRule, watch: Watch, tracker: Tracker) -> None:
        super().__init__(rule, watch, tracker)
        config: RateRule = rule.config
        self.limit = config.max_change
        self.clear_at = config.max_change - config.deadband
        self.window_ns = int(config.window_s * NS)
        self.spacing_ns = self.window_ns // 32
        self.direction = config.direction
        self.samples: deque[tuple[int, float]] = deque()
        self.lo, self.hi, self.until = INF, -INF, 0

    def _settle(self, base: float, condition: bool) -> None:
        """The quiet band: until the next sample is due or the oldest leaves the window, values
        within ``max_change`` of the base change nothing (while no alert needs attention)."""
        samples = self.samples
        until = samples[-1][0] + self.spacing_ns
        if len(samples) > 1:
            until = min(until, samples[1][0] + self.window_ns)
        self.until = until
        alert = self.alert
        direction = self.direction
        if alert is not None and not alert.idle:
            if (
                condition
                and alert.condition
                and alert.clearing_since_ns is None
                and alert.state in ACTIVE_STATES
            ):
                # Active and holding: quiet while the change stays beyond limit - deadband.
                rising = direction == "rise" or (
                    direction == "both" and alert.value is not None and alert.value > 0
                )
                if rising:
                    self.lo, self.hi = math.nextafter(base + self.clear_at, INF), INF
                else:
                    self.lo, self.hi = -INF, math.nextafter(base - self.clear_at, -INF)
                return
            self.lo, self.hi = INF, -INF
            return
        if condition:
            self.lo, self.hi = INF, -INF
            return
        self.lo = -INF if direction == "rise" else base - self.limit
        self.hi = INF if direction == "fall" else base + self.limit

    def feed(self, value: float, ts: int, reading: Any) -> None:
        """One numeric reading."""
        if self.lo <= value <= self.hi and ts < self.until:
            return
        samples = self.samples
        if not samples or ts - samples[-1][0] >= self.spacing_ns:
            samples.append((ts, value))
        start = ts - self.window_ns
        while len(samples) > 1 and samples[1][0] <= start:
            samples.popleft()
        base_ts, base = samples[0]
        change = value - base
        alert = self.alert
        # Hysteresis: a raised condition holds until the change is back under limit - deadband.
        limit = self.clear_at if alert is not None and alert.condition else self.limit
        if self.direction == "both":
            condition = abs(change) > limit
        elif self.direction == "rise":
            condition = change > limit
        else:
            condition = -change > limit
        alert = self._judged(condition)
        if alert is None:
            self._settle(base, condition)
            return
        alert.value = change
        alert.unit = reading["unit"]
        alert.limit = self.limit
        alert.detail = {
            "window_s": self.window_ns / NS,
            "direction": self.direction,
            "from_ts": base_ts,
            "from_value": base,
            "to_value": value,
        }
        self._update(alert, condition, ts, reading)
        self._settle(base, condition)


class BadQualityCheck(_SingleAlertCheck):
    """``count`` bad readings in a row."""

    __slots__ = ("count",)

    def __init__(self, rule: CompiledRule, watch: Watch, tracker: Tracker) -> None:
        super().__init__(rule, watch, tracker)
        config: BadQualityRule = rule.config
        self.count = config.count

    def feed(self, bad_run: int, ts: int, reading: Any) -> None:
        """After each reading that changed the run of bad readings."""
        condition = bad_run >= self.count
        alert = self._judged(condition)
        if alert is None:
            return
        alert.value = bad_run
        alert.limit = self.count
        if condition:
            alert.detail = {"reason": reading.get("reason"), "count": bad_run}
        self._update(alert, condition, ts, reading)


class StaleCheck(_SingleAlertCheck):
    """No reading for ``intervals`` × the channel's interval (gateway clock: arrival time)."""

    __slots__ = ("intervals", "max_age_s")

    def __init__(self, rule: CompiledRule, watch: Watch, tracker: Tracker) -> None:
        super().__init__(rule, watch, tracker)
        config: StaleRule = rule.config
        self.intervals = config.intervals
        self.max_age_s = config.max_age_s

    def limit_s(self) -> float | None:
        """Age beyond which the channel is stale (None: its interval is unknown)."""
        if self.max_age_s is not None:
            return self.max_age_s
        if self.watch.interval_s is None:
            return None
        return self.intervals * self.watch.interval_s

    def check(self, age_s: float, now_ns: int, excused: bool) -> None:
        """On each tick; ``excused``: the agent or instrument is down and that is alerted."""
        limit = self.limit_s()
        condition = limit is not None and age_s > limit and not excused
        alert = self._judged(condition, GATEWAY_CLOCK)
        if alert is None:
            return
        if condition or alert.state in ACTIVE_STATES:
            alert.value = round(age_s, 3)
            alert.limit = limit
            alert.unit = "s"
            alert.detail = {"interval_s": self.watch.interval_s, "excused": excused}
        self._update(alert, condition, now_ns, None)


_CALIBRATION_BIT = {"calibration_range": 1, "calibration_expired": 2}


class CalibrationCheck(_SingleAlertCheck):
    """A corrected reading out of its certificate's range (``calibration_range``), after its
    due date (``calibration_expired``), or out of tolerance (``conformity``): the flags and the
    verdict the gateway's corrections put on the reading (gateway.corrections.corrector)."""

    __slots__ = ("bit", "kind", "threshold")

    def __init__(self, rule: CompiledRule, watch: Watch, tracker: Tracker) -> None:
        super().__init__(rule, watch, tracker)
        config = rule.config
        self.kind: str = config.kind
        self.bit = _CALIBRATION_BIT.get(self.kind, 0)
        self.threshold = 2 if getattr(config, "conditional", False) else 3

    def feed(self, reading: Any, ts: int) -> None:
        """One reading that a certificate corrected or flagged."""
        if self.bit:
            condition = bool(reading.get("calibration", 0) & self.bit)
        else:
            code = reading.get("conformity")
            if code is None:
                return
            condition = code >= self.threshold
        alert = self._judged(condition)
        if alert is None:
            return
        if condition:
            alert.unit = reading["unit"]
            if self.bit:
                low, high = reading.get("calibration_range") or (None, None)
                alert.value = reading["value"]
                alert.limit = None
                if self.bit == 1 and isinstance(low, float) and isinstance(high, float):
                    alert.limit = high if reading["value"] > high else low
                alert.detail = {
                    "certificate": reading.get("certificate"),
                    "certificate_id": reading.get("certificate_id"),
                    "low": low,
                    "high": high,
                    "due": reading.get("calibration_due"),
                    "corrected": reading.get("corrected"),
                    "u_corrected": reading.get("u_corrected"),
                    "reason": reading.get("reason"),
                }
            else:
                verdict = dict(reading.get("verdict") or {})
                alert.value = verdict.get("measured")
                measured = alert.value if isinstance(alert.value, float) else 0.0
                upper, lower = verdict.get("tolerance_upper"), verdict.get("tolerance_lower")
                alert.limit = upper if upper is not None and measured > upper else lower
                alert.detail = verdict
        self._update(alert, condition, ts, reading)
