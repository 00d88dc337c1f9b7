"""What the alert engine sends, before it is written: notifications to recipients and MQTT
messages, as outbox rows that the engine writes in the same transaction as the alerts they
describe, then hands to the :class:`~gateway.alerts.notify.Notifier`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.alerts.config import Recipient
from gateway.alerts.lifecycle import Alert
from gateway.alerts.messages import describe
from gateway.alerts.payloads import AlertView
from gateway.alerts.store import OutboxRow

VIEW_FIELDS = frozenset(AlertView.model_fields)


class Outbox:
    """Outbox rows not yet written (``rows``), and the views they carry."""

    def __init__(self, recipients: Mapping[str, Recipient], wall_ns: Callable[[], int]) -> None:
        self.recipients = recipients
        self.wall_ns = wall_ns
        self.rows: list[OutboxRow] = []

    def take(self) -> list[OutboxRow]:
        """The rows queued since the last take."""
        rows, self.rows = self.rows, []
        return rows

    def view(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """An alert as the outside sees it (AlertView)."""
        out = {k: v for k, v in snapshot.items() if k in VIEW_FIELDS}
        english = describe(snapshot, "en")
        out["message"] = english
        out["messages"] = {"en": english, "vi": describe(snapshot, "vi")}
        return out

    def notify(
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
        """Queue the notifications of one alert event to each recipient's e-mail and webhook."""
        view = self.view(snapshot if snapshot is not None else alert.to_dict())
        now = self.wall_ns()
        by_id = self.recipients
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
                self.rows.append(OutboxRow("email", recipient_id, alert.id, payload, now))
            if recipient.webhook is not None:
                self.rows.append(OutboxRow("webhook", recipient_id, alert.id, payload, now))
