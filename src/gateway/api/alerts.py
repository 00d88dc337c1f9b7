"""Alerts: list, show (with the audit trail), acknowledge, comment, shelve, unshelve; rules in
force and their changes. Viewers read, operators act on alerts, admins change rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from core.errors import NotFoundError
from core.models import NAME_PATTERN
from gateway.alerts.payloads import AlertView
from gateway.api.auth import Admin, Operator, Viewer
from gateway.api.export import CSV_RESPONSE, Format, tabular
from gateway.api.system import context
from gateway.api.views import ERRORS, REFUSALS, Limits, LimitsProvider

if TYPE_CHECKING:
    from gateway.alerts.engine import AlertEngine

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], responses=ERRORS | REFUSALS)
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A row id.")]
RuleId = Annotated[str, Path(pattern=NAME_PATTERN, description="An identifier.")]


class AuditEntry(BaseModel):
    """One entry of an alert's (or rule's) audit trail."""

    id: int
    ts_ns: int
    actor: str
    action: str
    details: dict[str, Any]


class AlertDetail(BaseModel):
    """An alert with its audit trail."""

    alert: AlertView
    history: list[AuditEntry]


class AckRequest(BaseModel):
    """Acknowledge; the comment is required when the gateway says so (GxP)."""

    comment: str | None = Field(None, max_length=2000)


class CommentRequest(BaseModel):
    """A comment for the alert's record."""

    comment: str = Field(..., max_length=2000)


class ShelveRequest(BaseModel):
    """Shelve for a bounded time, with a reason."""

    duration_s: float = Field(..., gt=0)
    reason: str = Field(..., max_length=2000)


class UnshelveRequest(BaseModel):
    """End shelving now."""

    comment: str | None = Field(None, max_length=2000)


class RuleChange(BaseModel):
    """A rule's new definition (as in the config file) and why it changes."""

    rule: dict[str, Any]
    comment: str | None = Field(None, max_length=2000)


def engine(request: Request) -> AlertEngine:
    """The running alert engine; 404 when alerts are not configured."""
    found = context(request).alerts
    if found is None:
        raise NotFoundError("alerts are not configured on this gateway (no 'alerts:' key)")
    return found


class RuleLimits:
    """The limits the overview draws: those of the alert engine's limits rules where one
    watches the channel, else the dashboard's own (``ApiContext.limits``)."""

    def __init__(self, alerts: AlertEngine, fallback: LimitsProvider) -> None:
        self.alerts = alerts
        self.fallback = fallback

    def limits_for(
        self, site: str, agent: str, instrument: str, channel: str, tags: dict[str, str]
    ) -> Limits | None:
        """See :class:`gateway.api.views.LimitsProvider`."""
        band = self.alerts.limits_for(site, agent, instrument, channel, tags)
        if band is None:
            return self.fallback.limits_for(site, agent, instrument, channel, tags)
        return Limits(low=band[0], high=band[1])


StateFilter = Literal[
    "open",
    "active",
    "all",
    "normal",
    "pending",
    "active_unacknowledged",
    "active_acknowledged",
    "returned_unacknowledged",
]
STATE_GROUPS: dict[str, frozenset[str]] = {
    "active": frozenset({"active_unacknowledged", "active_acknowledged"}),
}
ALERT_COLUMNS = [
    "id",
    "rule_id",
    "kind",
    "site",
    "subject",
    "level",
    "severity",
    "state",
    "condition",
    "value",
    "unit",
    "limit",
    "message",
    "messages.vi",
    "active_since_ns",
    "cleared_ns",
    "occurrences",
    "acked_by",
    "acked_ns",
    "ack_comment",
    "shelved_until_ns",
    "shelved_by",
    "shelve_reason",
    "suppressed",
    "updated_ns",
]
ALERT_TIMES = [c for c in ALERT_COLUMNS if c.endswith("_ns")]


