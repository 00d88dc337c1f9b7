"""Agents, instruments and channels with their live status.

The catalogue comes from the agents' birth messages (record store ``channels``), states from
``agents`` and ``instrument_states``, values from the live readings. A channel an agent no longer
announces is *retired*: hidden unless ``include_retired=true``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from core.errors import NotFoundError
from core.models import NAME_PATTERN
from gateway.api.auth import Viewer
from gateway.api.export import CSV_RESPONSE, Format, tabular
from gateway.api.system import AgentView
from gateway.api.views import (
    ERRORS,
    NOT_FOUND,
    ChannelStatus,
    LatestReading,
    Limits,
    NamePath,
    api_context,
    channel_status,
    now_ns,
    views_of,
)
from gateway.ingest.live import ChannelFilter, reading_view

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=ERRORS)

NameQuery = Annotated[str | None, Query(pattern=NAME_PATTERN, description="Exact name.")]
TagFilter = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}=.{1,128}$")]


class AgentQuery(BaseModel):
    """The ``site`` and ``agent`` query parameters of a listing (each optional, an exact name).
    A route takes it as ``Annotated[AgentQuery, Query()]``: FastAPI lists the parameters in its
    place, in this order, as if the route had declared them itself."""

    # The route's other query parameters come in the same query string: they are not this
    # model's to refuse.
    model_config = ConfigDict(frozen=True, extra="ignore")

    site: NameQuery = None
    agent: NameQuery = None

    @property
    def wanted(self) -> ChannelFilter:
        """The channels these parameters ask for (None: any)."""
        return ChannelFilter(self.site, self.agent)


class ChannelQuery(AgentQuery):
    """``site``, ``agent``, ``instrument`` and ``channel``: the filter of the channel listings."""

    instrument: NameQuery = None
    channel: NameQuery = None

    @property
    def wanted(self) -> ChannelFilter:
        """The channels these parameters ask for (None: any)."""
        return ChannelFilter(self.site, self.agent, self.instrument, self.channel)


Agents = Annotated[AgentQuery, Query()]
Channels = Annotated[ChannelQuery, Query()]


class ChannelAt(NamedTuple):
    """The channel a route's path names (``.../{site}/{agent}/{instrument}/{channel}``)."""

    site: str
    agent: str
    instrument: str
    channel: str


async def _channel_at(
    site: NamePath, agent: NamePath, instrument: NamePath, channel: NamePath
) -> ChannelAt:
    # async: FastAPI runs a plain function dependency in a worker thread.
    return ChannelAt(site, agent, instrument, channel)


ChannelPath = Annotated[ChannelAt, Depends(_channel_at)]


class InstrumentView(BaseModel):
    """An instrument of an agent: its identification and connection state."""

    site: str
    agent: str
    instrument: str
    protocol: str
    identity: dict[str, str]
    state: Literal["connected", "unavailable", "unknown"]
    since_ns: int | None
    reason: str | None
    agent_state: str | None
    channels: int
    retired: bool


class ChannelView(BaseModel):
    """A channel: what it is, its latest reading, its limits and its status in one word."""

    site: str
    agent: str
    instrument: str
    channel: str
    protocol: str
    unit: str
    interval_s: float
    tags: dict[str, str]
    room: str | None
    status: ChannelStatus
    agent_state: str | None
    instrument_state: str | None
    latest: LatestReading | None
    limits: Limits | None
    retired: bool


class AgentDetail(AgentView):
    """An agent with its clock report and instruments."""

    clock: dict[str, Any]
    instruments: list[InstrumentView]


_CHANNELS_SQL = """
SELECT c.site, c.agent, c.instrument, c.channel, c.protocol, c.unit, c.interval_s, c.tags,
       c.identity, a.state AS agent_state, s.state AS instrument_state,
       s.since_ns AS instrument_since_ns, s.reason AS instrument_reason,
       c.updated_ns < (SELECT max(m.updated_ns) FROM channels m
                       WHERE m.site = c.site AND m.agent = c.agent) AS retired
FROM channels c
LEFT JOIN agents a ON a.site = c.site AND a.agent = c.agent
LEFT JOIN instrument_states s
       ON s.site = c.site AND s.agent = c.agent AND s.instrument = c.instrument
WHERE (?1 IS NULL OR c.site = ?1) AND (?2 IS NULL OR c.agent = ?2)
  AND (?3 IS NULL OR c.instrument = ?3) AND (?4 IS NULL OR c.channel = ?4)
ORDER BY c.site, c.agent, c.instrument, c.channel
"""


async def catalogue(request: Request, wanted: ChannelFilter) -> list[dict[str, Any]]:
    """Catalogue rows joined with agent and instrument states."""
    rows = await api_context(request).records.query(
        _CHANNELS_SQL, (wanted.site, wanted.agent, wanted.instrument, wanted.channel)
    )
    for row in rows:
        row["tags"] = json.loads(row["tags"] or "{}")
        row["identity"] = json.loads(row["identity"] or "{}")
        row["retired"] = bool(row["retired"])
    return rows


async def known_channel(request: Request, at: ChannelAt) -> list[dict[str, Any]]:
    """The catalogue rows of the channel a route's path names; not found when there are none."""
    rows = await catalogue(request, ChannelFilter(*at))
    if not rows:
        raise NotFoundError(f"unknown channel {'/'.join(at)}")
    return rows


