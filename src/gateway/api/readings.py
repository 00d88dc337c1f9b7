"""Readings: the latest of each channel, a channel's history, and live values (server-sent events).

The live stream (``GET /api/v1/live``, ``text/event-stream``; browsers pass the token as
``?access_token=``) sends:

- ``event: readings`` — a JSON array of latest readings: first every channel's latest (the
  snapshot), then the channels that changed, at most every ``interval_ms``;
- ``event: agent`` / ``event: instrument`` — a state change (JSON object);
- a comment line every 15 s, so proxies keep the connection and dead clients are noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from core.errors import StoreError
from gateway.api.auth import LiveViewer, Viewer
from gateway.api.export import CSV_RESPONSE, Format, tabular
from gateway.api.fleet import ChannelPath, Channels, known_channel
from gateway.api.views import (
    ERRORS,
    NOT_FOUND,
    ErrorBody,
    LatestReading,
    invalid_query,
    now_ns,
    to_ns,
    views_of,
)
from gateway.records.store import RecordStore
from gateway.tsdb.reader import HistoryPoint, PointValues

router = APIRouter(prefix="/api/v1", tags=["readings"], responses=ERRORS)

HEARTBEAT_S = 15.0
DEFAULT_RANGE_NS = 3600 * 1_000_000_000

LATEST_COLUMNS = [
    "site",
    "agent",
    "instrument",
    "channel",
    "ts_ns",
    "value",
    "unit",
    "quality",
    "u",
    "reason",
]


@router.get("/readings/latest", response_model=list[LatestReading], responses=CSV_RESPONSE)
async def latest(
    request: Request,
    _who: Viewer,
    where: Channels,
    format: Format = "json",
) -> list[LatestReading] | Response:
    """The latest reading of every channel the gateway received since it started."""
    found = [LatestReading(**r) for r in views_of(request).live.snapshot(where.wanted)]
    return tabular(found, format, "latest-readings", LATEST_COLUMNS, times=["ts_ns"])  # type: ignore[return-value]  # JSON list or CSV


@dataclass(frozen=True, slots=True)
class HistoryPointView(PointValues):
    """A reading, or a bucket of readings when the range was downsampled (see ``span_ns``)."""

    certificate: str | None = None
    """The identifier (its DCC's unique identifier) of the instrument certificate that corrected
    it (``certificate_id``: ``/api/v1/instruments/certificates/{id}``)."""


class HistoryView(BaseModel):
    """A channel's history over [start_ns, end_ns).

    Raw readings when the range holds at most ``max_points``; otherwise buckets ``span_ns`` wide,
    stamped at their start, with the mean (``value``), minimum, maximum and number of numeric
    values, and the worst quality (0 good, 1 uncertain, 2 bad)."""

    site: str
    agent: str
    instrument: str
    channel: str
    unit: str
    start_ns: int
    end_ns: int
    max_points: int
    downsampled: bool
    span_ns: int
    store: str
    points: list[HistoryPointView]


def _point_view(point: HistoryPoint, numbers: dict[int, str]) -> HistoryPointView:
    """A stored point as the API shows it (its values, not its span), with its certificate's
    number."""
    values = {field.name: getattr(point, field.name) for field in fields(PointValues)}
    certificate = None if point.certificate_id is None else numbers.get(point.certificate_id)
    return HistoryPointView(**values, certificate=certificate)


HISTORY_COLUMNS = [
    "ts_ns",
    "value",
    "min",
    "max",
    "count",
    "quality",
    "u",
    "corrected",
    "u_corrected",
    "certificate_id",
    "certificate",
]


def _records(request: Request) -> RecordStore:
    records: RecordStore = request.app.state.context.records
    return records


@router.get(
    "/channels/{site}/{agent}/{instrument}/{channel}/history",
    response_model=HistoryView,
    responses={
        **NOT_FOUND,
        **CSV_RESPONSE,
        503: {"description": "The time-series store did not answer", "model": ErrorBody},
    },
)
async def history(
    request: Request,
    _who: Viewer,
    at: ChannelPath,
    start: Annotated[
        datetime | None, Query(description="ISO 8601 (naive = UTC); default end - 1 h")
    ] = None,
    end: Annotated[
        datetime | None, Query(description="ISO 8601 (naive = UTC); default now")
    ] = None,
    max_points: Annotated[int, Query(ge=2, le=20_000)] = 1000,
    format: Format = "json",
) -> HistoryView | Response:
    """A channel's readings over a time range, downsampled when there are more than
    ``max_points``, from whichever store the gateway writes to."""
    end_ns = to_ns(end, "end", now_ns())
    start_ns = to_ns(start, "start", end_ns - DEFAULT_RANGE_NS)
    if start_ns >= end_ns:
        raise invalid_query("start", "start must be before end", start)
    rows = await known_channel(request, at)
    reader = views_of(request).history
    try:
        points = await reader.read(*at, start_ns, end_ns, max_points)
    except StoreError as exc:
        raise StoreError(f"history store: {exc}") from exc
    span = max((p.span_ns for p in points), default=0)
    numbers: dict[int, str] = {}
    ids = sorted({p.certificate_id for p in points if p.certificate_id is not None})
    if ids:
        marks = ",".join("?" * len(ids))
        found = await _records(request).query(
            f"SELECT id, number FROM instrument_certificates WHERE id IN ({marks})", ids
        )
        numbers = {int(row["id"]): str(row["number"]) for row in found}
    view = HistoryView(
        **at._asdict(),
        unit=rows[0]["unit"],
        start_ns=start_ns,
        end_ns=end_ns,
        max_points=max_points,
        downsampled=span > 0,
        span_ns=span,
        store=reader.name,
        points=[_point_view(p, numbers) for p in points],
    )
    if format == "json":
        return view
    name = f"history-{'-'.join(at)}"
    rows = [asdict(point) for point in view.points]
    return tabular(rows, format, name, HISTORY_COLUMNS, times=["ts_ns"])  # type: ignore[return-value]  # CSV


def _event(kind: str, body: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
)
async def live(
    request: Request,
    _who: LiveViewer,
    where: Channels,
    interval_ms: Annotated[int, Query(ge=100, le=10_000)] = 500,
) -> StreamingResponse:
    """Live readings and state changes as server-sent events (see the module doc)."""
    live_values = views_of(request).live
    wanted = where.wanted
    interval_s = interval_ms / 1000

    async def events() -> AsyncIterator[bytes]:
        # Subscribe and take the snapshot in one step: no change can fall between them.
        subscription = live_values.subscribe(wanted)
        try:
            yield b"retry: 3000\n\n" + _event("readings", live_values.snapshot(wanted))
            while not subscription.closed:
                try:
                    await asyncio.wait_for(subscription.ready.wait(), HEARTBEAT_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if subscription.closed:
                    break
                readings, states = live_values.take(subscription)
                chunk = b"".join(_event(s["kind"], s) for s in states)
                if readings:
                    chunk += _event("readings", readings)
                if chunk:
                    yield chunk
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(live_values.stopping.wait(), interval_s)
        finally:
            live_values.unsubscribe(subscription)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
