"""Health, the gateway's own metrics, and the agents it knows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel

from edge_agent import __version__
from gateway.api.auth import Viewer
from gateway.api.context import ApiContext
from gateway.api.export import CSV_RESPONSE, Format, tabular
from gateway.api.views import NOT_FOUND

router = APIRouter(prefix="/api/v1", tags=["system"])


class Health(BaseModel):
    """Liveness: answers without a token."""

    status: str
    version: str
    site: str
    gateway: str


class AgentView(BaseModel):
    """An agent as the gateway last heard of it."""

    site: str
    agent: str
    state: str
    version: str | None
    since_ns: int
    last_seen_ns: int
    reason: str | None


def context(request: Request) -> ApiContext:
    """The running gateway's handles."""
    ctx: ApiContext = request.app.state.context
    return ctx


@router.get("/health")
async def health(request: Request) -> Health:
    """Whether the gateway answers; no token needed."""
    ctx = context(request)
    return Health(status="ok", version=__version__, site=ctx.config.site, gateway=ctx.config.id)


@router.get("/metrics")
async def metrics(request: Request, _who: Viewer) -> dict[str, Any]:
    """The gateway's self-metrics, as in its metrics topic."""
    return context(request).metrics.snapshot()


@router.get("/hub/sync", responses=NOT_FOUND)
async def hub_sync(request: Request, _who: Viewer) -> dict[str, Any]:
    """Where the push of the record ledger to the national hub stands: the last entry pushed,
    the lag, the hub's last refusal with its reason in English and Vietnamese."""
    sync = context(request).hubsync
    if sync is None:
        raise HTTPException(404, "no national hub is configured (hub: in the gateway's config)")
    return sync.state.as_json()


AGENT_COLUMNS = ["site", "agent", "state", "version", "since_ns", "last_seen_ns", "reason"]


@router.get("/agents", response_model=list[AgentView], responses=CSV_RESPONSE)
async def agents(
    request: Request, _who: Viewer, format: Format = "json"
) -> list[AgentView] | Response:
    """Every agent the gateway has heard of, online or not."""
    rows = await context(request).records.query(
        "SELECT site, agent, state, version, since_ns, last_seen_ns, reason FROM agents "
        "ORDER BY site, agent"
    )
    found = [AgentView(**row) for row in rows]
    times = ["since_ns", "last_seen_ns"]
    return tabular(found, format, "agents", AGENT_COLUMNS, times)  # type: ignore[return-value]  # JSON list or CSV
