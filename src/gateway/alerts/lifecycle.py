"""The life of an alert: states, on/off delays, acknowledgement, shelving, suppression.

States (ISA-18.2 / IEC 62682 style)::

    normal ─condition─▶ pending ─on-delay─▶ active_unacknowledged ─ack─▶ active_acknowledged
      ▲                   │                        │ condition gone               │ condition gone
      └─condition gone────┘                        ▼ for off-delay                ▼ for off-delay
      ▲                                  returned_unacknowledged ─ack─▶ normal ◀──┘

An alert that clears before anyone acknowledged it stays listed (``returned_unacknowledged``)
until someone does; if its condition comes back (after its on-delay) it is active again.

Delays run on the alert's clock: reading time for rules fed by readings and by the standards
analytics (so a backlog replayed after an outage is judged as it happened, and simulated time
runs at its own pace), the gateway's clock for agent, instrument and stale-data rules.

Shelving hides an alert from notification and escalation for a bounded time (it is still
evaluated, audited and published); a rule out of its monitoring schedule does not raise, and the
alert is marked ``suppressed: schedule`` instead of being silently ignored.

Every change is a :class:`Change`; the engine writes each to the audit log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from core.errors import ConflictError, InvalidInputError, NotFoundError, OperationError
from core.i18n import load_table, register

register(load_table(__package__, "refusals.json"))  # the reasons of the errors below, in Vietnamese

NORMAL = "normal"
PENDING = "pending"
ACTIVE = "active_unacknowledged"
ACKED = "active_acknowledged"
RETURNED = "returned_unacknowledged"
STATES = (NORMAL, PENDING, ACTIVE, ACKED, RETURNED)
ACTIVE_STATES = (ACTIVE, ACKED)
OPEN_STATES = (PENDING, ACTIVE, ACKED, RETURNED)
"""States an alert is listed in by default."""

EVENT_CLOCK = "event"
GATEWAY_CLOCK = "gateway"


class AlertOperationError(OperationError):
    """An operation on an alert or a rule that cannot be done; the message says why."""


class AlertNotFound(AlertOperationError, NotFoundError):
    """No such alert."""


class AlertConflict(AlertOperationError, ConflictError):
    """The alert is in a state the operation does not apply to."""


class InvalidAlertInput(AlertOperationError, InvalidInputError):
    """A comment, reason, duration or rule that cannot be used."""


@dataclass(slots=True, eq=False)
class Alert:
    """One alert: a rule's condition on one subject at one level."""

    id: int
    key: str
    rule_id: str
    kind: str
    site: str
    subject: str
    level: str
    severity: str
    clock: str = EVENT_CLOCK
    state: str = NORMAL
    condition: bool = False
    on_delay_ns: int = 0
    off_delay_ns: int = 0
    pending_since_ns: int | None = None
    clearing_since_ns: int | None = None
    active_since_ns: int | None = None
    raised_wall_ns: int | None = None
    cleared_ns: int | None = None
    last_event_ns: int = 0
    value: Any = None
    unit: str | None = None
    limit: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    occurrences: int = 0
    acked_by: str | None = None
    acked_ns: int | None = None
    ack_comment: str | None = None
    shelved_until_ns: int | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    suppressed: str | None = None
    escalation_level: int = -1
    escalated_ns: int | None = None
    updated_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON-ready data."""
        out = {name: getattr(self, name) for name in _FIELDS}
        out["detail"] = dict(self.detail)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Rebuild a stored alert (unknown keys from a later version are ignored)."""
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})

    def shelved(self, now_ns: int) -> bool:
        """Whether the alert is shelved at ``now_ns``."""
        return self.shelved_until_ns is not None and now_ns < self.shelved_until_ns

    @property
    def idle(self) -> bool:
        """Nothing to advance: no condition, no delay running, not active."""
        return (
            not self.condition
            and self.pending_since_ns is None
            and self.clearing_since_ns is None
            and self.state not in ACTIVE_STATES
        )


_FIELDS = frozenset(f.name for f in fields(Alert))


@dataclass(slots=True)
class Change:
    """One audited change of an alert, with its state right after it."""

    alert: Alert
    action: str
    previous: str
    wall_ns: int
    at_ns: int | None
    snapshot: dict[str, Any]
    actor: str = "gateway"
    comment: str | None = None
    cause: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def reading_cause(reading: Any) -> dict[str, Any]:
    """The reading that caused a change, as the audit log keeps it."""
    keys = ("instrument", "channel", "ts", "value", "unit", "quality", "u", "reason")
    return {k: reading[k] for k in keys if k in reading}


