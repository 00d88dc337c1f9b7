"""The gateway's alert engine: a thin facade over its parts.

- :mod:`~gateway.alerts.rules` — the rules in force (config reconciled with API changes), CRUD;
- :mod:`~gateway.alerts.evaluator` — watches and the evaluation of events;
- :mod:`~gateway.alerts.timers` — schedules, stale data, delays, shelving, escalation;
- :mod:`~gateway.alerts.router` and :mod:`~gateway.alerts.outbox` — what a change sends;
- :mod:`~gateway.alerts.store` — the SQL of the alert tables.

This module owns the event queue, the loop, the one write per turn, and the operator methods.

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
clock starts when the gateway does, and silence is judged only up to what the gateway has
heard (see :mod:`~gateway.alerts.timers`): not before the broker's backlog is read.

Longer than 500 lines on purpose: the event queue, the loop, the one write per turn and the
operator methods share the engine's lock and retry state; apart, they would share it across
modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from core.errors import StoreError
from core.logs import log_event
from core.mqtt import MqttLink
from edge_agent.wire import Topics
from gateway.alerts.checks import NS, CompiledRule, Watch
from gateway.alerts.config import AlertsConfig
from gateway.alerts.evaluator import Evaluator
from gateway.alerts.lifecycle import (
    ACTIVE,
    OPEN_STATES,
    Alert,
    AlertNotFound,
    Change,
    InvalidAlertInput,
    Tracker,
)
from gateway.alerts.notify import AlertStats, Notifier
from gateway.alerts.outbox import Outbox
from gateway.alerts.router import Router
from gateway.alerts.rules import RuleBook, RuleInForce
from gateway.alerts.store import (
    AuditRow,
    OutboxRow,
    audit_trail,
    load_agent_states,
    load_alerts,
    load_instrument_states,
    load_open_outbox,
    write_batch,
)
from gateway.alerts.timers import Timers
from gateway.config import GatewayConfig
from gateway.ingest.events import (
    AgentStateChanged,
    EventHub,
    Heard,
    InstrumentStateChanged,
    ReadingsArrived,
    RecordsVerified,
    StandardEvaluated,
)
from gateway.records.store import RecordStore

log = logging.getLogger("etalon.gateway.alerts")

COMMENT_MAX = 2000
CATALOGUE_REFRESH_S = 60.0
QUEUE_MAX = 20_000
"""Events queued for evaluation beyond which reading batches are dropped (and counted)."""
LOG_EACH_UP_TO = 20
"""Changes logged one by one per write; more are summarised in one line."""


class AlertEngine:
    """See the module doc. ``wall_ns`` and ``monotonic`` are the engine's clocks; its parts read
    them through the engine, so a test may move them. ``watermarked``: ingest probes the broker
    (:meth:`Ingest.probe`) and stale data is judged up to its :class:`Heard` events only."""

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
        watermarked: bool = False,
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
        self.stats = AlertStats()
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
            stats=self.stats,
        )

        def clock() -> int:
            return self.wall_ns()

        def mono() -> float:
            return self.monotonic()

        self.rulebook = RuleBook(self.config, records, clock)
        self.evaluator = Evaluator(self.rulebook, self.tracker, records, clock, mono)
        self.rulebook.on_compiled = self.evaluator.attach_all
        self.outbox = Outbox(self.notifier.recipients, clock)
        self.timers = Timers(
            self.rulebook,
            self.evaluator,
            self.tracker,
            self.outbox,
            clock,
            mono,
            watermarked=watermarked,
        )
        self.router = Router(
            self.rulebook,
            self.tracker,
            self.outbox,
            self.timers,
            clock,
            mqtt=self.config.mqtt.enabled,
        )
        self._queue: deque[object] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._retry: tuple[list[Alert], list[AuditRow], list[OutboxRow]] | None = None
        self._reload: set[tuple[str, str]] = set()
        self._next_catalogue = 0.0
        self._closed = False
        self._running = False
        self._done = asyncio.Event()
        for kind in (
            ReadingsArrived,
            AgentStateChanged,
            InstrumentStateChanged,
            StandardEvaluated,
            RecordsVerified,
            Heard,
        ):
            hub.subscribe(kind, self._enqueue)

    @property
    def rules(self) -> dict[str, CompiledRule]:
        """The compiled rules in force, by id."""
        return self.rulebook.rules

    @property
    def rules_in_force(self) -> dict[str, RuleInForce]:
        """The rules in force with where each came from, by id."""
        return self.rulebook.rules_in_force

    @property
    def watches(self) -> dict[tuple[str, str], dict[str, dict[str, Watch]]]:
        """The channels watched, (site, agent) → instrument → channel."""
        return self.evaluator.watches

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
        await self.rulebook.reconcile()
        now = self.wall_ns()
        for alert in alerts:
            if alert.state == ACTIVE and self.rulebook.policy(alert) is not None:
                self.timers.escalating.add(alert)
            if alert.shelved_until_ns is not None:
                self.timers.shelved.add(alert)
        await self.evaluator.load_catalogue()
        for row in await self.records.run(load_agent_states):
            self.evaluator.agent(row["site"], row["agent"], row["state"], row["reason"], now)
        for row in await self.records.run(load_instrument_states):
            self.evaluator.instrument(
                row["site"], row["agent"], row["instrument"], row["state"], row["reason"], now
            )
        self.evaluator.check_unresolved(None)
        self.evaluator.retire_orphans(now)
        await self._flush()
        log_event(
            log,
            logging.INFO,
            "alerts started",
            rules=len(self.rulebook.rules),
            open_alerts=sum(1 for a in alerts if a.state in OPEN_STATES),
            undelivered=len(pending),
        )

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
                self._failed("alert evaluation failed", exc, kind=type(event).__name__)
        self.stats.readings_evaluated = self.evaluator.readings_evaluated

    def _failed(self, what: str, exc: Exception, **fields: object) -> None:
        """An evaluation error: counted, logged with its reason, and evaluation goes on."""
        self.stats.evaluation_errors += 1
        log_event(log, logging.ERROR, what, **fields, reason=f"{type(exc).__name__}: {exc}")

    def _dispatch(self, event: object) -> None:
        if type(event) is ReadingsArrived:
            self.evaluator.readings(event.site, event.agent, event.readings)
        elif isinstance(event, AgentStateChanged):
            self.evaluator.agent(event.site, event.agent, event.state, event.reason, self.wall_ns())
            if event.state == "online":
                self._reload.add((event.site, event.agent))
        elif isinstance(event, InstrumentStateChanged):
            self.evaluator.instrument(
                event.site,
                event.agent,
                event.instrument,
                event.state,
                event.reason,
                self.wall_ns(),
            )
        elif isinstance(event, StandardEvaluated):
            self.evaluator.standard(event)
        elif isinstance(event, RecordsVerified):
            self.evaluator.records_verified(event)
        elif isinstance(event, Heard):
            self.timers.heard(event.sent)

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
                        await self.evaluator.load_catalogue(agent)
                        self.evaluator.check_unresolved(agent)
                now = self.monotonic()
                if now >= next_tick:
                    self._process()  # what was handed over while a catalogue was read
                    try:
                        self.timers.tick()
                    except Exception as exc:  # noqa: BLE001 - timers go on at the next tick
                        self._failed("alert timers failed", exc)
                    next_tick = now + self.config.tick_s
                    if now >= self._next_catalogue:
                        self._next_catalogue = now + CATALOGUE_REFRESH_S
                        if self.evaluator.catalogue:
                            await self.evaluator.load_catalogue()
                            self.evaluator.check_unresolved(None)
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
                self.router.route(change)
            more, more_dirty = self.tracker.take()
            for change in more:
                self.router.route(change)
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
            audits = [self.router.audit_row(c) for c in changes] + self.timers.take_audits()
            outbox = self.outbox.take()
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
                    self.timers.shelved.add(change.alert)
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

    # -- what the API reads ----------------------------------------------------------------------

    def view(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """An alert as the outside sees it (AlertView)."""
        return self.outbox.view(snapshot)

    def limits_for(
        self, site: str, agent: str, instrument: str, channel: str, tags: dict[str, str]
    ) -> tuple[float | None, float | None] | None:
        """See :meth:`RuleBook.limits_for`."""
        return self.rulebook.limits_for(site, agent, instrument, channel, tags)

    def rules_view(self) -> list[dict[str, Any]]:
        """The rules in force, where each came from, and channels they name that are unknown."""
        return self.rulebook.view(self.evaluator.unresolved)

    async def rule_history(self, rule_id: str) -> list[dict[str, Any]]:
        """Audited changes of one rule, oldest first."""
        return await self.rulebook.history(rule_id)

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
        self.timers.shelved.add(alert)
        self.timers.escalating.discard(alert)
        await self._flush()
        return self.view(alert.to_dict())

    async def unshelve(self, alert_id: int, actor: str, comment: str | None) -> dict[str, Any]:
        """End shelving now; an alert still active is notified again from the first level."""
        alert = self.get(alert_id)
        text = self._text(comment, "comment", False)
        self.tracker.unshelve(alert, actor, text)
        self.timers.shelved.discard(alert)
        if alert.state == ACTIVE:
            self.timers.escalate(alert, self.wall_ns())
        await self._flush()
        return self.view(alert.to_dict())

    async def history(self, alert_id: int) -> list[dict[str, Any]]:
        """The alert's audit trail, oldest first."""
        self.get(alert_id)
        return await self.records.run(functools.partial(audit_trail, subject=f"alert:{alert_id}"))

    async def put_rule(
        self, rule_id: str, definition: dict[str, Any], actor: str, comment: str | None
    ) -> dict[str, Any]:
        """Add or replace a rule (an admin's change); audited with before and after. It stays
        in force across restarts until the config file changes that rule."""
        rule = self.rulebook.validate(rule_id, definition)
        text = self._text(comment, "comment", False)
        if await self.rulebook.put(rule_id, rule, actor, text):
            self.evaluator.retire_orphans(self.wall_ns())
            self.evaluator.check_unresolved(None)
            await self._flush()
        return next(r for r in self.rules_view() if r["id"] == rule_id)

    def snapshot_stats(self) -> dict[str, Any]:
        """Counters of evaluation and delivery."""
        return {
            **self.stats.snapshot(),
            "alerts_open": sum(1 for a in self.tracker.by_id.values() if a.state in OPEN_STATES),
        }
