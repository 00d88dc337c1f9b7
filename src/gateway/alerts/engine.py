"""The gateway's alert engine.

In: the event hub (readings, agent and instrument states, standards analytics). The hub's
handlers only append to a queue; one task evaluates what is queued, runs the timers (stale data,
delays on the gateway clock, shelving, escalation, schedules) every ``tick_s``, then writes what
changed — alert rows, audit entries, notifications to send — in one record-store transaction,
and hands the notifications to the :class:`Notifier`.

Out: the record store (``alerts``, ``alert_rules``, ``alert_outbox``, ``audit_log``), MQTT,
webhooks and e-mail. The API (``gateway.api.alerts``) calls the operator methods
(:meth:`AlertEngine.acknowledge` and friends); they take effect and are committed before they
return.

Restart: alerts, the rules in force and undelivered notifications are read back at start, so an
active alert stays active without being raised (or notified) again; a channel's stale-data
clock starts when the gateway does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from core.errors import StoreError
from core.logs import log_event
from core.mqtt import MqttLink
from edge_agent.wire import Topics, WireReading
from gateway.alerts.checks import (
    NS,
    BadQualityCheck,
    CompiledRule,
    LimitCheck,
    RateCheck,
    StaleCheck,
    Watch,
)
from gateway.alerts.config import (
    CHANNEL_KINDS,
    STANDARD_KINDS,
    AlertsConfig,
    LimitsRule,
    PathMatcher,
    Policy,
    Rule,
    has_wildcard,
    rule_definition,
    rule_hash,
)
from gateway.alerts.lifecycle import (
    ACTIVE,
    ACTIVE_STATES,
    GATEWAY_CLOCK,
    OPEN_STATES,
    Alert,
    AlertNotFound,
    Change,
    InvalidAlertInput,
    Tracker,
)
from gateway.alerts.messages import describe
from gateway.alerts.notify import Notifier
from gateway.alerts.payloads import MQTT_EVENT_SCHEMA, MQTT_STATE_SCHEMA, AlertView
from gateway.alerts.store import (
    AuditRow,
    OutboxRow,
    load_alerts,
    load_open_outbox,
    load_rules,
    save_rules,
    write_batch,
)
from gateway.config import GatewayConfig
from gateway.events import (
    AgentStateChanged,
    EventHub,
    InstrumentStateChanged,
    ReadingsArrived,
    StandardEvaluated,
)
from gateway.records import RecordStore

log = logging.getLogger("etalon.gateway.alerts")

RULE = TypeAdapter(Rule)
VIEW_FIELDS = frozenset(AlertView.model_fields)
COMMENT_MAX = 2000
CATALOGUE_REFRESH_S = 60.0
QUEUE_MAX = 20_000
"""Events queued for evaluation beyond which reading batches are dropped (and counted)."""
LOG_EACH_UP_TO = 20
"""Changes logged one by one per write; more are summarised in one line."""
DAY_NS = 86_400 * NS


@dataclass
class EngineStats:
    """Counters of the engine (the API shows them)."""

    readings_evaluated: int = 0
    events: int = 0
    changes: int = 0
    flushes: int = 0
    flush_errors: int = 0
    queue_depth: int = 0
    evaluation_errors: int = 0
    batches_dropped: int = 0


@dataclass
class RuleInForce:
    """A rule with where it came from."""

    rule: Any
    source: str
    config_hash: str | None
    updated_ns: int
    updated_by: str


class AlertEngine:
    """See the module doc."""

    def __init__(
        self,
        config: GatewayConfig,
        records: RecordStore,
        hub: EventHub,
        link: MqttLink | None = None,
        *,
        api_url: Callable[[], str | None] = lambda: None,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert config.alerts is not None
        self.gateway_config = config
        self.config: AlertsConfig = config.alerts
        self.records = records
        self.hub = hub
        self.wall_ns = wall_ns
        self.monotonic = monotonic
        self.api_url = api_url
        self.topics = Topics(config.mqtt.topic_prefix)
        self.tracker = Tracker(wall_ns)
        self.stats = EngineStats()
        self.rules_in_force: dict[str, RuleInForce] = {}
        self.rules: dict[str, CompiledRule] = {}
        self.watches: dict[tuple[str, str], dict[str, dict[str, Watch]]] = {}
        """(site, agent) → instrument → channel → watch (nested: no key to build per reading)."""
        self.agent_state: dict[tuple[str, str], str] = {}
        self.instrument_state: dict[tuple[str, str, str], str] = {}
        self.unresolved: dict[str, set[str]] = {}
        self.notifier = Notifier(
            self.config,
            site=config.site,
            gateway=config.id,
            records=records,
            link=link if self.config.mqtt.enabled else None,
            topics=self.topics,
            link_template=self.link_template,
            wall_ns=wall_ns,
            monotonic=monotonic,
        )
        self._queue: deque[object] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._outbox: list[OutboxRow] = []
        self._audits: list[AuditRow] = []
        self._retry: tuple[list[Alert], list[AuditRow], list[OutboxRow]] | None = None
        self._stale_watches: set[Watch] = set()
        self._escalating: set[Alert] = set()
        self._shelved: set[Alert] = set()
        self._reload: set[tuple[str, str]] = set()
        self._next_catalogue = 0.0
        self._catalogue: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._channel_rules: list[CompiledRule] = []
        self._closed = False
        self._running = False
        self._done = asyncio.Event()
        for kind in (ReadingsArrived, AgentStateChanged, InstrumentStateChanged, StandardEvaluated):
            hub.subscribe(kind, self._enqueue)

    def link_template(self) -> str | None:
        """Link to an alert in notifications (``{id}`` is replaced)."""
        if self.config.link is not None:
            return self.config.link
        url = self.api_url()
        return None if url is None else f"{url}/api/v1/alerts/{{id}}"

    # -- start -----------------------------------------------------------------------------------

    async def open(self) -> None:
        """Read back alerts, rules, catalogue and undelivered notifications; evaluate the agent
        and instrument states the record store knows."""
        alerts = await self.records.run(load_alerts)
        pending = await self.records.run(load_open_outbox)  # before this start adds its own
        self.notifier.submit(pending)
        self.tracker.restore(alerts)
        await self._reconcile_rules()
        now = self.wall_ns()
        for alert in alerts:
            if alert.state == ACTIVE and self._policy(alert) is not None:
                self._escalating.add(alert)
            if alert.shelved_until_ns is not None:
                self._shelved.add(alert)
        await self._load_catalogue()
        for row in await self.records.query("SELECT site, agent, state, reason FROM agents"):
            self._agent(row["site"], row["agent"], row["state"], row["reason"], now)
        for row in await self.records.query(
            "SELECT site, agent, instrument, state, reason FROM instrument_states"
        ):
            self._instrument(
                row["site"], row["agent"], row["instrument"], row["state"], row["reason"], now
            )
        self._check_unresolved(None)
        self._retire_orphans(now)
        await self._flush()
        log_event(
            log,
            logging.INFO,
            "alerts started",
            rules=len(self.rules),
            open_alerts=sum(1 for a in alerts if a.state in OPEN_STATES),
            undelivered=len(pending),
        )

    async def _reconcile_rules(self) -> None:
        """The rules in force: the config's, except API changes made since the config last
        changed that rule; every difference from the last run is audited (before and after)."""
        stored = await self.records.run(load_rules)
        now = self.wall_ns()
        upserts: list[tuple[str, dict[str, Any], str, str | None, int, str]] = []
        deletes: list[str] = []
        audits: list[AuditRow] = []
        in_force: dict[str, RuleInForce] = {}
        for rule in self.config.rules:
            digest, definition = rule_hash(rule), rule_definition(rule)
            old = stored.pop(rule.id, None)
            if old is not None and old["source"] == "api" and old["config_hash"] == digest:
                try:
                    kept = RULE.validate_python(old["definition"])
                except ValidationError:
                    kept = None
                if kept is not None:
                    in_force[rule.id] = RuleInForce(
                        kept, "api", digest, old["updated_ns"], old["updated_by"]
                    )
                    continue
            in_force[rule.id] = RuleInForce(rule, "config", digest, now, "config")
            if old is None or old["definition"] != definition:
                action = "alert rule added" if old is None else "alert rule changed"
                audits.append(
                    self._rule_audit(
                        now,
                        "config",
                        action,
                        rule.id,
                        old and old["definition"],
                        definition,
                        "the gateway config file",
                    )
                )
                upserts.append((rule.id, definition, "config", digest, now, "config"))
            elif old["source"] != "config":
                upserts.append((rule.id, definition, "config", digest, now, "config"))
            else:
                in_force[rule.id].updated_ns = old["updated_ns"]
        for rule_id, old in stored.items():
            if old["source"] == "api" and old["config_hash"] is None:
                try:
                    in_force[rule_id] = RuleInForce(
                        RULE.validate_python(old["definition"]),
                        "api",
                        None,
                        old["updated_ns"],
                        old["updated_by"],
                    )
                    continue
                except ValidationError:
                    pass
            deletes.append(rule_id)
            audits.append(
                self._rule_audit(
                    now,
                    "config",
                    "alert rule removed",
                    rule_id,
                    old["definition"],
                    None,
                    "the gateway config file",
                )
            )
        if upserts or deletes or audits:
            await self.records.run(
                functools.partial(save_rules, upserts=upserts, deletes=deletes, audits=audits)
            )
        self.rules_in_force = in_force
        self._compile()

    def _rule_audit(
        self,
        now: int,
        actor: str,
        action: str,
        rule_id: str,
        before: Any,
        after: Any,
        comment: str | None,
    ) -> AuditRow:
        return AuditRow(
            now,
            actor,
            action,
            f"alert-rule:{rule_id}",
            {"rule": rule_id, "before": before, "after": after, "comment": comment},
        )

    def _compile(self) -> None:
        schedules = {s.id: s for s in self.config.schedules}
        now = self.wall_ns()
        compiled: dict[str, CompiledRule] = {}
        for rule_id, entry in self.rules_in_force.items():
            rule = entry.rule
            if not rule.enabled:
                continue
            if rule.kind in CHANNEL_KINDS:
                patterns = rule.channels
            elif rule.kind == "agent_offline":
                patterns = rule.agents
            elif rule.kind == "instrument_unavailable":
                patterns = rule.instruments
            else:
                patterns = rule.standards
            schedule = schedules.get(rule.schedule) if rule.schedule else None
            previous = self.rules.get(rule_id)
            in_schedule = schedule.active(now) if schedule is not None else True
            if previous is not None and previous.schedule is schedule:
                in_schedule = previous.in_schedule  # the tick audits the change
            compiled[rule_id] = CompiledRule(rule, PathMatcher(patterns), schedule, in_schedule)
        self.rules = compiled
        self._channel_rules = [r for r in compiled.values() if r.kind in CHANNEL_KINDS]
        for key in self.watches:
            for watch in self._watches_of(key):
                self._attach(watch)

    # -- catalogue and watches -------------------------------------------------------------------

    async def _load_catalogue(self, agent: tuple[str, str] | None = None) -> None:
        """Channels of the agents' latest birth messages (older rows are channels since removed)."""
        sql = (
            "SELECT site, agent, instrument, channel, unit, interval_s, tags FROM channels c "
            "WHERE updated_ns = (SELECT MAX(updated_ns) FROM channels d "
            "WHERE d.site = c.site AND d.agent = c.agent)"
        )
        params: tuple[str, ...] = ()
        if agent is not None:
            sql += " AND site = ? AND agent = ?"
            params = agent
        rows = await self.records.query(sql, params)
        declared: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for row in rows:
            key = (row["site"], row["agent"])
            declared.setdefault(key, set()).add((row["instrument"], row["channel"]))
            watch = self._watch(row["site"], row["agent"], row["instrument"], row["channel"])
            tags = json.loads(row["tags"])
            changed = tags != watch.tags or not watch.declared
            watch.unit, watch.interval_s, watch.tags = row["unit"], row["interval_s"], tags
            watch.declared = True
            if changed:
                self._attach(watch)
        for key, names in declared.items():
            for watch in self._watches_of(key):
                if (watch.instrument, watch.channel) not in names and watch.declared:
                    watch.declared = False
                    self._attach(watch)
        self._catalogue = declared if agent is None else {**self._catalogue, **declared}

    def _watch(self, site: str, agent: str, instrument: str, channel: str) -> Watch:
        per_instrument = self.watches.setdefault((site, agent), {}).setdefault(instrument, {})
        watch = per_instrument.get(channel)
        if watch is None:
            watch = Watch(site, agent, instrument, channel)
            watch.seen = self.monotonic()
            per_instrument[channel] = watch
            self._attach(watch)
        return watch

    def _watches_of(self, agent: tuple[str, str], instrument: str | None = None) -> list[Watch]:
        """The watches of an agent (of one of its instruments)."""
        per_agent = self.watches.get(agent, {})
        if instrument is not None:
            return list(per_agent.get(instrument, {}).values())
        return [w for per_instrument in per_agent.values() for w in per_instrument.values()]

    def _attach(self, watch: Watch) -> None:
        """(Re)build the checks of every rule that covers the channel."""
        numeric: list[Any] = []
        quality: list[BadQualityCheck] = []
        stale: list[StaleCheck] = []
        path = watch.path
        for rule in self._channel_rules:
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
        watch.numeric, watch.quality, watch.stale = numeric, quality, stale
        watch.settle()
        if stale:
            self._stale_watches.add(watch)
        else:
            self._stale_watches.discard(watch)

    def _check_unresolved(self, agent: tuple[str, str] | None) -> None:
        """Rules naming (without wildcards) a channel its agent does not declare."""
        now = self.wall_ns()
        for rule in self._channel_rules:
            for pattern in rule.config.channels:
                if has_wildcard(pattern):
                    continue
                site, agent_id, instrument, channel = pattern.split("/")
                if agent is not None and (site, agent_id) != agent:
                    continue
                names = self._catalogue.get((site, agent_id))
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
                alert = self.tracker.alert(
                    key,
                    rule_id=rule.id,
                    kind="rule_unresolved",
                    site=site,
                    subject=pattern,
                    level="unresolved",
                    severity="warning",
                    clock=GATEWAY_CLOCK,
                )
                alert.value = None
                self.tracker.update(alert, missing, now, 0, 0, {"ts": now})

    # -- events ----------------------------------------------------------------------------------

    def _enqueue(self, event: object) -> None:
        if self._closed:
            return
        if len(self._queue) >= QUEUE_MAX and type(event) is ReadingsArrived:
            # Evaluation has fallen far behind (it costs a fraction of ingest, so only a stalled
            # record store does this): drop readings, never states, and say so.
            self.stats.batches_dropped += 1
            if self.stats.batches_dropped in (1, 10, 100) or self.stats.batches_dropped % 1000 == 0:
                log_event(
                    log,
                    logging.ERROR,
                    "alert evaluation behind, readings not evaluated",
                    batches_dropped=self.stats.batches_dropped,
                    queued=len(self._queue),
                )
            return
        self._queue.append(event)
        self._wake.set()

    def _process(self) -> None:
        queue = self._queue
        while queue:
            event = queue.popleft()
            self.stats.events += 1
            try:
                self._dispatch(event)
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop evaluation
                self.stats.evaluation_errors += 1
                log_event(
                    log,
                    logging.ERROR,
                    "alert evaluation failed",
                    kind=type(event).__name__,
                    reason=f"{type(exc).__name__}: {exc}",
                )

    def _dispatch(self, event: object) -> None:
        if type(event) is ReadingsArrived:
            self._readings(event.site, event.agent, event.readings)
        elif isinstance(event, AgentStateChanged):
            self._agent(event.site, event.agent, event.state, event.reason, self.wall_ns())
            if event.state == "online":
                self._reload.add((event.site, event.agent))
        elif isinstance(event, InstrumentStateChanged):
            self._instrument(
                event.site,
                event.agent,
                event.instrument,
                event.state,
                event.reason,
                self.wall_ns(),
            )
        elif isinstance(event, StandardEvaluated):
            self._standard(event)

    def _readings(self, site: str, agent: str, readings: list[WireReading]) -> None:
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
                watch = self._watch(site, agent, reading["instrument"], reading["channel"])
                watch.unit = reading["unit"]
            ts = reading["ts"]
            if ts <= watch.last_ts:
                continue  # redelivered or out of order: already judged
            watch.last_ts = ts  # the tick turns a new last_ts into "heard at" for stale data
            try:
                if (
                    ts < watch.until
                    and reading["quality"] != "bad"
                    and watch.lo <= reading["value"] <= watch.hi  # type: ignore[operator]
                ):
                    continue
            except TypeError:
                pass  # text where a number was expected: judged (and marked) below
            self._judge(watch, reading, ts)
        self.stats.readings_evaluated += len(readings)

    def _judge(self, watch: Watch, reading: WireReading, ts: int) -> None:
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

    def _rules_of(self, kind: str) -> list[CompiledRule]:
        return [r for r in self.rules.values() if r.kind == kind]

    def _agent(self, site: str, agent: str, state: str, reason: str | None, now: int) -> None:
        previous = self.agent_state.get((site, agent))
        self.agent_state[(site, agent)] = state
        if state == "online" and previous == "offline":
            for watch in self._watches_of((site, agent)):
                watch.seen = self.monotonic()  # its channels' clocks restart with it
        path = f"{site}/{agent}"
        for rule in self._rules_of("agent_offline"):
            if rule.covers(path, {}):
                self._state_alert(
                    rule, site, path, state == "offline", now, {"state": state, "reason": reason}
                )

    def _instrument(
        self, site: str, agent: str, instrument: str, state: str, reason: str | None, now: int
    ) -> None:
        self.instrument_state[(site, agent, instrument)] = state
        if state == "connected":
            for watch in self._watches_of((site, agent), instrument):
                watch.seen = self.monotonic()
        path = f"{site}/{agent}/{instrument}"
        for rule in self._rules_of("instrument_unavailable"):
            if rule.covers(path, {}):
                self._state_alert(
                    rule,
                    site,
                    path,
                    state == "unavailable",
                    now,
                    {"state": state, "reason": reason},
                )

    def _state_alert(
        self,
        rule: CompiledRule,
        site: str,
        subject: str,
        condition: bool,
        now: int,
        detail: dict[str, Any],
    ) -> None:
        severity = rule.config.severity
        key = f"{rule.id}|{subject}|{severity}"
        alert = self.tracker.alerts.get(key)
        if alert is None and not condition:
            return
        alert = self.tracker.alert(
            key,
            rule_id=rule.id,
            kind=rule.kind,
            site=site,
            subject=subject,
            level=severity,
            severity=severity,
            clock=GATEWAY_CLOCK,
        )
        if condition or alert.state in ACTIVE_STATES:
            alert.value = detail["state"]
            alert.detail = detail
        self.tracker.update(
            alert,
            condition,
            now,
            int(rule.config.on_delay_s * NS),
            int(rule.config.off_delay_s * NS),
            {"ts": now, **detail},
            rule.suppressed,
        )

    def _excused(self, watch: Watch) -> bool:
        """Whether a silent channel is already explained by an alerted agent or instrument."""
        agent = (watch.site, watch.agent)
        if self.agent_state.get(agent) == "offline":
            path = f"{watch.site}/{watch.agent}"
            if any(r.covers(path, {}) for r in self._rules_of("agent_offline")):
                return True
        if self.instrument_state.get((*agent, watch.instrument)) == "unavailable":
            path = f"{watch.site}/{watch.agent}/{watch.instrument}"
            if any(r.covers(path, {}) for r in self._rules_of("instrument_unavailable")):
                return True
        return False

    def _standard(self, event: StandardEvaluated) -> None:
        subject = f"{event.site}/{event.standard_id}"
        cause = {
            "ts": event.measured_ts_ns,
            "value": event.measured,
            "unit": event.unit,
            "u": event.measured_u,
        }
        for rule in self.rules.values():
            if rule.kind not in STANDARD_KINDS or not rule.covers(event.standard_id, {}):
                continue
            for level, severity, condition, value, limit, detail in self._standard_checks(
                rule, event
            ):
                if condition is None:
                    continue  # not known from this evaluation (no certificate, no fit...)
                key = f"{rule.id}|{subject}|{level}"
                if key not in self.tracker.alerts and not condition:
                    continue
                alert = self.tracker.alert(
                    key,
                    rule_id=rule.id,
                    kind=rule.kind,
                    site=event.site,
                    subject=subject,
                    level=level,
                    severity=severity,
                )
                if condition or alert.state in ACTIVE_STATES:
                    alert.value, alert.limit, alert.unit = value, limit, event.unit
                    alert.detail = detail
                self.tracker.update(
                    alert,
                    condition,
                    event.ts_ns,
                    int(rule.config.on_delay_s * NS),
                    int(rule.config.off_delay_s * NS),
                    cause,
                    rule.suppressed,
                )

    def _standard_checks(
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

    # -- timers ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.wall_ns()
        mono = self.monotonic()
        for rule in self.rules.values():
            if rule.schedule is None:
                continue
            active = rule.schedule.active(now)
            if active != rule.in_schedule:
                rule.in_schedule = active
                action = "alert rule in schedule" if active else "alert rule out of schedule"
                self._audits.append(
                    AuditRow(
                        now,
                        "gateway",
                        action,
                        f"alert-rule:{rule.id}",
                        {"rule": rule.id, "schedule": rule.schedule.id},
                    )
                )
                log_event(log, logging.INFO, action, rule=rule.id, schedule=rule.schedule.id)
        for watch in self._stale_watches:
            if watch.last_ts != watch.heard_ts:
                watch.heard_ts, watch.seen = watch.last_ts, mono
            age = mono - watch.seen
            excused = self._excused(watch)
            for check in watch.stale:
                check.check(age, now, excused)
        for alert in list(self.tracker.timed):
            owner = self.rules.get(alert.rule_id)
            self.tracker.advance(alert, now, owner.suppressed if owner is not None else None)
        for alert in list(self._shelved):
            if alert.shelved_until_ns is None:
                self._shelved.discard(alert)
            elif not alert.shelved(now):
                self.tracker.unshelve(alert, "gateway", "shelving time is up")
                self._shelved.discard(alert)
                if alert.state == ACTIVE:
                    self._escalating.add(alert)
        for alert in list(self._escalating):
            self._escalate(alert, now)

    def _policy(self, alert: Alert) -> Policy | None:
        entry = self.rules_in_force.get(alert.rule_id)
        return None if entry is None else self.config.policy_of(entry.rule)

    def _escalate(self, alert: Alert, now: int, snapshot: dict[str, Any] | None = None) -> None:
        """Notify the escalation levels that are due."""
        policy = self._policy(alert)
        if (
            policy is None
            or alert.state != ACTIVE
            or alert.raised_wall_ns is None
            or alert.shelved(now)
        ):
            self._escalating.discard(alert)
            return
        for index in range(alert.escalation_level + 1, len(policy.levels)):
            level = policy.levels[index]
            if alert.raised_wall_ns + int(level.after_s * NS) > now:
                break
            event = "raised" if index == 0 else "escalated"
            at = alert.active_since_ns if index == 0 else now
            self._notify(
                alert,
                event,
                level.recipients,
                index,
                at or now,
                after_s=level.after_s,
                snapshot=snapshot,
            )
            self.tracker.escalated(alert, index, level.recipients)
        if alert.escalation_level >= len(policy.levels) - 1:
            self._escalating.discard(alert)
        else:
            self._escalating.add(alert)

    def view(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """An alert as the outside sees it (AlertView)."""
        out = {k: v for k, v in snapshot.items() if k in VIEW_FIELDS}
        english = describe(snapshot, "en")
        out["message"] = english
        out["messages"] = {"en": english, "vi": describe(snapshot, "vi")}
        return out

    def limits_for(
        self, site: str, agent: str, instrument: str, channel: str, tags: dict[str, str]
    ) -> tuple[float | None, float | None] | None:
        """The band inside which no limits rule raises anything for this channel (the
        innermost of its enabled rules' levels), or None when no limits rule watches it."""
        path = f"{site}/{agent}/{instrument}/{channel}"
        low: float | None = None
        high: float | None = None
        found = False
        for rule in self.rules.values():
            config = rule.config
            if not isinstance(config, LimitsRule) or not config.enabled:
                continue
            if not rule.covers(path, tags):
                continue
            found = True
            for level in config.levels:
                if level.low is not None:
                    low = level.low if low is None else max(low, level.low)
                if level.high is not None:
                    high = level.high if high is None else min(high, level.high)
        return (low, high) if found else None

    def _notify(
        self,
        alert: Alert,
        event: str,
        recipients: list[str],
        level: int,
        at_ns: int,
        *,
        after_s: float = 0.0,
        actor: str | None = None,
        comment: str | None = None,
        snapshot: dict[str, Any] | None = None,
    ) -> None:
        view = self.view(snapshot if snapshot is not None else alert.to_dict())
        now = self.wall_ns()
        by_id = self.notifier.recipients
        for recipient_id in recipients:
            recipient = by_id.get(recipient_id)
            if recipient is None:
                continue
            payload = {
                "event": event,
                "at_ns": at_ns,
                "escalation_level": level,
                "after_s": after_s,
                "actor": actor,
                "comment": comment,
                "alert": view,
            }
            if recipient.email is not None:
                self._outbox.append(OutboxRow("email", recipient_id, alert.id, payload, now))
            if recipient.webhook is not None:
                self._outbox.append(OutboxRow("webhook", recipient_id, alert.id, payload, now))

    def _route(self, change: Change) -> None:
        """What a change sends: its MQTT event and state, notifications, escalation."""
        alert, snapshot = change.alert, change.snapshot
        if self.config.mqtt.enabled:
            view = self.view(snapshot)
            event = {
                "schema": MQTT_EVENT_SCHEMA,
                "action": change.action,
                "previous": change.previous,
                "ts": change.wall_ns,
                "at_ns": change.at_ns,
                "actor": change.actor,
                "comment": change.comment,
                "cause": change.cause,
                "alert": view,
            }
            state = {"schema": MQTT_STATE_SCHEMA, "ts": change.wall_ns, "alert": view}
            self._outbox.append(
                OutboxRow(
                    "mqtt",
                    alert.site,
                    alert.id,
                    {"event_message": event, "state_message": state},
                    change.wall_ns,
                )
            )
        same_occurrence = alert.occurrences == snapshot["occurrences"]
        now = self.wall_ns()
        if change.action == "alert active":
            if same_occurrence and alert.state == ACTIVE:
                self._escalate(alert, now)
            elif not alert.shelved(now):
                # Raised and gone again within one turn: still tell level 0 it happened.
                policy = self._policy(alert)
                if policy is not None and policy.levels[0].after_s == 0:
                    self._notify(
                        alert,
                        "raised",
                        policy.levels[0].recipients,
                        0,
                        snapshot["active_since_ns"] or now,
                        snapshot=snapshot,
                    )
                    if same_occurrence:
                        self.tracker.escalated(alert, 0, policy.levels[0].recipients)
            return
        policy = self._policy(alert)
        if policy is None or alert.shelved(now):
            return
        level = alert.escalation_level if same_occurrence else snapshot["escalation_level"]
        notified = [r for lv in policy.levels[: level + 1] for r in lv.recipients]
        if not notified:
            return
        if change.action in ("alert returned", "alert normal") and change.previous in ACTIVE_STATES:
            if policy.notify_cleared:
                self._notify(
                    alert,
                    "cleared",
                    list(dict.fromkeys(notified)),
                    level,
                    snapshot["cleared_ns"] or now,
                    snapshot=snapshot,
                )
            self._escalating.discard(alert)
        elif change.action == "alert acknowledged":
            if policy.notify_acknowledged:
                self._notify(
                    alert,
                    "acknowledged",
                    list(dict.fromkeys(notified)),
                    level,
                    change.wall_ns,
                    actor=change.actor,
                    comment=change.comment,
                    snapshot=snapshot,
                )
            self._escalating.discard(alert)

    def _audit_row(self, change: Change) -> AuditRow:
        snapshot = change.snapshot
        details = {
            "key": snapshot["key"],
            "rule": snapshot["rule_id"],
            "kind": snapshot["kind"],
            "subject": snapshot["subject"],
            "level": snapshot["level"],
            "severity": snapshot["severity"],
            "from": change.previous,
            "to": snapshot["state"],
            "at_ns": change.at_ns,
            "value": snapshot["value"],
            "unit": snapshot["unit"],
            "limit": snapshot["limit"],
            "detail": snapshot["detail"],
            "message": describe(snapshot, "en"),
            "reading": change.cause,
            "comment": change.comment,
            **change.extra,
        }
        return AuditRow(
            change.wall_ns, change.actor, change.action, f"alert:{snapshot['id']}", details
        )

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Evaluate and notify until :meth:`close` (or cancellation)."""
        self._running = True
        notifier = asyncio.create_task(self.notifier.run(), name="alerts-notify")
        try:
            next_tick = self.monotonic() + self.config.tick_s
            while not self._closed:
                if not self._queue:
                    timeout = max(0.0, next_tick - self.monotonic())
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await self._wake.wait()
                self._wake.clear()
                self.stats.queue_depth = len(self._queue)
                self._process()
                if self._reload:
                    for agent in list(self._reload):
                        self._reload.discard(agent)
                        await self._load_catalogue(agent)
                        self._check_unresolved(agent)
                now = self.monotonic()
                if now >= next_tick:
                    try:
                        self._tick()
                    except Exception as exc:  # noqa: BLE001 - timers go on at the next tick
                        self.stats.evaluation_errors += 1
                        log_event(
                            log,
                            logging.ERROR,
                            "alert timers failed",
                            reason=f"{type(exc).__name__}: {exc}",
                        )
                    next_tick = now + self.config.tick_s
                    if now >= self._next_catalogue:
                        self._next_catalogue = now + CATALOGUE_REFRESH_S
                        if self._catalogue:
                            await self._load_catalogue()
                            self._check_unresolved(None)
                await self._flush()
            self._process()
            await self._flush(everything=True)
            await self.notifier.close()
        finally:
            if not notifier.done():
                notifier.cancel()
            await asyncio.wait([notifier])
            self._done.set()

    async def close(self) -> None:
        """Evaluate what is queued, write everything, let deliveries in progress finish."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._running:
            await self._done.wait()
        else:
            await self._flush(everything=True)
            await self.notifier.close()

    async def _flush(self, everything: bool = False) -> None:
        """Write what changed (one transaction), then hand notifications to the notifier."""
        async with self._lock:
            changes, dirty = self.tracker.take()
            for change in changes:
                self._route(change)
            more, more_dirty = self.tracker.take()
            for change in more:
                self._route(change)
            changes += more
            alerts = {a.id: a for a in dirty + more_dirty}
            if everything:  # keep the latest values of open alerts
                alerts.update(
                    {
                        a.id: a
                        for a in self.tracker.alerts.values()
                        if a.state in OPEN_STATES or a.condition
                    }
                )
            audits = [self._audit_row(c) for c in changes] + self._audits
            outbox, self._audits, self._outbox = self._outbox, [], []
            if self._retry is not None:
                old_alerts, old_audits, old_outbox = self._retry
                self._retry = None
                alerts = {a.id: a for a in old_alerts} | alerts
                audits, outbox = old_audits + audits, old_outbox + outbox
            if not (alerts or audits or outbox):
                return
            batch = list(alerts.values())
            try:
                await self.records.run(
                    functools.partial(write_batch, alerts=batch, audits=audits, outbox=outbox)
                )
            except StoreError as exc:
                self.stats.flush_errors += 1
                self._retry = (batch, audits, outbox)
                log_event(log, logging.ERROR, "alerts not written, will retry", reason=str(exc))
                return
            self.stats.flushes += 1
            self.stats.changes += len(changes)
            for change in changes:
                if change.alert.shelved_until_ns is not None:
                    self._shelved.add(change.alert)
            self._log_changes(changes)
        self.notifier.submit(outbox)

    def _log_changes(self, changes: list[Change]) -> None:
        """One line per change; a flood (many alerts at once) is one line with the counts."""
        if len(changes) > LOG_EACH_UP_TO:
            counts: dict[str, int] = {}
            for change in changes:
                counts[change.action] = counts.get(change.action, 0) + 1
            log_event(
                log,
                logging.WARNING,
                "many alerts changed at once",
                total=len(changes),
                **{k.replace("alert ", "").replace(" ", "_"): v for k, v in counts.items()},
            )
            return
        for change in changes:
            level = logging.INFO if change.action != "alert pending" else logging.DEBUG
            log_event(
                log,
                level,
                change.action,
                id=change.alert.id,
                key=change.alert.key,
                actor=change.actor,
            )

    # -- operators (the API) ---------------------------------------------------------------------

    def get(self, alert_id: int) -> Alert:
        """An alert by id; raises AlertNotFound."""
        alert = self.tracker.by_id.get(alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id}")
        return alert

    def list_alerts(self, include_normal: bool = False) -> list[dict[str, Any]]:
        """Alerts as AlertView dicts, newest first; by default those not back to normal."""
        alerts = [
            a
            for a in self.tracker.by_id.values()
            if include_normal or a.state in OPEN_STATES or a.suppressed is not None
        ]
        alerts.sort(key=lambda a: a.updated_ns, reverse=True)
        return [self.view(a.to_dict()) for a in alerts]

    def _text(self, text: str | None, what: str, required: bool) -> str | None:
        cleaned = (text or "").strip()
        if len(cleaned) > COMMENT_MAX:
            raise InvalidAlertInput(f"the {what} is longer than {COMMENT_MAX} characters")
        if required and not cleaned:
            raise InvalidAlertInput(f"a {what} is required")
        return cleaned or None

    async def acknowledge(self, alert_id: int, actor: str, comment: str | None) -> dict[str, Any]:
        """Acknowledge (with a comment when ``alerts.ack.comment_required``)."""
        alert = self.get(alert_id)
        text = self._text(comment, "comment", self.config.ack.comment_required)
        self.tracker.acknowledge(alert, actor, text)
        await self._flush()
        return self.view(alert.to_dict())

    async def comment(self, alert_id: int, actor: str, comment: str) -> dict[str, Any]:
        """Add a comment to the alert's audit trail."""
        alert = self.get(alert_id)
        text = self._text(comment, "comment", True)
        assert text is not None
        self.tracker.comment(alert, actor, text)
        await self._flush()
        return self.view(alert.to_dict())

    async def shelve(
        self, alert_id: int, actor: str, duration_s: float, reason: str
    ) -> dict[str, Any]:
        """Shelve for at most ``alerts.shelve.max_s``, with a reason."""
        alert = self.get(alert_id)
        limit = self.config.shelve.max_s
        if not 0 < duration_s <= limit:
            raise InvalidAlertInput(
                f"shelving lasts more than 0 s and at most {limit:g} s (alerts.shelve.max_s)"
            )
        text = self._text(reason, "reason", True)
        assert text is not None
        self.tracker.shelve(alert, actor, self.wall_ns() + int(duration_s * NS), text)
        self._shelved.add(alert)
        self._escalating.discard(alert)
        await self._flush()
        return self.view(alert.to_dict())

    async def unshelve(self, alert_id: int, actor: str, comment: str | None) -> dict[str, Any]:
        """End shelving now; an alert still active is notified again from the first level."""
        alert = self.get(alert_id)
        text = self._text(comment, "comment", False)
        self.tracker.unshelve(alert, actor, text)
        self._shelved.discard(alert)
        if alert.state == ACTIVE:
            self._escalate(alert, self.wall_ns())
        await self._flush()
        return self.view(alert.to_dict())

    async def history(self, alert_id: int) -> list[dict[str, Any]]:
        """The alert's audit trail, oldest first."""
        self.get(alert_id)
        rows = await self.records.query(
            "SELECT id, ts_ns, actor, action, details FROM audit_log WHERE subject = ? ORDER BY id",
            (f"alert:{alert_id}",),
        )
        return [{**row, "details": json.loads(row["details"])} for row in rows]

    def rules_view(self) -> list[dict[str, Any]]:
        """The rules in force, where each came from, and channels they name that are unknown."""
        out = []
        for rule_id, entry in sorted(self.rules_in_force.items()):
            compiled = self.rules.get(rule_id)
            out.append(
                {
                    "id": rule_id,
                    "kind": entry.rule.kind,
                    "enabled": entry.rule.enabled,
                    "source": entry.source,
                    "updated_ns": entry.updated_ns,
                    "updated_by": entry.updated_by,
                    "in_schedule": compiled.in_schedule if compiled is not None else None,
                    "unresolved_channels": sorted(
                        p for p, rules in self.unresolved.items() if rule_id in rules
                    ),
                    "definition": rule_definition(entry.rule),
                }
            )
        return out

    async def rule_history(self, rule_id: str) -> list[dict[str, Any]]:
        """Audited changes of one rule, oldest first."""
        rows = await self.records.query(
            "SELECT id, ts_ns, actor, action, details FROM audit_log WHERE subject = ? ORDER BY id",
            (f"alert-rule:{rule_id}",),
        )
        return [{**row, "details": json.loads(row["details"])} for row in rows]

    async def put_rule(
        self, rule_id: str, definition: dict[str, Any], actor: str, comment: str | None
    ) -> dict[str, Any]:
        """Add or replace a rule (an admin's change); audited with before and after. It stays
        in force across restarts until the config file changes that rule."""
        if definition.get("id", rule_id) != rule_id:
            raise InvalidAlertInput(f"the body's id {definition.get('id')!r} is not {rule_id!r}")
        try:
            rule = RULE.validate_python({**definition, "id": rule_id})
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise InvalidAlertInput(f"invalid rule: {reasons}") from None
        policies = {p.id for p in self.config.policies}
        schedules = {s.id for s in self.config.schedules}
        if rule.policy is not None and rule.policy not in policies:
            raise InvalidAlertInput(f"unknown policy {rule.policy!r}")
        if rule.schedule is not None and rule.schedule not in schedules:
            raise InvalidAlertInput(f"unknown schedule {rule.schedule!r}")
        text = self._text(comment, "comment", False)
        after = rule_definition(rule)
        old = self.rules_in_force.get(rule_id)
        before = rule_definition(old.rule) if old is not None else None
        if before == after:
            return self._rule_entry(rule_id)
        configured = next((r for r in self.config.rules if r.id == rule_id), None)
        digest = rule_hash(configured) if configured is not None else None
        now = self.wall_ns()
        audit = self._rule_audit(
            now,
            actor,
            "alert rule added" if old is None else "alert rule changed",
            rule_id,
            before,
            after,
            text,
        )
        await self.records.run(
            functools.partial(
                save_rules,
                upserts=[(rule_id, after, "api", digest, now, actor)],
                deletes=[],
                audits=[audit],
            )
        )
        self.rules_in_force[rule_id] = RuleInForce(rule, "api", digest, now, actor)
        self._compile()
        self._retire_orphans(now)
        self._check_unresolved(None)
        await self._flush()
        return self._rule_entry(rule_id)

    def _rule_entry(self, rule_id: str) -> dict[str, Any]:
        return next(r for r in self.rules_view() if r["id"] == rule_id)

    def _retire_orphans(self, now: int) -> None:
        """Alerts no rule in force evaluates any more (rule removed, disabled, or no longer
        covering their subject or level) clear; they stay listed until acknowledged."""
        for alert in list(self.tracker.alerts.values()):
            if not alert.condition and alert.idle:
                continue
            rule = self.rules.get(alert.rule_id)
            if rule is None:
                reason = "rule removed or disabled"
            elif alert.kind in CHANNEL_KINDS and not self._covered(rule, alert):
                reason = "rule no longer covers this channel or level"
            else:
                continue
            self.tracker.update(
                alert, False, max(now, alert.last_event_ns), 0, 0, {"ts": now, "reason": reason}
            )

    def _covered(self, rule: CompiledRule, alert: Alert) -> bool:
        site, agent, instrument, channel = alert.subject.split("/")
        watch = self.watches.get((site, agent), {}).get(instrument, {}).get(channel)
        if not rule.covers(alert.subject, watch.tags if watch is not None else {}):
            return False
        if alert.kind == "limits":
            return any(level.severity == alert.level for level in rule.config.levels)
        return bool(rule.config.severity == alert.level)

    def snapshot_stats(self) -> dict[str, Any]:
        """Counters of evaluation and delivery."""
        return {
            **asdict(self.stats),
            **asdict(self.notifier.stats),
            "alerts_open": sum(1 for a in self.tracker.by_id.values() if a.state in OPEN_STATES),
        }