class Tracker:
    """Owns the alerts and turns conditions and operator actions into changes.

    Single-threaded: it lives on the gateway's event loop. The engine drains ``changes`` and
    ``dirty`` (alerts whose stored row is out of date) when it writes to the record store.
    """

    def __init__(self, wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.wall_ns = wall_ns
        self.alerts: dict[str, Alert] = {}
        self.by_id: dict[int, Alert] = {}
        self.next_id = 1
        self.changes: list[Change] = []
        self.dirty: dict[int, Alert] = {}
        self.timed: set[Alert] = set()
        """Gateway-clock alerts with a delay running: the tick advances them."""

    # -- bookkeeping ---------------------------------------------------------------------------

    def restore(self, alerts: list[Alert]) -> None:
        """Alerts as stored by an earlier run."""
        for alert in alerts:
            self.alerts[alert.key] = alert
            self.by_id[alert.id] = alert
            self.next_id = max(self.next_id, alert.id + 1)
            self._retime(alert)

    def alert(
        self,
        key: str,
        *,
        rule_id: str,
        kind: str,
        site: str,
        subject: str,
        level: str,
        severity: str,
        clock: str = EVENT_CLOCK,
    ) -> Alert:
        """The alert of ``key``, created (normal, not yet stored) if new."""
        found = self.alerts.get(key)
        if found is not None:
            if found.severity != severity:
                found.severity = severity
                self.dirty[found.id] = found
            return found
        alert = Alert(self.next_id, key, rule_id, kind, site, subject, level, severity, clock=clock)
        self.next_id += 1
        self.alerts[key] = alert
        self.by_id[alert.id] = alert
        return alert

    def take(self) -> tuple[list[Change], list[Alert]]:
        """The changes and dirty alerts since the last call."""
        changes, self.changes = self.changes, []
        dirty, self.dirty = list(self.dirty.values()), {}
        return changes, dirty

    def _retime(self, alert: Alert) -> None:
        if alert.clock != GATEWAY_CLOCK:
            return
        if alert.pending_since_ns is not None or alert.clearing_since_ns is not None:
            self.timed.add(alert)
        else:
            self.timed.discard(alert)

    def _record(
        self,
        alert: Alert,
        action: str,
        previous: str,
        at_ns: int | None,
        *,
        actor: str = "gateway",
        comment: str | None = None,
        cause: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Change:
        now = self.wall_ns()
        alert.updated_ns = now
        self.dirty[alert.id] = alert
        change = Change(
            alert, action, previous, now, at_ns, alert.to_dict(), actor, comment, cause, extra
        )
        self.changes.append(change)
        return change

    def _move(self, alert: Alert, state: str, action: str, at_ns: int, cause: Any) -> None:
        previous, alert.state = alert.state, state
        self._record(alert, action, previous, at_ns, cause=reading_cause(cause) if cause else None)

    # -- conditions ----------------------------------------------------------------------------

    def update(
        self,
        alert: Alert,
        condition: bool,
        at_ns: int,
        on_delay_ns: int,
        off_delay_ns: int,
        cause: Any = None,
        suppressed: str | None = None,
    ) -> None:
        """Feed the condition's value at ``at_ns`` (on the alert's clock).

        ``cause`` is the reading (or event data) that carried the condition; ``suppressed``
        names why the alert may not be raised now (``schedule``).
        """
        if at_ns < alert.last_event_ns:
            return  # an older event (a redelivered reading): already judged
        alert.last_event_ns = at_ns
        alert.on_delay_ns, alert.off_delay_ns = on_delay_ns, off_delay_ns
        if condition != alert.condition:
            alert.condition = condition
            self.dirty[alert.id] = alert
        state = alert.state
        if state in ACTIVE_STATES:
            if condition:
                if alert.clearing_since_ns is not None:
                    alert.clearing_since_ns = None
                    self.dirty[alert.id] = alert
            else:
                if alert.clearing_since_ns is None:
                    alert.clearing_since_ns = at_ns
                    self.dirty[alert.id] = alert
                if at_ns - alert.clearing_since_ns >= off_delay_ns:
                    self._clear(alert, at_ns, cause)
            self._retime(alert)
            return
        # normal, pending, returned_unacknowledged
        if not condition or suppressed is not None:
            if alert.pending_since_ns is not None:
                alert.pending_since_ns = None
                self.dirty[alert.id] = alert
            if state == PENDING:
                self._move(alert, NORMAL, "alert normal", at_ns, cause)
            if condition and alert.suppressed != suppressed:
                alert.suppressed = suppressed
                self._record(
                    alert,
                    "alert suppressed",
                    alert.state,
                    at_ns,
                    cause=reading_cause(cause) if cause else None,
                    reason=suppressed,
                )
            elif not condition and alert.suppressed is not None:
                alert.suppressed = None
                self.dirty[alert.id] = alert
            self._retime(alert)
            return
        if alert.suppressed is not None:
            alert.suppressed = None
            self.dirty[alert.id] = alert
        if alert.pending_since_ns is None:
            alert.pending_since_ns = at_ns
            self.dirty[alert.id] = alert
            if on_delay_ns > 0 and state == NORMAL:
                self._move(alert, PENDING, "alert pending", at_ns, cause)
        if at_ns - alert.pending_since_ns >= on_delay_ns:
            self._activate(alert, at_ns, cause)
        self._retime(alert)

    def advance(self, alert: Alert, now_ns: int, suppressed: str | None = None) -> None:
        """Let the delays of a gateway-clock alert run to ``now_ns`` (its condition unchanged)."""
        self.update(
            alert,
            alert.condition,
            now_ns,
            alert.on_delay_ns,
            alert.off_delay_ns,
            suppressed=suppressed,
        )

    def _activate(self, alert: Alert, at_ns: int, cause: Any) -> None:
        alert.pending_since_ns = None
        alert.clearing_since_ns = None
        alert.active_since_ns = at_ns
        alert.raised_wall_ns = self.wall_ns()
        alert.cleared_ns = None
        alert.occurrences += 1
        alert.acked_by = alert.acked_ns = alert.ack_comment = None
        alert.escalation_level = -1
        alert.escalated_ns = None
        self._move(alert, ACTIVE, "alert active", at_ns, cause)

    def _clear(self, alert: Alert, at_ns: int, cause: Any) -> None:
        alert.clearing_since_ns = None
        alert.cleared_ns = at_ns
        if alert.state == ACTIVE:
            self._move(alert, RETURNED, "alert returned", at_ns, cause)
        else:
            self._move(alert, NORMAL, "alert normal", at_ns, cause)

    # -- operators -----------------------------------------------------------------------------

    def acknowledge(self, alert: Alert, actor: str, comment: str | None) -> Change:
        """Acknowledge an active or returned alert; raises AlertOperationError otherwise."""
        if alert.state not in (ACTIVE, RETURNED):
            raise AlertConflict(
                f"alert {alert.id} is {alert.state}: there is nothing to acknowledge"
            )
        previous = alert.state
        alert.state = ACKED if previous == ACTIVE else NORMAL
        alert.acked_by, alert.acked_ns, alert.ack_comment = actor, self.wall_ns(), comment
        return self._record(
            alert, "alert acknowledged", previous, None, actor=actor, comment=comment
        )

    def comment(self, alert: Alert, actor: str, comment: str) -> Change:
        """Add a comment to the alert's record."""
        return self._record(
            alert, "alert commented", alert.state, None, actor=actor, comment=comment
        )

    def shelve(self, alert: Alert, actor: str, until_ns: int, reason: str) -> Change:
        """Shelve until ``until_ns``: no notification or escalation meanwhile."""
        alert.shelved_until_ns, alert.shelved_by, alert.shelve_reason = until_ns, actor, reason
        return self._record(
            alert,
            "alert shelved",
            alert.state,
            None,
            actor=actor,
            comment=reason,
            until_ns=until_ns,
        )

    def unshelve(self, alert: Alert, actor: str, comment: str | None) -> Change:
        """End shelving (by an operator, or ``gateway`` when its time is up)."""
        if alert.shelved_until_ns is None:
            raise AlertConflict(f"alert {alert.id} is not shelved")
        alert.shelved_until_ns = alert.shelved_by = alert.shelve_reason = None
        if alert.state == ACTIVE:
            # Shelving held back notifications: escalation starts again from the first level.
            alert.raised_wall_ns = self.wall_ns()
            alert.escalation_level = -1
        return self._record(
            alert, "alert unshelved", alert.state, None, actor=actor, comment=comment
        )

    def escalated(self, alert: Alert, level: int, recipients: list[str]) -> Change | None:
        """Record that escalation level ``level`` was notified (level 0 is not audited: it is the
        notification of the raise itself)."""
        alert.escalation_level = level
        self.dirty[alert.id] = alert
        if level == 0:
            return None
        alert.escalated_ns = self.wall_ns()
        return self._record(
            alert, "alert escalated", alert.state, None, level=level, recipients=recipients
        )