def channel_views(request: Request, rows: list[dict[str, Any]]) -> list[ChannelView]:
    """Catalogue rows with their latest reading, limits and status."""
    ctx = api_context(request)
    views = views_of(request)
    limits_of = views.limits(ctx)
    latest = views.live.latest
    now = now_ns()
    room_tag = views.config.room_tag
    out = []
    for row in rows:
        key = (row["site"], row["agent"], row["instrument"], row["channel"])
        reading = latest.get(key)
        last = reading_view(key, reading) if reading is not None else None
        limits = limits_of.limits_for(*key, row["tags"])
        out.append(
            ChannelView(
                site=row["site"],
                agent=row["agent"],
                instrument=row["instrument"],
                channel=row["channel"],
                protocol=row["protocol"],
                unit=row["unit"],
                interval_s=row["interval_s"],
                tags=row["tags"],
                room=row["tags"].get(room_tag),
                status=channel_status(
                    agent_state=row["agent_state"],
                    instrument_state=row["instrument_state"],
                    latest=last,
                    interval_s=row["interval_s"],
                    limits=limits,
                    stale_after_intervals=views.config.stale_after_intervals,
                    now=now,
                ),
                agent_state=row["agent_state"],
                instrument_state=row["instrument_state"],
                latest=LatestReading(**last) if last is not None else None,
                limits=limits,
                retired=row["retired"],
            )
        )
    return out


def instrument_views(rows: list[dict[str, Any]]) -> list[InstrumentView]:
    """Catalogue rows grouped by instrument."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["site"], row["agent"], row["instrument"]), []).append(row)
    out = []
    for (site, agent, instrument), channels in grouped.items():
        first = channels[0]
        state = first["instrument_state"] or "unknown"
        out.append(
            InstrumentView(
                site=site,
                agent=agent,
                instrument=instrument,
                protocol=first["protocol"],
                identity=first["identity"],
                state=state if state in ("connected", "unavailable") else "unknown",
                since_ns=first["instrument_since_ns"],
                reason=first["instrument_reason"],
                agent_state=first["agent_state"],
                channels=len(channels),
                retired=all(c["retired"] for c in channels),
            )
        )
    return out


CHANNEL_COLUMNS = [
    "site",
    "agent",
    "instrument",
    "channel",
    "unit",
    "interval_s",
    "room",
    "status",
    "latest.ts_ns",
    "latest.value",
    "latest.quality",
    "latest.u",
    "limits.low",
    "limits.high",
    "tags",
]


@router.get("/channels", response_model=list[ChannelView], responses=CSV_RESPONSE)
async def channels(
    request: Request,
    _who: Viewer,
    where: Channels,
    room: Annotated[str | None, Query(max_length=128, description="Value of the room tag.")] = None,
    status: ChannelStatus | None = None,
    tag: Annotated[
        list[TagFilter] | None, Query(description="key=value; repeat for several (all must match)")
    ] = None,
    include_retired: bool = False,
    format: Format = "json",
) -> list[ChannelView] | Response:
    """Every channel with its latest reading, limits and status."""
    rows = await catalogue(request, where.wanted)
    wanted_tags = dict(t.split("=", 1) for t in tag or [])
    rows = [
        r
        for r in rows
        if (include_retired or not r["retired"])
        and all(r["tags"].get(k) == v for k, v in wanted_tags.items())
    ]
    found = channel_views(request, rows)
    found = [
        c
        for c in found
        if (room is None or c.room == room) and (status is None or c.status == status)
    ]
    return tabular(found, format, "channels", CHANNEL_COLUMNS, times=["latest.ts_ns"])  # type: ignore[return-value]  # JSON list or CSV


@router.get("/channels/{site}/{agent}/{instrument}/{channel}", responses=NOT_FOUND)
async def channel_detail(
    request: Request,
    _who: Viewer,
    at: ChannelPath,
) -> ChannelView:
    """One channel (retired ones too)."""
    return channel_views(request, await known_channel(request, at))[0]


INSTRUMENT_COLUMNS = [
    "site",
    "agent",
    "instrument",
    "protocol",
    "state",
    "since_ns",
    "reason",
    "agent_state",
    "channels",
    "identity",
]


@router.get("/instruments", response_model=list[InstrumentView], responses=CSV_RESPONSE)
async def instruments(
    request: Request,
    _who: Viewer,
    where: Agents,
    state: Literal["connected", "unavailable", "unknown"] | None = None,
    include_retired: bool = False,
    format: Format = "json",
) -> list[InstrumentView] | Response:
    """Every instrument with its connection state."""
    found = instrument_views(await catalogue(request, where.wanted))
    found = [
        i
        for i in found
        if (include_retired or not i.retired) and (state is None or i.state == state)
    ]
    return tabular(found, format, "instruments", INSTRUMENT_COLUMNS, times=["since_ns"])  # type: ignore[return-value]  # JSON list or CSV


@router.get("/agents/{site}/{agent}", responses=NOT_FOUND)
async def agent_detail(
    request: Request, _who: Viewer, site: NamePath, agent: NamePath
) -> AgentDetail:
    """One agent: state, clock report, instruments."""
    rows = await api_context(request).records.query(
        "SELECT site, agent, state, version, since_ns, last_seen_ns, reason, clock FROM agents "
        "WHERE site = ? AND agent = ?",
        (site, agent),
    )
    if not rows:
        raise NotFoundError(f"unknown agent {site}/{agent}")
    row = rows[0]
    try:
        clock = json.loads(row.pop("clock") or "{}")
    except ValueError:
        clock = {}
    found = [
        i
        for i in instrument_views(await catalogue(request, ChannelFilter(site, agent)))
        if not i.retired
    ]
    return AgentDetail(**row, clock=clock if isinstance(clock, dict) else {}, instruments=found)
