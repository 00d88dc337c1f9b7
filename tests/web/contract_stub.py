"""A stand-in for the alerts router, serving exactly the shapes docs/api.md promises ("Contract
for the standards and alerts endpoints", Alerts), so the dashboard's alerts page is driven in a
browser before that feature is merged; the alert actions write the real audit log. (The standard
page runs against the real standards feature: tests/web/test_standard_page.py.)

TEMPORARY: once the alert engine serves these endpoints, the lead points
tests/web/test_contract_pages.py at it and deletes this module.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from gateway.api.auth import Operator, Viewer
from gateway.api.context import ApiContext
from tests.support.lab import AGENT, SITE

NOW_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18

router = APIRouter(prefix="/api/v1", tags=["contract stub"])


ALERTS: dict[int, dict[str, Any]] = {}


def reset_alerts() -> None:
    """One active, unacknowledged alert on room A's temperature."""
    ALERTS.clear()
    ALERTS[1] = {
        "id": 1,
        "rule_id": "room-a-temperature",
        "kind": "limits",
        "site": SITE,
        "subject": f"{SITE}/{AGENT}/room-a/temperature",
        "level": "high",
        "severity": "alarm",
        "state": "active_unacknowledged",
        "value": 24.31,
        "unit": "°C",
        "limit": 24.0,
        "active_since_ns": NOW_NS,
        "raised_wall_ns": NOW_NS,
        "cleared_ns": None,
        "acked_by": None,
        "acked_ns": None,
        "ack_comment": None,
        "shelved_until_ns": None,
        "shelved_by": None,
        "shelve_reason": None,
        "suppressed": None,
        "updated_ns": NOW_NS,
        "message": {
            "en": "24.31 °C above the high limit 24 °C",
            "vi": "24,31 °C vượt giới hạn trên 24 °C",
        },
    }


class Comment(BaseModel):
    comment: str = Field(..., min_length=1, max_length=2000)


class Shelve(BaseModel):
    duration_s: int = Field(..., ge=60, le=30 * 86_400)
    reason: str = Field(..., min_length=1, max_length=2000)


def _alert(alert_id: int) -> dict[str, Any]:
    if alert_id not in ALERTS:
        raise HTTPException(404, f"unknown alert {alert_id}")
    return ALERTS[alert_id]


async def _audit(request: Request, actor: str, action: str, alert_id: int, **details: Any) -> None:
    context: ApiContext = request.app.state.context
    await context.records.audit(actor, action, f"alert/{alert_id}", details)


@router.get("/alerts")
async def alerts(_who: Viewer, state: str = "open") -> list[dict[str, Any]]:
    if state == "all":
        return list(ALERTS.values())
    return [a for a in ALERTS.values() if a["state"] != "normal"]


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(alert_id: int, body: Comment, request: Request, who: Operator) -> Any:
    alert = _alert(alert_id)
    if alert["state"] not in ("active_unacknowledged", "returned_unacknowledged"):
        raise HTTPException(409, f"alert {alert_id} is {alert['state']}: nothing to acknowledge")
    previous = alert["state"]
    alert["state"] = "active_acknowledged" if previous == "active_unacknowledged" else "normal"
    alert["acked_by"], alert["ack_comment"] = who.name, body.comment
    await _audit(request, who.name, "alert acknowledged", alert_id, comment=body.comment)
    return alert


@router.post("/alerts/{alert_id}/comment")
async def comment(alert_id: int, body: Comment, request: Request, who: Operator) -> Any:
    alert = _alert(alert_id)
    await _audit(request, who.name, "alert commented", alert_id, comment=body.comment)
    return alert


@router.post("/alerts/{alert_id}/shelve")
async def shelve(alert_id: int, body: Shelve, request: Request, who: Operator) -> Any:
    alert = _alert(alert_id)
    alert["shelved_until_ns"] = NOW_NS * 2  # far ahead: the page shows it shelved
    alert["shelved_by"], alert["shelve_reason"] = who.name, body.reason
    await _audit(
        request, who.name, "alert shelved", alert_id, reason=body.reason, duration_s=body.duration_s
    )
    return alert
