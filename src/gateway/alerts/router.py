"""Where each change of an alert goes: its MQTT event and retained state, the notifications of
its policy (raised, cleared, acknowledged), escalation, and its audit entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from gateway.alerts.lifecycle import ACTIVE, ACTIVE_STATES, Change, Tracker
from gateway.alerts.messages import describe
from gateway.alerts.outbox import Outbox
from gateway.alerts.payloads import MQTT_EVENT_SCHEMA, MQTT_STATE_SCHEMA
from gateway.alerts.rules import RuleBook
from gateway.alerts.store import AuditRow, OutboxRow
from gateway.alerts.timers import Timers


@dataclass(eq=False)
class Router:
    """See the module doc; ``mqtt``: whether alert events are published on MQTT."""

    rulebook: RuleBook
    tracker: Tracker
    outbox: Outbox
    timers: Timers
    wall_ns: Callable[[], int]
    _: KW_ONLY
    mqtt: bool

    def route(self, change: Change) -> None:
        """What a change sends: its MQTT event and state, notifications, escalation."""
        alert, snapshot = change.alert, change.snapshot
        if self.mqtt:
            view = self.outbox.view(snapshot)
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
            self.outbox.rows.append(
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
                self.timers.escalate(alert, now)
            elif not alert.shelved(now):
                # Raised and gone again within one turn: still tell level 0 it happened.
                policy = self.rulebook.policy(alert)
                if policy is not None and policy.levels[0].after_s == 0:
                    self.outbox.notify(
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
        policy = self.rulebook.policy(alert)
        if policy is None or alert.shelved(now):
            return
        level = alert.escalation_level if same_occurrence else snapshot["escalation_level"]
        notified = [r for lv in policy.levels[: level + 1] for r in lv.recipients]
        if not notified:
            return
        actor: str | None = None
        comment: str | None = None
        if change.action in ("alert returned", "alert normal") and change.previous in ACTIVE_STATES:
            notice, wanted, at_ns = "cleared", policy.notify_cleared, snapshot["cleared_ns"] or now
        elif change.action == "alert acknowledged":
            notice, wanted, at_ns = "acknowledged", policy.notify_acknowledged, change.wall_ns
            actor, comment = change.actor, change.comment
        else:
            return
        if wanted:
            self.outbox.notify(
                alert,
                notice,
                list(dict.fromkeys(notified)),
                level,
                at_ns,
                actor=actor,
                comment=comment,
                snapshot=snapshot,
            )
        self.timers.escalating.discard(alert)

    def audit_row(self, change: Change) -> AuditRow:
        """The audit entry of one change of an alert."""
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
