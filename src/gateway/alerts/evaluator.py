"""Evaluation of alert rules: what every channel, agent, instrument and standard is watched
for, and what each event does to its alerts.

Channels are watched by :class:`~gateway.alerts.checks.Watch` objects (nested by agent and
instrument, so the hot path builds no key per reading), each with the checks of the rules that
cover it; the catalogue of the agents' birth messages says which channels exist. Agent and
instrument states raise their own alerts and excuse their channels' silence; standards'
evaluations are judged against the standards rules.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.logs import log_event
from edge_agent.wire import WireReading
from gateway.alerts.checks import (
    NS,
    BadQualityCheck,
    CalibrationCheck,
    CompiledRule,
    LimitCheck,
    RateCheck,
    StaleCheck,
    Watch,
    raise_alert,
)
from gateway.alerts.lifecycle import ACTIVE_STATES, EVENT_CLOCK, GATEWAY_CLOCK, Alert, Tracker
from gateway.alerts.rule_config import (
    CALIBRATION_KINDS,
    CHANNEL_KINDS,
    RECORDS_KIND,
    STANDARD_KINDS,
    has_wildcard,
)
from gateway.alerts.rules import RuleBook
from gateway.alerts.store import load_catalogue
from gateway.ingest.events import RecordsVerified, StandardEvaluated
from gateway.records.store import RecordStore

log = logging.getLogger("etalon.gateway.alerts")

DAY_NS = 86_400 * NS


@dataclass(eq=False, repr=False)
class Evaluator:
    """Watches and the evaluation of events; see the module doc. ``readings_evaluated`` counts
    the readings seen (the engine's stats show it). (No generated repr: it would print every
    watch.)"""

    rulebook: RuleBook
    tracker: Tracker
    records: RecordStore
    wall_ns: Callable[[], int]
    monotonic: Callable[[], float]
    readings_evaluated: int = field(default=0, init=False)
    watches: dict[tuple[str, str], dict[str, dict[str, Watch]]] = field(
        default_factory=dict, init=False
    )
    """(site, agent) → instrument → channel → watch (nested: no key to build per reading)."""
    agent_state: dict[tuple[str, str], str] = field(default_factory=dict, init=False)
    instrument_state: dict[tuple[str, str, str], str] = field(default_factory=dict, init=False)
    unresolved: dict[str, set[str]] = field(default_factory=dict, init=False)
    """Channel pattern → ids of the rules that name it while its agent does not declare it."""
    stale_watches: set[Watch] = field(default_factory=set, init=False)
    catalogue: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict, init=False)

    async def load_catalogue(self, agent: tuple[str, str] | None = None) -> None:
        """Channels of the agents' latest birth messages (older rows are channels since removed)."""
        rows = await self.records.run(functools.partial(load_catalogue, agent=agent))
        declared: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for row in rows:
            key = (row["site"], row["agent"])
            declared.setdefault(key, set()).add((row["instrument"], row["channel"]))
            watch = self.watch(row["site"], row["agent"], row["instrument"], row["channel"])
            tags = json.loads(row["tags"])
            changed = tags != watch.tags or not watch.declared
            watch.unit, watch.interval_s, watch.tags = row["unit"], row["interval_s"], tags
            watch.declared = True
            if changed:
                self.attach(watch)
        for key, names in declared.items():
            for watch in self.watches_of(key):
                if (watch.instrument, watch.channel) not in names and watch.declared:
                    watch.declared = False
                    self.attach(watch)
        self.catalogue = declared if agent is None else {**self.catalogue, **declared}

    def watch(self, site: str, agent: str, instrument: str, channel: str) -> Watch:
        """The watch of a channel, made (and its checks attached) on first use."""
        per_instrument = self.watches.setdefault((site, agent), {}).setdefault(instrument, {})
        watch = per_instrument.get(channel)
        if watch is None:
            watch = Watch(site, agent, instrument, channel)
            watch.seen = self.monotonic()
            per_instrument[channel] = watch
            self.attach(watch)
        return watch

    def watches_of(self, agent: tuple[str, str], instrument: str | None = None) -> list[Watch]:
        """The watches of an agent (of one of its instruments)."""
        per_agent = self.watches.get(agent, {})
        if instrument is not None:
            return list(per_agent.get(instrument, {}).values())
        return [w for per_instrument in per_agent.values() for w in per_instrument.values()]

    def attach(self, watch: Watch) -> None:
        """(Re)build the checks of every rule that covers the channel."""
        numeric: list[Any] = []
        quality: list[BadQualityCheck] = []
        stale: list[StaleCheck] = []
        calibration: list[CalibrationCheck] = []
        path = watch.path
        for rule in self.rulebook.channel_rules:
            if not rule.covers(path, watch.tags):
                continue
            kind = rule.kind
            if kind == "limits":
                numeric.append(LimitCheck(rule, watch, self.tracker))
            elif kind == "rate":
                numeric.append(RateCheck(rule, watch, self.tracker))
            elif kind == "bad_quality":
                quality.append(BadQualityCheck(rule, watch, self.tracker))
            elif kind == "stale" and (watch.declared or rule.config.max_age_s is not None):
                stale.append(StaleCheck(rule, watch, self.tracker))
            elif kind in CALIBRATION_KINDS:
                calibration.append(CalibrationCheck(rule, watch, self.tracker))
        watch.numeric, watch.quality, watch.stale = numeric, quality, stale
        watch.calibration = calibration
        watch.settle()
        if stale:
            self.stale_watches.add(watch)
        else:
            self.stale_watches.discard(watch)

    def attach_all(self) -> None:
        """Rebuild every channel's checks (the rules changed)."""
        for key in self.watches:
            for watch in self.watches_of(key):
                self.attach(watch)

    def check_unresolved(self, agent: tuple[str, str] | None) -> None:
        """Rules naming (without wildcards) a channel its agent does not declare."""
        now = self.wall_ns()
        for rule in self.rulebook.channel_rules:
            for pattern in rule.config.channels:
                if has_wildcard(pattern):
                    continue
                site, agent_id, instrument, channel = pattern.split("/")
                if agent is not None and (site, agent_id) != agent:
                    continue
                names = self.catalogue.get((site, agent_id))
                if names is None:
                    continue  # the agent never announced itself: nothing to compare with
                missing = (instrument, channel) not in names
                key = f"{rule.id}|{pattern}|unresolved"
                alert = self.tracker.alerts.get(key)
                if alert is None and not missing:
                    continue
                if missing and rule.id not in self.unresolved.get(pattern, set()):
                    log_event(
                        log,
                        logging.WARNING,
                        "alert rule names an unknown channel",
                        rule=rule.id,
                        channel=pattern,
                        declared=len(names),
                    )
                if missing:
                    self.unresolved.setdefault(pattern, set()).add(rule.id)
                else:
                    self.unresolved.get(pattern, set()).discard(rule.id)
                alert = raise_alert(
                    self.tracker,
                    rule,
                    site,
                    pattern,
                    "unresolved",
                    "warning",
                    kind="rule_unresolved",
                    clock=GATEWAY_CLOCK,
                )
                alert.value = None
                self.tracker.update(alert, missing, now, 0, 0, {"ts": now})

    def readings(self, site: str, agent: str, readings: list[WireReading]) -> None:
        """The hot path: every reading of every channel. A reading inside its channel's quiet
        band (see Watch) costs two lookups and a few comparisons; the rest go to _judge."""
        per_agent = self.watches.get((site, agent))
        if per_agent is None:
            per_agent = self.watches[(site, agent)] = {}
        instruments = per_agent.get
        for reading in readings:
            per_instrument = instruments(reading["instrument"])
            watch = per_instrument.get(reading["channel"]) if per_instrument is not None else None
            if watch is None:
                watch = self.watch(site, agent, reading["instrument"], reading["channel"])
                watch.unit = reading["unit"]
            ts = reading["ts"]
            if ts <= watch.last_ts:
                continue  # redelivered or out of order: already judged
            watch.last_ts = ts  # the tick turns a new last_ts into "heard at" for stale data
            if watch.calibration and ("corrected" in reading or "calibration" in reading):
                for calibration_check in watch.calibration:
                    calibration_check.feed(reading, ts)
            try:
                if (
                    ts < watch.until
                    and reading["quality"] != "bad"
                    and watch.lo <= reading["value"] <= watch.hi  # type: ignore[operator]
                ):
                    continue
            except TypeError:
                pass  # text where a number was expected: judged (and marked) below
            self.judge(watch, reading, ts)
        self.readings_evaluated += len(readings)

    def judge(self, watch: Watch, reading: WireReading, ts: int) -> None:
        """A reading outside its channel's quiet band: bad quality, or a check to run."""
        if reading["quality"] == "bad":
            watch.bad_run += 1
            for check in watch.quality:
                check.feed(watch.bad_run, ts, reading)
            watch.until = 0  # the next good reading ends the run: it must come here too
            return
        if watch.bad_run:
            watch.bad_run = 0
            for check in watch.quality:
                check.feed(0, ts, reading)
        value: Any = reading["value"]
        if not isinstance(value, int | float):
            watch.until = 0  # text: no numeric rule applies; never quiet
            return
        for check in watch.numeric:
            if value < check.lo or value > check.hi or ts >= check.until:
                check.feed(value, ts, reading)
        watch.settle()

    def agent(self, site: str, agent: str, state: str, reason: str | None, now: int) -> None:
        """An agent's state: its offline rules, and its channels' stale-data clocks."""
        previous = self.agent_state.get((site, agent))
        self.agent_state[(site, agent)] = state
        if state == "online" and previous == "offline":
            for watch in self.watches_of((site, agent)):
                watch.seen = self.monotonic()  # its channels' clocks restart with it
        path = f"{site}/{agent}"
        for rule in self.rulebook.of_kind("agent_offline"):
            if rule.covers(path, {}):
                self.state_alert(
                    rule, site, path, state == "offline", now, {"state": state, "reason": reason}
                )

    def instrument(
        self, site: str, agent: str, instrument: str, state: str, reason: str | None, now: int
    ) -> None:
        """An instrument's state: its unavailable rules, and its channels' clocks."""
        self.instrument_state[(site, agent, instrument)] = state
        if state == "connected":
            for watch in self.watches_of((site, agent), instrument):
                watch.seen = self.monotonic()
        path = f"{site}/{agent}/{instrument}"
        for rule in self.rulebook.of_kind("instrument_unavailable"):
            if rule.covers(path, {}):
                self.state_alert(
                    rule,
                    site,
                    path,
                    state == "unavailable",
                    now,
                    {"state": state, "reason": reason},
                )

    def state_alert(
        self,
        rule: CompiledRule,
        site: str,
        subject: str,
        condition: bool,
        now: int,
        detail: dict[str, Any],
    ) -> None:
        severity = rule.config.severity
        alert = self.rule_alert(rule, site, subject, severity, severity, condition, GATEWAY_CLOCK)
        if alert is None:
            return
        if condition or alert.state in ACTIVE_STATES:
            alert.value = detail["state"]
            alert.detail = detail
        self.update_rule_alert(rule, alert, condition, now, {"ts": now, **detail})

    def rule_alert(
        self,
        rule: CompiledRule,
        site: str,
        subject: str,
        level: str,
        severity: str,
        condition: bool,
        clock: str = EVENT_CLOCK,
    ) -> Alert | None:
        """The alert of ``rule`` on ``subject`` at ``level``, raised when ``condition`` holds;
        None when there is none and nothing to raise."""
        if not condition and f"{rule.id}|{subject}|{level}" not in self.tracker.alerts:
            return None
        return raise_alert(self.tracker, rule, site, subject, level, severity, clock=clock)

    def update_rule_alert(
        self, rule: CompiledRule, alert: Alert, condition: bool, ts: int, cause: dict[str, Any]
    ) -> None:
        """Judge ``condition`` on the alert of ``rule`` with the rule's delays."""
        on_ns, off_ns = rule.delays_ns
        self.tracker.update(alert, condition, ts, on_ns, off_ns, cause, rule.suppressed)

    def excused(self, watch: Watch) -> bool:
        """Whether a silent channel is already explained by an alerted agent or instrument."""
        agent = (watch.site, watch.agent)
        if self.agent_state.get(agent) == "offline":
            path = f"{watch.site}/{watch.agent}"
            if any(r.covers(path, {}) for r in self.rulebook.of_kind("agent_offline")):
                return True
        if self.instrument_state.get((*agent, watch.instrument)) == "unavailable":
            path = f"{watch.site}/{watch.agent}/{watch.instrument}"
            if any(r.covers(path, {}) for r in self.rulebook.of_kind("instrument_unavailable")):
                return True
        return False

    def standard(self, event: StandardEvaluated) -> None:
        """A standard's evaluation against the standards rules that cover it."""
        subject = f"{event.site}/{event.standard_id}"
        cause = {
            "ts": event.measured_ts_ns,
            "value": event.measured,
            "unit": event.unit,
            "u": event.measured_u,
        }
        for rule in self.rulebook.rules.values():
            if rule.kind not in STANDARD_KINDS or not rule.covers(event.standard_id, {}):
                continue
            for level, severity, condition, value, limit, detail in self.standard_checks(
                rule, event
            ):
                if condition is None:
                    continue  # not known from this evaluation (no certificate, no fit...)
                alert = self.rule_alert(rule, event.site, subject, level, severity, condition)
                if alert is None:
                    continue
                if condition or alert.state in ACTIVE_STATES:
                    alert.value, alert.limit, alert.unit = value, limit, event.unit
                    alert.detail = detail
                self.update_rule_alert(rule, alert, condition, event.ts_ns, cause)

    def records_verified(self, event: RecordsVerified) -> None:
        """A verification of the record store (or a writer's finding): its integrity rules."""
        subject = f"{event.site}/{event.ledger}"
        finding = event.finding or {}
        for rule in self.rulebook.of_kind(RECORDS_KIND):
            alert = self.rule_alert(
                rule,
                event.site,
                subject,
                "integrity",
                rule.config.severity,
                not event.ok,
                GATEWAY_CLOCK,
            )
            if alert is None:
                continue
            if not event.ok:
                alert.value, alert.limit, alert.unit = finding.get("seq"), None, ""
                alert.detail = {"source": event.source, **finding}
            self.update_rule_alert(
                rule,
                alert,
                not event.ok,
                max(event.checked_ns, alert.last_event_ns),
                {"ts": event.checked_ns, "source": event.source},
            )

    def standard_checks(
        self, rule: CompiledRule, e: StandardEvaluated
    ) -> list[tuple[str, str, bool | None, Any, float | None, dict[str, Any]]]:
        config = rule.config
        if rule.kind == "standard_certificate":
            if e.measured is None or e.reference is None or e.reference_expanded_u is None:
                return [("certificate", config.severity, None, None, None, {})]
            deviation = e.measured - e.reference
            allowed = e.reference_expanded_u * config.factor
            return [
                (
                    "certificate",
                    config.severity,
                    abs(deviation) > allowed,
                    e.measured,
                    e.reference + (allowed if deviation >= 0 else -allowed),
                    {
                        "reference": e.reference,
                        "expanded_u": e.reference_expanded_u,
                        "k": e.k,
                        "deviation": deviation,
                        "measured_u": e.measured_u,
                        "factor": config.factor,
                    },
                )
            ]
        if rule.kind == "standard_prediction":
            if e.predicted_out_of_tolerance_ns is None:
                return [("prediction", config.severity, False, None, None, {})]
            days = (e.predicted_out_of_tolerance_ns - e.ts_ns) / DAY_NS
            return [
                (
                    "prediction",
                    config.severity,
                    days <= config.within_days,
                    round(days, 3),
                    config.within_days,
                    {
                        "predicted_ns": e.predicted_out_of_tolerance_ns,
                        "days_left": days,
                        "tolerance_low": e.tolerance_low,
                        "tolerance_high": e.tolerance_high,
                    },
                )
            ]
        if rule.kind == "standard_control":
            fired = {v.rule: v.ts_ns for v in e.violations}
            return [
                (
                    name,
                    config.severity,
                    name in fired,
                    e.measured,
                    None,
                    {"violation_ts_ns": fired.get(name)},
                )
                for name in config.rules
            ]
        # calibration_due
        if e.calibration_due_ns is None:
            return [
                ("due", config.severity, None, None, None, {}),
                ("overdue", config.overdue_severity, None, None, None, {}),
            ]
        days = (e.calibration_due_ns - e.ts_ns) / DAY_NS
        detail = {"due_ns": e.calibration_due_ns, "days_left": days}
        return [
            (
                "due",
                config.severity,
                days <= config.within_days,
                round(days, 3),
                config.within_days,
                detail,
            ),
            ("overdue", config.overdue_severity, days <= 0, round(days, 3), 0.0, detail),
        ]

    def retire_orphans(self, now: int) -> None:
        """Alerts no rule in force evaluates any more (rule removed, disabled, or no longer
        covering their subject or level) clear; they stay listed until acknowledged."""
        for alert in list(self.tracker.alerts.values()):
            if not alert.condition and alert.idle:
                continue
            rule = self.rulebook.rules.get(alert.rule_id)
            if rule is None:
                reason = "rule removed or disabled"
            elif alert.kind in CHANNEL_KINDS and not self.covered(rule, alert):
                reason = "rule no longer covers this channel or level"
            else:
                continue
            self.tracker.update(
                alert, False, max(now, alert.last_event_ns), 0, 0, {"ts": now, "reason": reason}
            )

    def covered(self, rule: CompiledRule, alert: Alert) -> bool:
        site, agent, instrument, channel = alert.subject.split("/")
        watch = self.watches.get((site, agent), {}).get(instrument, {}).get(channel)
        if not rule.covers(alert.subject, watch.tags if watch is not None else {}):
            return False
        if alert.kind == "limits":
            return any(level.severity == alert.level for level in rule.config.levels)
        return bool(rule.config.severity == alert.level)
