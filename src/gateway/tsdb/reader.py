"""Reading back what the gateway wrote: one protocol per output, one implementation of each
per backend (``sqlite``, ``influx_v1``, ``influx_v2``), one factory (``factory``).

- :class:`PointsReader`, for the dashboard: ``read(site, agent, instrument, channel, start_ns,
  end_ns, max_points)`` returns the points of ``[start_ns, end_ns)`` in time order. When the range
  holds at most ``max_points`` readings they come back raw (``span_ns`` 0, ``count`` 1); otherwise
  they are downsampled into buckets of equal width (``span_ns``, whole milliseconds, at least
  ``(end - start) / max_points``): each point is a bucket, stamped at its start, with the mean,
  minimum, maximum and number of the numeric values in it and the worst quality seen. Buckets
  without readings are left out.
- :class:`PeriodsReader`, for the analytics: the GOOD readings (quality 0) of one series as numpy
  arrays (``read``), or as period statistics (``read_periods``). The SQL query, or the parsing of
  an HTTP body received on the event loop, and the aggregation run on the analytics' worker (a
  process of its own by default), so a large history never holds up ingest; the functions that
  run there are module-level (picklable).

Both raise StoreError when the store cannot answer (down, refusing, or an answer that makes no
sense).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx

from core.errors import StoreError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from gateway.analytics.aggregate import PeriodStat

MS = 1_000_000


@dataclass(frozen=True, slots=True)
class PointValues:
    """What a point of a history says: a reading, or the statistics of a bucket of readings.

    ``value`` is the reading's value (the bucket's mean); None for a reading without a numeric
    value (bad, or text). ``quality``: 0 good, 1 uncertain, 2 bad (a bucket's worst). ``u`` is the
    reading's standard uncertainty; None for buckets. The API publishes these fields as they are.
    """

    ts_ns: int
    value: float | None
    min: float | None
    max: float | None
    count: int
    quality: int | None
    u: float | None
    corrected: float | None = None
    """The value corrected from its certificate (docs/corrections.md; a bucket's mean), None when
    not corrected."""
    u_corrected: float | None = None
    """The corrected value's standard uncertainty (raw readings only)."""
    certificate_id: int | None = None
    """The record store's id of the certificate that corrected it (raw readings only)."""


@dataclass(frozen=True, slots=True)
class HistoryPoint(PointValues):
    """A raw reading (``span_ns`` 0) or a bucket of readings (``span_ns`` its width)."""

    span_ns: int = 0


ChannelKey = tuple[str, str, str, str]
"""(site, agent, instrument, channel)."""


def channel_tags(key: ChannelKey) -> dict[str, str]:
    """A channel's tags as the gateway writes them, by name."""
    site, agent, instrument, channel = key
    return {"site": site, "agent": agent, "instrument": instrument, "channel": channel}


class PointsReader:
    """Reads one channel's history; see the module doc. Raises StoreError when the store cannot
    answer (down, refusing, or an answer that makes no sense).

    The backends subclass it: the range is checked once, here; the backend answers in
    ``_points``."""

    name: str

    async def read(
        self,
        site: str,
        agent: str,
        instrument: str,
        channel: str,
        start_ns: int,
        end_ns: int,
        max_points: int,
    ) -> list[HistoryPoint]:
        """Points of [start_ns, end_ns), raw or downsampled."""
        check_range(start_ns, end_ns, max_points)
        return await self._points((site, agent, instrument, channel), start_ns, end_ns, max_points)

    async def _points(
        self, key: ChannelKey, start_ns: int, end_ns: int, max_points: int
    ) -> list[HistoryPoint]:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""


class HttpPointsReader(PointsReader):
    """A :class:`PointsReader` that asks an HTTP query API: one client, every answer but 200 a
    StoreError."""

    def __init__(
        self,
        url: str,
        *,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 15.0,
        verify_tls: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            verify=verify_tls,
        )

    async def _get(self, path: str, params: dict[str, str]) -> httpx.Response:
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise StoreError(f"{self.url}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    def _unexpected(self, response: httpx.Response) -> StoreError:
        """The error of an answer that makes no sense."""
        return StoreError(f"{self.url}: unexpected answer: {response.text[:300]}")

    async def close(self) -> None:
        """Close the HTTP pool."""
        await self._http.aclose()


def bucket_width_ns(start_ns: int, end_ns: int, max_points: int) -> int:
    """The bucket width that fits the range into at most ``max_points`` buckets, in whole ms."""
    width = math.ceil((end_ns - start_ns) / max(max_points, 1))
    return max(MS, math.ceil(width / MS) * MS)


def check_range(start_ns: int, end_ns: int, max_points: int) -> None:
    if end_ns <= start_ns:
        raise ValueError("the end of a history range must be after its start")
    if max_points < 1:
        raise ValueError("max_points must be at least 1")


def raw_point(
    ts_ns: int,
    value: Any,
    quality: Any,
    u: Any,
    corrected: Any = None,
    u_corrected: Any = None,
    certificate_id: Any = None,
) -> HistoryPoint:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    number = float(value) if numeric else None
    return HistoryPoint(
        ts_ns=int(ts_ns),
        value=number,
        min=number,
        max=number,
        count=1,
        quality=int(quality) if quality is not None else None,
        u=float(u) if u is not None else None,
        corrected=float(corrected) if corrected is not None else None,
        u_corrected=float(u_corrected) if u_corrected is not None else None,
        certificate_id=int(certificate_id) if certificate_id is not None else None,
    )


T = TypeVar("T")
FAR_FUTURE_NS = 2**62
"""An upper time bound past any reading (year 2116)."""


@dataclass(frozen=True)
class SeriesRef:
    """One channel's series, as the gateway writes it."""

    site: str
    agent: str
    instrument: str
    channel: str
    unit: str

    def tags(self) -> dict[str, str]:
        """The series' tags as the gateway writes them (the channel's and the unit), by name."""
        channel = (self.site, self.agent, self.instrument, self.channel)
        return {**channel_tags(channel), "unit": self.unit}


@dataclass(frozen=True)
class RawReadings:
    """Good readings of one series: timestamps (ns), values, standard uncertainties (NaN where a
    reading has none)."""

    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    u: npt.NDArray[np.float64]

    @staticmethod
    def empty() -> RawReadings:
        """No readings."""
        import numpy as np  # here, not with the module: the gateway's writer imports the stores

        return RawReadings(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64))

    @staticmethod
    def of(rows: list[tuple[int, float, float | None]]) -> RawReadings:
        """From (ts, value, u) tuples, sorted by time, one per timestamp."""
        if not rows:
            return RawReadings.empty()
        rows.sort(key=lambda row: row[0])
        import numpy as np

        ts = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        keep = np.concatenate(([True], ts[1:] != ts[:-1]))
        values = np.fromiter((r[1] for r in rows), np.float64, len(rows))
        u = np.fromiter((np.nan if r[2] is None else r[2] for r in rows), np.float64, len(rows))
        return RawReadings(ts[keep], values[keep], u[keep])


class PeriodsReader(Protocol):
    """Reads back what the gateway wrote."""

    name: str

    async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
        """Good readings with ``start_ns <= ts < end_ns``; StoreError if the store cannot say."""
        ...

    async def read_periods(
        self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
    ) -> list[PeriodStat]:
        """The same readings as period statistics (periods from the epoch), computed on the
        analytics' worker."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def to_periods(raw: RawReadings, period_ns: int) -> list[PeriodStat]:
    """On the analytics' worker: raw readings as period statistics. The analytics (scipy) are
    imported here, not with the module: the gateway's writer imports the stores."""
    from gateway.analytics.aggregate import period_stats

    return period_stats(raw.ts, raw.values, raw.u, period_ns)


def parsed_periods(
    parse: Callable[[bytes], RawReadings], body: bytes, period_ns: int
) -> list[PeriodStat]:
    """On the analytics' worker: a store's answer, read by ``parse``, as period statistics."""
    return to_periods(parse(body), period_ns)


class HttpBodyReader:
    """A :class:`PeriodsReader` over HTTP whose bodies are parsed on the analytics' worker.

    A backend says how to ask for a read's body (``_body``; None: nothing to ask for) and which
    module-level function parses it (``parse``: it runs on the worker, so it must pickle)."""

    name: str

    def __init__(
        self,
        url: str,
        executor: Executor,
        timeout_s: float,
        verify: bool,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._executor = executor
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout_s),
            verify=verify,
            headers=headers,
            auth=auth,
            trust_env=False,
        )

    async def _get(self, path: str, params: list[tuple[str, str]]) -> bytes:
        try:
            response = await self._http.get(path, params=tuple(params))
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise StoreError(
                f"{self.url}{path}: HTTP {response.status_code}: {response.text[:300]}"
            )
        return response.content

    async def _parse(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @staticmethod
    def parse(body: bytes) -> RawReadings:
        """A body's good readings (on the worker)."""
        raise NotImplementedError

    async def _body(self, series: SeriesRef, start_ns: int, end_ns: int) -> bytes | None:
        raise NotImplementedError

    async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
        """See :class:`PeriodsReader`."""
        body = await self._body(series, start_ns, end_ns)
        if body is None:
            return RawReadings.empty()
        return await self._parse(self.parse, body)

    async def read_periods(
        self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
    ) -> list[PeriodStat]:
        """See :class:`PeriodsReader`."""
        body = await self._body(series, start_ns, end_ns)
        if body is None:
            return []
        return await self._parse(parsed_periods, self.parse, body, period_ns)

    async def close(self) -> None:
        """Close the HTTP pool."""
        await self._http.aclose()
