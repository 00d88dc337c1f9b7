"""The documented, versioned shapes of alerts outside the gateway: the API's alert, the MQTT
event and retained state, and the webhook body (published as JSON Schemas by ``etalon schema``).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

WEBHOOK_SCHEMA: Final = "etalon.alerts.notification/1"
MQTT_EVENT_SCHEMA: Final = "etalon.alerts.event/1"
MQTT_STATE_SCHEMA: Final = "etalon.alerts.state/1"


class AlertView(BaseModel):
    """An alert as the API, MQTT and webhooks show it."""

    model_config = ConfigDict(extra="ignore")

    id: int
    key: str = Field(..., description="rule|subject|level: stable across restarts.")
    rule_id: str
    kind: str
    site: str
    subject: str = Field(..., description="site/agent/instrument/channel, site/agent, ...")
    level: str = Field(..., description="Severity of a limits level, or the check's name.")
    severity: Literal["warning", "alarm", "critical"]
    state: Literal[
        "normal",
        "pending",
        "active_unacknowledged",
        "active_acknowledged",
        "returned_unacknowledged",
    ]
    condition: bool = Field(..., description="Whether the condition holds now.")
    value: Any = None
    unit: str | None = None
    limit: float | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    message: str | None = Field(None, description="What the condition is, in English.")
    messages: dict[str, str] = Field(
        default_factory=dict, description="The same line in every language shipped: en, vi."
    )
    active_since_ns: int | None = Field(None, description="When it became active (its clock).")
    pending_since_ns: int | None = None
    cleared_ns: int | None = None
    occurrences: int = 0
    acked_by: str | None = None
    acked_ns: int | None = None
    ack_comment: str | None = None
    shelved_until_ns: int | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    suppressed: str | None = Field(None, description="'schedule': out of its monitoring schedule.")
    escalation_level: int = -1
    updated_ns: int = 0


class AlertEventMessage(BaseModel):
    """Non-retained, on ``{prefix}/v1/{site}/alerts/events``: one per audited change."""

    schema_: Literal["etalon.alerts.event/1"] = Field(MQTT_EVENT_SCHEMA, alias="schema")
    action: str = Field(..., description="alert pending, alert active, alert acknowledged, ...")
    previous: str
    ts: int = Field(..., description="Gateway time of the change, ns.")
    at_ns: int | None = Field(None, description="Time on the alert's clock (reading time).")
    actor: str
    comment: str | None = None
    cause: dict[str, Any] | None = Field(None, description="The reading that caused it.")
    alert: AlertView


class AlertStateMessage(BaseModel):
    """Retained, on ``{prefix}/v1/{site}/alerts/state/{id}``: the alert's current state."""

    schema_: Literal["etalon.alerts.state/1"] = Field(MQTT_STATE_SCHEMA, alias="schema")
    ts: int
    alert: AlertView


class WebhookEvent(BaseModel):
    """One notification inside a webhook body."""

    event: Literal["raised", "cleared", "acknowledged", "escalated"]
    at_ns: int = Field(..., description="When it happened (reading time for raise and clear).")
    escalation_level: int
    actor: str | None = None
    comment: str | None = None
    text: str = Field(..., description="What happened, in the recipient's language.")
    link: str | None = None
    alert: AlertView


class WebhookRecipient(BaseModel):
    """Who the body is for."""

    id: str
    name: str
    language: Literal["en", "vi"]


class WebhookNotification(BaseModel):
    """The JSON body POSTed to a webhook: a group of notifications for one recipient.

    ``delivery`` identifies the message: a retried or (after a gateway crash) repeated delivery
    carries the same value, so a receiver can drop duplicates.
    """

    schema_: Literal["etalon.alerts.notification/1"] = Field(WEBHOOK_SCHEMA, alias="schema")
    delivery: str
    site: str
    gateway: str
    sent_ns: int
    recipient: WebhookRecipient
    summary: str
    events: list[WebhookEvent]
