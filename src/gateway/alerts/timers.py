"""The alert engine's timers, run every ``alerts.tick_s``: schedules (a rule in or out of its
monitoring schedule, audited), stale data, delays on the gateway clock, the end of shelving, and
escalation (each level of an alert's policy notified when it is due).

Stale data is the channels' silence, never the gateway's own delay. A channel's age runs up to
the *horizon*: with a gateway's probe (``watermarked``), the time the latest probe that came back
was sent (:class:`~gateway.ingest.events.Heard`) — everything the broker took before it has been
evaluated — and nothing is judged before a first probe is back (at start: not before the broker's
backlog is read). Without one (an engine fed directly), now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from core.logs import log_event
from gateway.alerts.checks import NS
from gateway.alerts.evaluator import Evaluator
from gateway.alerts.lifecycle import ACTIVE, Alert, Tracker
from gateway.alerts.outbox import Outbox
from gateway.alerts.rules import RuleBook
from gateway.alerts.store import AuditRow

log = logging.getLogger("etalon.gateway.alerts")


@dataclass(eq=False)
class Timers:
    """See the module doc. ``escalating``: active alerts with levels still to notify;
    ``shelved``: alerts whose shelving ends on a tick; ``audits``: entries not yet written."""

    rulebook: RuleBook
    evaluator: Evaluator
    tracker: Tracker
    outbox: Outbox
    wall_ns: Callable[[], int]
    monotonic: Callable[[], float]
    _: KW_ONLY
    watermarked: bool = False
    heard_until: float | None = field(default=None, init=False)
    """Sending time of the latest probe back (see the module doc)."""
    escalating: set[Alert] = field(default_factory=set, init=False)
    shelved: set[Alert] = field(default_factory=set, init=False)
    audits: list[AuditRow] = field(default_factory=list, init=False)

    def take_audits(self) -> list[AuditRow]:
        """The audit entries queued since the last take."""
        audits, self.audits = self.audits, []
        return audits

    def heard(self, sent: float) -> None:
        """A probe sent at ``sent`` came back (see the module doc)."""
        if self.heard_until is None or sent > self.heard_until:
            self.heard_until = sent

    def tick(self) -> None:
        """One turn of the timers; see the module doc."""
        now = self.wall_ns()
        mono = self.monotonic()
        horizon = self.heard_until if self.watermarked else mono
        for rule in self.rulebook.rules.values():
            if rule.schedule is None:
                continue
            active = rule.schedule.active(now)
            if active != rule.in_schedule:
                rule.in_schedule = active
                action = "alert rule in schedule" if active else "alert rule out of schedule"
                self.audits.append(
                    AuditRow(
                        now,
                        "gateway",
                        action,
                        f"alert-rule:{rule.id}",
                        {"rule": rule.id, "schedule": rule.schedule.id},
                    )
                )
                log_event(log, logging.INFO, action, rule=rule.id, schedule=rule.schedule.id)
        for watch in self.evaluator.stale_watches:
            if watch.last_ts != watch.heard_ts:
                watch.heard_ts, watch.seen = watch.last_ts, mono
            if horizon is None:
                continue  # nothing is known to have been heard yet
            age = horizon - watch.seen
            excused = self.evaluator.excused(watch)
            for check in watch.stale:
                check.check(age, now, excused)
        for alert in list(self.tracker.timed):
            owner = self.rulebook.rules.get(alert.rule_id)
            self.tracker.advance(alert, now, owner.suppressed if owner is not None else None)
        for alert in list(self.shelved):
            if alert.shelved_until_ns is None:
                self.shelved.discard(alert)
            elif not alert.shelved(now):
                self.tracker.unshelve(alert, "gateway", "shelving time is up")
                self.shelved.discard(alert)
                if alert.state == ACTIVE:
                    self.escalating.add(alert)
        for alert in list(self.escalating):
            self.escalate(alert, now)

    def escalate(self, alert: Alert, now: int, snapshot: dict[str, Any] | None = None) -> None:
        """Notify the escalation levels that are due."""
        policy = self.rulebook.policy(alert)
        if (
            policy is None
            or alert.state != ACTIVE
            or alert.raised_wall_ns is None
            or alert.shelved(now)
        ):
            self.escalating.discard(alert)
            return
        for index in range(alert.escalation_level + 1, len(policy.levels)):
            level = policy.levels[index]
            if alert.raised_wall_ns + int(level.after_s * NS) > now:
                break
            event = "raised" if index == 0 else "escalated"
            at = alert.active_since_ns if index == 0 else now
            self.outbox.notify(
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
            self.escalating.discard(alert)
        else:
            self.escalating.add(alert)
