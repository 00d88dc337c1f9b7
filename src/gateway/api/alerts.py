"""Alerts: list, show (with the audit trail), acknowledge, comment, shelve, unshelve; rules in
force and their changes. Viewers read, operators act on alerts, admins change rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from gateway.alerts.lifecycle import AlertOperationError
from gateway.alerts.payloads import AlertView
from gateway.api.auth import Admin, Operator, Viewer
from gateway.api.system import context

if TYPE_CHECKING:
    from gateway.alerts.engine import AlertEngine

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


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
    found: AlertEngine | None = context(request).extras.get("alerts")
    if found is None:
        raise HTTPException(404, "alerts are not configured on this gateway (no 'alerts:' key)")
    return found


def _refuse(exc: AlertOperationError) -> HTTPException:
    return HTTPException(exc.status, exc.reason)


@router.get("")
async def list_alerts(
    request: Request,
    _who: Viewer,
    include_normal: bool = Query(False, alias="all", description="Also alerts back to normal."),
    state: str | None = None,
    severity: str | None = None,
) -> list[AlertView]:
    """Alerts not back to normal (or all), newest change first."""
    alerts = engine(request).list_alerts(include_normal or state == "normal")
    return [
        AlertView.model_validate(a)
        for a in alerts
        if (state is None or a["state"] == state)
        and (severity is None or a["severity"] == severity)
    ]


@router.get("/stats")
async def stats(request: Request, _who: Viewer) -> dict[str, Any]:
    """Counters of evaluation and delivery."""
    return engine(request).snapshot_stats()


@router.get("/rules")
async def rules(request: Request, _who: Viewer) -> list[dict[str, Any]]:
    """The rules in force, where each came from, and channels they name that no agent declares."""
    return engine(request).rules_view()


@router.get("/rules/{rule_id}/history")
async def rule_history(request: Request, rule_id: str, _who: Viewer) -> list[AuditEntry]:
    """Audited changes of a rule, with before and after."""
    return [AuditEntry(**row) for row in await engine(request).rule_history(rule_id)]


@router.put("/rules/{rule_id}")
async def put_rule(
    request: Request, rule_id: str, change: RuleChange, who: Admin
) -> dict[str, Any]:
    """Add or replace a rule; in force until the config file changes that rule."""
    try:
        return await engine(request).put_rule(rule_id, change.rule, who.name, change.comment)
    except AlertOperationError as exc:
        raise _refuse(exc) from None


@router.get("/{alert_id}")
async def show(request: Request, alert_id: int, _who: Viewer) -> AlertDetail:
    """One alert with its audit trail (every transition, acknowledgement, comment)."""
    alerts = engine(request)
    try:
        alert = alerts.get(alert_id)
        history = await alerts.history(alert_id)
    except AlertOperationError as exc:
        raise _refuse(exc) from None
    return AlertDetail(
        alert=AlertView.model_validate(alerts.view(alert.to_dict())),
        history=[AuditEntry(**row) for row in history],
    )


@router.post("/{alert_id}/ack")
async def acknowledge(
    request: Request, alert_id: int, body: AckRequest, who: Operator
) -> AlertView:
    """Acknowledge an active or returned alert."""
    try:
        return AlertView.model_validate(
            await engine(request).acknowledge(alert_id, who.name, body.comment)
        )
    except AlertOperationError as exc:
        raise _refuse(exc) from None


@router.post("/{alert_id}/comment")
async def comment(
    request: Request, alert_id: int, body: CommentRequest, who: Operator
) -> AlertView:
    """Add a comment to the alert's record."""
    try:
        return AlertView.model_validate(
            await engine(request).comment(alert_id, who.name, body.comment)
        )
    except AlertOperationError as exc:
        raise _refuse(exc) from None


@router.post("/{alert_id}/shelve")
async def shelve(request: Request, alert_id: int, body: ShelveRequest, who: Operator) -> AlertView:
    """Shelve: no notification or escalation until the time is up (bounded by the config)."""
    try:
        return AlertView.model_validate(
            await engine(request).shelve(alert_id, who.name, body.duration_s, body.reason)
        )
    except AlertOperationError as exc:
        raise _refuse(exc) from None


@router.post("/{alert_id}/unshelve")
async def unshelve(
    request: Request, alert_id: int, body: UnshelveRequest, who: Operator
) -> AlertView:
    """End shelving now."""
    try:
        return AlertView.model_validate(
            await engine(request).unshelve(alert_id, who.name, body.comment)
        )
    except AlertOperationError as exc:
        raise _refuse(exc) from None
