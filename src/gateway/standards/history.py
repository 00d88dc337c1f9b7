"""Reading a channel's history back from the time-series store, for the analytics.

One reader per kind of store, each returning the GOOD readings (quality 0) of one series in a
time range as numpy arrays:

- ``SqliteHistory``: the embedded store, through its own read-only connection (SQLite WAL lets
  it read while the writer writes), on the analytics' thread.
- ``InfluxQLHistory``: ``GET /query`` (InfluxQL, ``epoch=ns``, chunked): InfluxDB 1.x, and
  InfluxDB 2.x/3.x through their 1.x-compatible endpoint (a DBRP mapping names the database).
- ``VictoriaHistory``: VictoriaMetrics' ``/api/v1/export`` (it has neither Flux nor InfluxQL);
  the ``reading_value``, ``reading_u`` and ``reading_quality`` series are joined on their
  timestamps, which VictoriaMetrics keeps to the millisecond.

``read_periods`` hands back period statistics, not readings: the SQL query, or the parsing of
an HTTP body received on the event loop, and the aggregation run on the analytics' worker (a
process of its own by default), so a large history never holds up ingest. The functions that
run there are module-level (picklable).
"""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import numpy as np
import numpy.typing as npt
import orjson

from core.errors import StoreError
from gateway.config import (
    InfluxV1StoreConfig,
    InfluxV2StoreConfig,
    SqliteStoreConfig,
    StoreConfig,
)
from gateway.history import influxql_identifier, influxql_string, promql_string
from gateway.standards.config import HistoryConfig
from gateway.standards.evaluation import PeriodStat, aggregate

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
        return RawReadings(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64))

    @staticmethod
    def of(rows: list[tuple[int, float, float | None]]) -> RawReadings:
        """From (ts, value, u) tuples, sorted by time, one per timestamp."""
        if not rows:
            return RawReadings.empty()
        rows.sort(key=lambda row: row[0])
        ts = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        keep = np.concatenate(([True], ts[1:] != ts[:-1]))
        values = np.fromiter((r[1] for r in rows), np.float64, len(rows))
        u = np.fromiter((np.nan if r[2] is None else r[2] for r in rows), np.float64, len(rows))
        return RawReadings(ts[keep], values[keep], u[keep])


class HistoryReader(Protocol):
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


def _periods(raw: RawReadings, period_ns: int) -> list[PeriodStat]:
    return aggregate(raw.ts, raw.values, raw.u, period_ns)


_CONNECTIONS: dict[str, sqlite3.Connection] = {}
"""Read-only connections of the worker (one worker: one user of each)."""


def _sqlite_connection(path: Path) -> sqlite3.Connection:
    key = str(path)
    db = _CONNECTIONS.get(key)
    if db is None:
        uri = f"file:{urllib.parse.quote(key)}?mode=ro"
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5.0)
        _CONNECTIONS[key] = db
    return db