@router.get("", response_model=list[AlertView], responses=CSV_RESPONSE)
async def list_alerts(
    request: Request,
    _who: Viewer,
    include_normal: bool = Query(False, alias="all", description="Also alerts back to normal."),
    state: Annotated[
        StateFilter,
        Query(
            description="open: not back to normal (or out of schedule); active: active, "
            "acknowledged or not; all; or one state."
        ),
    ] = "open",
    severity: Literal["warning", "alarm", "critical"] | None = None,
    format: Format = "json",
) -> list[AlertView] | Response:
    """Alerts, newest change first: by default those not back to normal."""
    if include_normal and state == "open":
        state = "all"
    alerts = engine(request).list_alerts(state not in ("open", "active"))
    wanted = STATE_GROUPS.get(state) or (None if state in ("open", "all") else frozenset({state}))
    views = [
        AlertView.model_validate(a)
        for a in alerts
        if (wanted is None or a["state"] in wanted)
        and (severity is None or a["severity"] == severity)
    ]
    return tabular(views, format, "alerts", ALERT_COLUMNS, times=ALERT_TIMES)  # type: ignore[return-value]  # JSON list or CSV


@router.get("/stats")
async def stats(request: Request, _who: Viewer) -> dict[str, Any]:
    """Counters of evaluation and delivery."""
    return engine(request).snapshot_stats()


@router.get("/rules")
async def rules(request: Request, _who: Viewer) -> list[dict[str, Any]]:
    """The rules in force, where each came from, and channels they name that no agent declares."""
    return engine(request).rules_view()


@router.get("/rules/{rule_id}/history")
async def rule_history(request: Request, rule_id: RuleId, _who: Viewer) -> list[AuditEntry]:
    """Audited changes of a rule, with before and after."""
    return [AuditEntry(**row) for row in await engine(request).rule_history(rule_id)]


@router.put("/rules/{rule_id}")
async def put_rule(
    request: Request, rule_id: RuleId, change: RuleChange, who: Admin
) -> dict[str, Any]:
    """Add or replace a rule; in force until the config file changes that rule."""
    return await engine(request).put_rule(rule_id, change.rule, who.name, change.comment)


@router.get("/{alert_id}")
async def show(request: Request, alert_id: AlertId, _who: Viewer) -> AlertDetail:
    """One alert with its audit trail (every transition, acknowledgement, comment)."""
    alerts = engine(request)
    alert = alerts.get(alert_id)
    history = await alerts.history(alert_id)
    return AlertDetail(
        alert=AlertView.model_validate(alerts.view(alert.to_dict())),
        history=[AuditEntry(**row) for row in history],
    )


@router.post("/{alert_id}/ack")
async def acknowledge(
    request: Request, alert_id: AlertId, body: AckRequest, who: Operator
) -> AlertView:
    """Acknowledge an active or returned alert."""
    return AlertView.model_validate(
        await engine(request).acknowledge(alert_id, who.name, body.comment)
    )


@router.post("/{alert_id}/comment")
async def comment(
    request: Request, alert_id: AlertId, body: CommentRequest, who: Operator
) -> AlertView:
    """Add a comment to the alert's record."""
    return AlertView.model_validate(await engine(request).comment(alert_id, who.name, body.comment))


@router.post("/{alert_id}/shelve")
async def shelve(
    request: Request, alert_id: AlertId, body: ShelveRequest, who: Operator
) -> AlertView:
    """Shelve: no notification or escalation until the time is up (bounded by the config)."""
    return AlertView.model_validate(
        await engine(request).shelve(alert_id, who.name, body.duration_s, body.reason)
    )


@router.post("/{alert_id}/unshelve")
async def unshelve(
    request: Request, alert_id: AlertId, body: UnshelveRequest, who: Operator
) -> AlertView:
    """End shelving now."""
    return AlertView.model_validate(
        await engine(request).unshelve(alert_id, who.name, body.comment)
    )
