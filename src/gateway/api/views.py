"""What the read side of the API and the dashboard share: live values, the history reader, channel
limits, the models they answer with, and the query parameters they parse."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from core.models import NAME_PATTERN
from gateway.api.auth import Viewer
from gateway.api.context import ApiContext
from gateway.api.dashboard_config import DashboardConfig
from gateway.ingest.live import LiveValues
from gateway.tsdb.factory import build_points_reader
from gateway.tsdb.reader import PointsReader

TS_MIN_NS = 0
TS_MAX_NS = 2**63 - 1

NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="A site/agent/… name.")]


class ErrorBody(BaseModel):
    """Why a request was refused."""

    detail: Any


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No token, or an unknown one", "model": ErrorBody},
    403: {"description": "The token's role may not do this", "model": ErrorBody},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such item", "model": ErrorBody}
}
REFUSALS: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    400: {"description": "Not possible for this item, with the reason", "model": ErrorBody},
    409: {
        "description": "Conflicts with the current state (already registered, nothing to "
        "acknowledge...), with the reason",
        "model": ErrorBody,
    },
    422: {"description": "Invalid input, with the reason", "model": ErrorBody},
    503: {"description": "A store the answer needs is unavailable", "model": ErrorBody},
}
"""Refusals of the routers that change things (standards, alerts)."""


class Limits(BaseModel):
    """The range a channel should stay within (either bound may be open)."""

    low: float | None
    high: float | None


class LimitsProvider(Protocol):
    """Where channel limits come from (the dashboard config; later the alert engine's rules)."""

    def limits_for(
        self, site: str, agent: str, instrument: str, channel: str, tags: dict[str, str]
    ) -> Limits | None:
        """The limits of a channel, if any apply."""
        ...


class ConfigLimits:
    """Limits from ``dashboard.limits``: the first matching entry applies."""

    def __init__(self, config: DashboardConfig) -> None:
        self.entries = config.limits

    def limits_for(
        self, site: str, agent: str, instrument: str, channel: str, tags: dict[str, str]
    ) -> Limits | None:
        """See :class:`LimitsProvider`."""
        for entry in self.entries:
            if entry.match.matches(site, agent, instrument, channel, tags):
                return Limits(low=entry.low, high=entry.high)
        return None


@dataclass
class Views:
    """The read side's services (``ApiContext.views``)."""

    config: DashboardConfig
    live: LiveValues
    history: PointsReader

    def limits(self, context: ApiContext) -> LimitsProvider:
        """The limits provider (``ApiContext.limits`` if a feature registered one)."""
        return context.limits or ConfigLimits(self.config)


def install(context: ApiContext, app: FastAPI) -> Views:
    """Create the read side's services for a gateway and release them when the API stops."""
    views = Views(
        config=context.config.dashboard,
        live=LiveValues(context.hub),
        history=build_points_reader(context.config.store, context.config.dashboard.history),
    )
    context.views = views
    if context.limits is None:
        context.limits = ConfigLimits(views.config)
    app.state.on_stopping.append(views.live.close)
    app.state.on_stopped.append(views.history.close)
    return views


def api_context(request: Request) -> ApiContext:
    """The running gateway's handles."""
    ctx: ApiContext = request.app.state.context
    return ctx


def views_of(request: Request) -> Views:
    """The read side's services."""
    views = api_context(request).views
    assert views is not None, "the read side is installed with the API"
    return views


def invalid_query(name: str, message: str, value: Any) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (``detail`` a list of errors), as the OpenAPI document
    says every 422 is."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": message, "input": value}]
    )


def to_ns(moment: datetime | None, name: str, default_ns: int) -> int:
    """A query's datetime as ns since the epoch (naive means UTC); 422 outside 1970…2262."""
    if moment is None:
        return default_ns
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    except OverflowError:
        delta = None
    if delta is None or delta.days < 0 or delta.days > 106_000:
        raise invalid_query(
            name, f"{moment.isoformat()} is outside 1970-01-01 … 2262-04-11", str(moment)
        )
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return min(max(ns, TS_MIN_NS), TS_MAX_NS)


def now_ns() -> int:
    """Wall-clock time, ns."""
    return time.time_ns()


# -- who am I -------------------------------------------------------------------------------------

router = APIRouter(prefix="/api/v1", tags=["session"], responses=ERRORS)


class Me(BaseModel):
    """The caller: the token's name and role (the dashboard shows operator actions by it)."""

    name: str
    role: Literal["viewer", "auditor", "operator", "admin"]
    site: str
    gateway: str


@router.get("/me")
async def me(request: Request, who: Viewer) -> Me:
    """Who the token belongs to, and what it may do."""
    ctx = api_context(request)
    return Me(
        name=who.name,
        role=who.role.name.lower(),
        site=ctx.config.site,
        gateway=ctx.config.id,
    )


# -- models shared by the routers ----------------------------------------------------------------


class LatestReading(BaseModel):
    """The latest reading of a channel, as the gateway received it."""

    site: str
    agent: str
    instrument: str
    channel: str
    ts_ns: int
    value: float | int | bool | str | None
    unit: str
    quality: Literal["good", "uncertain", "bad"]
    u: float | None = None
    reason: str | None = None


ChannelStatus = Literal[
    "ok", "out_of_limits", "uncertain", "bad", "stale", "no_data", "unavailable", "offline"
]


def channel_status(
    *,
    agent_state: str | None,
    instrument_state: str | None,
    latest: dict[str, Any] | None,
    interval_s: float,
    limits: Limits | None,
    stale_after_intervals: float,
    now: int,
) -> ChannelStatus:
    """One word for a channel's state, worst first: the agent offline, the instrument
    unavailable, no reading yet, the last one too old, bad, uncertain, outside its limits, ok."""
    if agent_state != "online":
        return "offline"
    if instrument_state == "unavailable":
        return "unavailable"
    if latest is None:
        return "no_data"
    # Slack for publish batching and transport on top of the missed intervals.
    if now - latest["ts_ns"] > (stale_after_intervals * interval_s + 5.0) * 1e9:
        return "stale"
    if latest["quality"] == "bad":
        return "bad"
    if latest["quality"] == "uncertain":
        return "uncertain"
    value = latest["value"]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if limits is not None and numeric:
        low = limits.low is not None and value < limits.low
        high = limits.high is not None and value > limits.high
        if low or high:
            return "out_of_limits"
    return "ok"
