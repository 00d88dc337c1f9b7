"""Health, the gateway's own metrics, and the agents it knows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from edge_agent import __version__
from gateway.api.auth import Viewer
from gateway.api.context import ApiContext

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


@router.get("/agents")
async def agents(request: Request, _who: Viewer) -> list[AgentView]:
    """Every agent the gateway has heard of, online or not."""
    rows = await context(request).records.query(
        "SELECT site, agent, state, version, since_ns, last_seen_ns, reason FROM agents "
        "ORDER BY site, agent"
    )
    return [AgentView(**row) for row in rows]