def sqlite_raw(path: Path, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
    """On the worker: good readings of a series from the embedded store."""
    try:
        rows = (
            _sqlite_connection(path)
            .execute(
                "SELECT r.ts, r.value, r.u FROM readings r JOIN series s ON r.series_id = s.id "
                "WHERE s.site=? AND s.agent=? AND s.instrument=? AND s.channel=? AND s.unit=? "
                "AND r.quality=0 AND r.value IS NOT NULL AND r.ts >= ? AND r.ts < ?",
                (
                    series.site,
                    series.agent,
                    series.instrument,
                    series.channel,
                    series.unit,
                    start_ns,
                    end_ns,
                ),
            )
            .fetchall()
        )
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return RawReadings.empty()  # nothing written yet
        raise StoreError(f"sqlite store {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: {exc}") from exc
    return RawReadings.of(rows)


def sqlite_periods(
    path: Path, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
) -> list[PeriodStat]:
    """On the worker: period statistics of a series from the embedded store."""
    return _periods(sqlite_raw(path, series, start_ns, end_ns), period_ns)


def sqlite_close(path: Path) -> None:
    """On the worker: close its connection to a store."""
    db = _CONNECTIONS.pop(str(path), None)
    if db is not None:
        db.close()


class SqliteHistory:
    """The embedded store, read with SQL on the analytics' worker."""

    name = "sqlite"

    def __init__(self, path: Path, executor: Executor) -> None:
        self.path = path
        self._executor = executor

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
        """See :class:`HistoryReader`."""
        return await self._run(sqlite_raw, self.path, series, start_ns, end_ns)

    async def read_periods(
        self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
    ) -> list[PeriodStat]:
        """See :class:`HistoryReader`."""
        return await self._run(sqlite_periods, self.path, series, start_ns, end_ns, period_ns)

    async def close(self) -> None:
        """Close the worker's connection."""
        await self._run(sqlite_close, self.path)


class _HttpReader:
    """An HTTP client whose bodies are parsed on the analytics' thread."""

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

    async def close(self) -> None:
        """Close the HTTP pool."""
        await self._http.aclose()


def parse_influxql(body: bytes) -> RawReadings:
    """Rows of a (possibly chunked) InfluxQL answer: columns time, value, u."""
    rows: list[tuple[int, float, float | None]] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        answer = orjson.loads(line)
        if "error" in answer:
            raise StoreError(f"InfluxQL: {answer['error']}")
        for result in answer.get("results", []):
            if "error" in result:
                raise StoreError(f"InfluxQL: {result['error']}")
            for series in result.get("series", []):
                columns = series["columns"]
                at_time, at_value, at_u = (
                    columns.index("time"),
                    columns.index("value"),
                    columns.index("u"),
                )
                for row in series["values"]:
                    value = row[at_value]
                    if value is None:
                        continue
                    rows.append((int(row[at_time]), float(value), row[at_u]))
    return RawReadings.of(rows)


def influxql_periods(body: bytes, period_ns: int) -> list[PeriodStat]:
    """On the worker: an InfluxQL answer as period statistics."""
    return _periods(parse_influxql(body), period_ns)


class InfluxQLHistory(_HttpReader):
    """InfluxQL ``/query``: InfluxDB 1.x, or 2.x/3.x through their 1.x-compatible API."""

    name = "influxql"

    def __init__(
        self,
        url: str,
        database: str,
        executor: Executor,
        *,
        retention_policy: str | None = None,
        timeout_s: float = 30.0,
        verify: bool = True,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        super().__init__(url, executor, timeout_s, verify, headers, auth)
        self.database = database
        self.retention_policy = retention_policy

    def query_text(self, series: SeriesRef, start_ns: int, end_ns: int) -> str:
        """The InfluxQL statement of one read."""
        source = influxql_identifier("reading")
        if self.retention_policy:
            source = (
                f"{influxql_identifier(self.database)}."
                f"{influxql_identifier(self.retention_policy)}.{source}"
            )
        conditions = " AND ".join(
            f"{influxql_identifier(tag)} = {influxql_string(value)}"
            for tag, value in (
                ("site", series.site),
                ("agent", series.agent),
                ("instrument", series.instrument),
                ("channel", series.channel),
                ("unit", series.unit),
            )
        )
        return (
            f'SELECT "value", "u" FROM {source} WHERE {conditions} AND "quality" = 0 '
            f"AND time >= {start_ns} AND time < {end_ns}"
        )

    async def _body(self, series: SeriesRef, start_ns: int, end_ns: int) -> bytes:
        return await self._get(
            "/query",
            [
                ("db", self.database),
                ("q", self.query_text(series, start_ns, end_ns)),
                ("epoch", "ns"),
                ("chunked", "true"),
                ("chunk_size", "20000"),
            ],
        )

    async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
        """See :class:`HistoryReader`."""
        return await self._parse(parse_influxql, await self._body(series, start_ns, end_ns))

    async def read_periods(
        self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
    ) -> list[PeriodStat]:
        """See :class:`HistoryReader`."""
        body = await self._body(series, start_ns, end_ns)
        return await self._parse(influxql_periods, body, period_ns)


def parse_victoria_export(body: bytes) -> RawReadings:
    """JSON lines of ``/api/v1/export``: reading_value/u/quality joined on their timestamps."""
    values: dict[int, float] = {}
    uncertainties: dict[int, float] = {}
    good: set[int] = set()
    for line in body.splitlines():
        if not line.strip():
            continue
        series = orjson.loads(line)
        name = series["metric"].get("__name__")
        samples = zip(series["timestamps"], series["values"], strict=True)
        if name == "reading_value":
            values.update((int(ts), float(v)) for ts, v in samples)
        elif name == "reading_u":
            uncertainties.update((int(ts), float(v)) for ts, v in samples)
        elif name == "reading_quality":
            good.update(int(ts) for ts, v in samples if v == 0)
    rows = [
        (ts * 1_000_000, value, uncertainties.get(ts)) for ts, value in values.items() if ts in good
    ]
    return RawReadings.of(rows)


def victoria_periods(body: bytes, period_ns: int) -> list[PeriodStat]:
    """On the worker: a VictoriaMetrics export as period statistics."""
    return _periods(parse_victoria_export(body), period_ns)


class VictoriaHistory(_HttpReader):
    """VictoriaMetrics' export API."""

    name = "victoriametrics"

    def match(self, series: SeriesRef) -> str:
        """The series selector of one channel's readings."""
        labels = ",".join(
            f"{key}={promql_string(value)}"
            for key, value in (
                ("site", series.site),
                ("agent", series.agent),
                ("instrument", series.instrument),
                ("channel", series.channel),
                ("unit", series.unit),
            )
        )
        return f'{{__name__=~"reading_(value|u|quality)",{labels}}}'

    async def _body(self, series: SeriesRef, start_ns: int, end_ns: int) -> bytes | None:
        # VictoriaMetrics' range is inclusive and in ms (it keeps timestamps to the ms).
        start_ms = -(-start_ns // 1_000_000)
        end_ms = -(-end_ns // 1_000_000) - 1
        if end_ms < start_ms:
            return None
        return await self._get(
            "/api/v1/export",
            [
                ("match[]", self.match(series)),
                ("start", f"{start_ms / 1000:.3f}"),
                ("end", f"{min(end_ms, 2**52) / 1000:.3f}"),
            ],
        )

    async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
        """See :class:`HistoryReader`."""
        body = await self._body(series, start_ns, end_ns)
        if body is None:
            return RawReadings.empty()
        return await self._parse(parse_victoria_export, body)

    async def read_periods(
        self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
    ) -> list[PeriodStat]:
        """See :class:`HistoryReader`."""
        body = await self._body(series, start_ns, end_ns)
        if body is None:
            return []
        return await self._parse(victoria_periods, body, period_ns)


class AutoV2History:
    """An InfluxDB v2 API store: VictoriaMetrics if the server offers ``/api/v1/export``, else
    InfluxDB's 1.x-compatible ``/query``. Asked once, on the first read that gets an answer."""

    def __init__(self, victoria: VictoriaHistory, influxql: InfluxQLHistory) -> None:
        self._victoria = victoria
        self._influxql = influxql
        self.chosen: HistoryReader | None = None
        self.name = "auto"

    async def _choose(self) -> HistoryReader:
        if self.chosen is None:
            try:
                await self._victoria._get(
                    "/api/v1/export",
                    [("match[]", '{__name__="etalon_probe"}'), ("start", "0"), ("end", "1")],
                )
                self.chosen = self._victoria
            except StoreError as exc:
                if "HTTP" not in str(exc):
                    raise  # the server did not answer: ask again next time
                self.chosen = self._influxql
            self.name = self.chosen.name
        return self.chosen

    async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
        """See :class:`HistoryReader`."""
        return await (await self._choose()).read(series, start_ns, end_ns)

    async def read_periods(
        self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
    ) -> list[PeriodStat]:
        """See :class:`HistoryReader`."""
        reader = await self._choose()
        return await reader.read_periods(series, start_ns, end_ns, period_ns)

    async def close(self) -> None:
        """Close both clients."""
        await self._victoria.close()
        await self._influxql.close()


def build_history_reader(
    store: StoreConfig, history: HistoryConfig, executor: Executor
) -> HistoryReader:
    """The reader for the gateway's store, as ``history.api`` asks."""
    if isinstance(store, SqliteStoreConfig):
        if history.api not in ("auto", "sqlite"):
            raise StoreError(f"standards.history.api {history.api} does not read a sqlite store")
        return SqliteHistory(store.path, executor)
    if isinstance(store, InfluxV1StoreConfig):
        if history.api not in ("auto", "influxql"):
            raise StoreError(f"standards.history.api {history.api} does not read InfluxDB 1.x")
        auth = None
        if store.username is not None:
            password = store.password.resolve() if store.password else ""
            auth = httpx.BasicAuth(store.username, password)
        return InfluxQLHistory(
            str(store.url),
            history.database or store.database,
            executor,
            retention_policy=store.retention_policy,
            timeout_s=store.timeout_s,
            verify=store.verify_tls,
            auth=auth,
        )
    assert isinstance(store, InfluxV2StoreConfig)
    if history.api == "sqlite":
        raise StoreError("standards.history.api sqlite does not read an InfluxDB v2 API store")
    headers: dict[str, Any] = {}
    if store.token is not None:
        headers["Authorization"] = f"Token {store.token.resolve()}"

    def victoria() -> VictoriaHistory:
        return VictoriaHistory(str(store.url), executor, store.timeout_s, store.verify_tls, headers)

    def influxql() -> InfluxQLHistory:
        return InfluxQLHistory(
            str(store.url),
            history.database or store.bucket,
            executor,
            timeout_s=store.timeout_s,
            verify=store.verify_tls,
            headers=headers,
        )

    if history.api == "victoriametrics":
        return victoria()
    if history.api == "influxql":
        return influxql()
    return AutoV2History(victoria(), influxql())
