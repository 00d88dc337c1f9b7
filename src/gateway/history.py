"""Reading a channel's history back from whichever time-series store the gateway writes to.

One interface, :class:`HistoryReader`, with one reader per query API:

- the embedded SQLite store (SQL on a read-only connection of its own, so a long query never
  holds up the writer);
- InfluxQL on ``GET /query`` — InfluxDB 1.x, and InfluxDB 2.x/3.x through the bucket's DBRP
  mapping;
- the Prometheus query API — VictoriaMetrics: ``/api/v1/export`` for raw points,
  ``/api/v1/query_range`` for downsampled ones.

``read(site, agent, instrument, channel, start_ns, end_ns, max_points)`` returns the points of
``[start_ns, end_ns)`` in time order. When the range holds at most ``max_points`` readings they come
back raw (``span_ns`` 0, ``count`` 1); otherwise they are downsampled into buckets of equal width
(``span_ns``, whole milliseconds, at least ``(end - start) / max_points``): each point is a bucket,
stamped at its start, with the mean, minimum, maximum and number of the numeric values in it and
the worst quality seen. Buckets without readings are left out.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from core.errors import StoreError
from gateway.config import (
    InfluxV1StoreConfig,
    InfluxV2StoreConfig,
    SqliteStoreConfig,
)
from gateway.dashboard_config import HistoryQueryConfig
from gateway.threads import in_own_thread

MS = 1_000_000


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """A raw reading (``span_ns`` 0) or a bucket of readings (``span_ns`` its width).

    ``value`` is the reading's value (the bucket's mean); None for a reading without a numeric
    value (bad, or text). ``quality``: 0 good, 1 uncertain, 2 bad (a bucket's worst). ``u`` is the
    reading's standard uncertainty; None for buckets.
    """

    ts_ns: int
    value: float | None
    min: float | None
    max: float | None
    count: int
    quality: int | None
    u: float | None
    span_ns: int = 0


class HistoryReader(Protocol):
    """Reads one channel's history; see the module doc. Raises StoreError when the store cannot
    answer (down, refusing, or an answer that makes no sense)."""

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
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def bucket_width_ns(start_ns: int, end_ns: int, max_points: int) -> int:
    """The bucket width that fits the range into at most ``max_points`` buckets, in whole ms."""
    width = math.ceil((end_ns - start_ns) / max(max_points, 1))
    return max(MS, math.ceil(width / MS) * MS)


def _check_range(start_ns: int, end_ns: int, max_points: int) -> None:
    if end_ns <= start_ns:
        raise ValueError("the end of a history range must be after its start")
    if max_points < 1:
        raise ValueError("max_points must be at least 1")


def _raw(ts_ns: int, value: Any, quality: Any, u: Any) -> HistoryPoint:
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
    )


# -- SQLite ---------------------------------------------------------------------------------------


class SqliteHistory:
    """History from the embedded store's file, on a read-only connection per query, in a thread
    per query (queries are occasional; no thread waits between them)."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

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
        """See :class:`HistoryReader`."""
        _check_range(start_ns, end_ns, max_points)
        return await in_own_thread(
            self._read,
            (site, agent, instrument, channel),
            start_ns,
            end_ns,
            max_points,
            name="history-sqlite",
        )

    def _read(
        self, key: tuple[str, str, str, str], start_ns: int, end_ns: int, max_points: int
    ) -> list[HistoryPoint]:
        if not self.path.exists():
            return []  # nothing written yet
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: cannot open: {exc}") from exc
        try:
            return self._query(db, key, start_ns, end_ns, max_points)
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                return []  # the store has not created its tables yet
            raise StoreError(f"sqlite store {self.path}: {exc}") from exc
        finally:
            db.close()

    @staticmethod
    def _query(
        db: sqlite3.Connection,
        key: tuple[str, str, str, str],
        start_ns: int,
        end_ns: int,
        max_points: int,
    ) -> list[HistoryPoint]:
        ids = [
            row[0]
            for row in db.execute(
                "SELECT id FROM series WHERE site=? AND agent=? AND instrument=? AND channel=?",
                key,
            )
        ]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        where = f"series_id IN ({marks}) AND ts >= ? AND ts < ?"
        args = (*ids, start_ns, end_ns)
        (count,) = db.execute(f"SELECT count(*) FROM readings WHERE {where}", args).fetchone()
        if count <= max_points:
            rows = db.execute(
                f"SELECT ts, value, quality, u FROM readings WHERE {where} ORDER BY ts", args
            )
            return [_raw(*row) for row in rows]
        width = bucket_width_ns(start_ns, end_ns, max_points)
        rows = db.execute(
            "SELECT (ts - ?) / ? AS bucket, avg(value), min(value), max(value), count(value), "
            f"max(quality) FROM readings WHERE {where} GROUP BY bucket ORDER BY bucket",
            (start_ns, width, *args),
        )
        return [
            HistoryPoint(start_ns + b * width, mean, low, high, n, worst, None, width)
            for b, mean, low, high, n, worst in rows
        ]

    async def close(self) -> None:
        """Nothing held between queries."""


# -- InfluxQL -------------------------------------------------------------------------------------


def influxql_string(text: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql_identifier(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxQLHistory:
    """History through InfluxQL ``GET /query`` (InfluxDB 1.x; 2.x/3.x by DBRP mapping)."""

    name = "influxql"

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 15.0,
        verify_tls: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        source = influxql_identifier("reading")
        if retention_policy:
            source = f"{influxql_identifier(retention_policy)}.{source}"
        self._from = source
        self._http = httpx.AsyncClient(
            base_url=self.url,
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            verify=verify_tls,
        )

    async def query(self, statement: str) -> list[dict[str, Any]]:
        """The series of one InfluxQL statement's result (raises StoreError)."""
        params = {"db": self.database, "q": statement, "epoch": "ns"}
        try:
            response = await self._http.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise StoreError(f"{self.url}: HTTP {response.status_code}: {response.text[:300]}")
        try:
            result = response.json()["results"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise StoreError(f"{self.url}: unexpected answer: {response.text[:300]}") from exc
        if "error" in result:
            raise StoreError(f"{self.url}: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

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
        """See :class:`HistoryReader`."""
        _check_range(start_ns, end_ns, max_points)
        where = " AND ".join(
            f"{influxql_identifier(tag)} = {influxql_string(value)}"
            for tag, value in (
                ("site", site),
                ("agent", agent),
                ("instrument", instrument),
                ("channel", channel),
            )
        )
        where += f" AND time >= {start_ns} AND time < {end_ns}"
        counted = await self.query(f'SELECT count("quality") FROM {self._from} WHERE {where}')
        count = sum(int(row[1] or 0) for s in counted for row in s.get("values", []))
        if count <= max_points:
            series = await self.query(
                f'SELECT "value", "quality", "u" FROM {self._from} WHERE {where}'
            )
            points = [_raw(*row) for s in series for row in s.get("values", [])]
            points.sort(key=lambda p: p.ts_ns)
            return points
        width = bucket_width_ns(start_ns, end_ns, max_points)
        # InfluxQL aligns buckets to the epoch; the offset aligns them to the range's start.
        offset = start_ns % width
        series = await self.query(
            'SELECT mean("value"), min("value"), max("value"), count("value"), max("quality") '
            f"FROM {self._from} WHERE {where} "
            f"GROUP BY time({width}ns, {offset}ns) fill(none)"
        )
        points = []
        for s in series:
            for ts, mean, low, high, n, worst in s.get("values", []):
                if n is None and worst is None:
                    continue
                points.append(
                    HistoryPoint(
                        int(ts),
                        mean,
                        low,
                        high,
                        int(n or 0),
                        int(worst) if worst is not None else None,
                        None,
                        width,
                    )
                )
        return points

    async def close(self) -> None:
        """Close the HTTP pool."""
        await self._http.aclose()


# -- Prometheus query API (VictoriaMetrics) --------------------------------------------------------


def promql_string(value: str) -> str:
    """A double-quoted PromQL/MetricsQL string (a label value in a series selector)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def promql_matchers(labels: dict[str, str]) -> str:
    """``label="value",...`` with the values escaped."""
    return ",".join(f"{k}={promql_string(v)}" for k, v in labels.items())


def promql_selector(metric: str, labels: dict[str, str]) -> str:
    """``metric{label="value",...}``."""
    return f"{metric}{{{promql_matchers(labels)}}}"


class PrometheusHistory:
    """History from VictoriaMetrics: ``/api/v1/export`` (raw) and ``/api/v1/query_range``.

    VictoriaMetrics stores ``reading`` fields as metrics ``reading_value``, ``reading_quality``,
    ``reading_u`` at millisecond resolution, and its query API does not see the last 30 s
    (``-search.latencyOffset``): downsampled views end there, raw ones do not.
    """

    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 15.0,
        verify_tls: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
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

    async def _instant(self, query: str, at_ns: int) -> float:
        response = await self._get("/api/v1/query", {"query": query, "time": f"{at_ns / 1e9:.3f}"})
        try:
            result = response.json()["data"]["result"]
            return sum(float(item["value"][1]) for item in result)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise StoreError(f"{self.url}: unexpected answer: {response.text[:300]}") from exc

    async def _range(
        self, query: str, start_ns: int, end_ns: int, step_ns: int
    ) -> dict[int, float]:
        response = await self._get(
            "/api/v1/query_range",
            {
                "query": query,
                "start": f"{start_ns / 1e9:.3f}",
                "end": f"{end_ns / 1e9:.3f}",
                "step": f"{step_ns // MS}ms",
                # Without it VictoriaMetrics aligns long ranges to multiples of the step (for
                # its cache), which would shift every bucket.
                "nocache": "1",
            },
        )
        try:
            out: dict[int, float] = {}
            for item in response.json()["data"]["result"]:
                for ts, value in item["values"]:
                    out[round(float(ts) * 1000) * MS] = float(value)
            return out
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise StoreError(f"{self.url}: unexpected answer: {response.text[:300]}") from exc

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
        """See :class:`HistoryReader`."""
        _check_range(start_ns, end_ns, max_points)
        labels = {"site": site, "agent": agent, "instrument": instrument, "channel": channel}
        quality = promql_selector("reading_quality", labels)
        span_ms = max(1, (end_ns - start_ns) // MS)
        count = await self._instant(f"sum(count_over_time({quality}[{span_ms}ms]))", end_ns - 1)
        if count <= max_points:
            return await self._export(labels, start_ns, end_ns)
        width = bucket_width_ns(start_ns, end_ns, max_points)
        value = promql_selector("reading_value", labels)
        window = f"[{width // MS}ms]"
        queries = {
            "sum": f"sum(sum_over_time({value}{window}))",
            "min": f"min(min_over_time({value}{window}))",
            "max": f"max(max_over_time({value}{window}))",
            "count": f"sum(count_over_time({value}{window}))",
            "quality": f"max(max_over_time({quality}{window}))",
        }
        # A range query's point at t covers (t - step, t]: ask for the bucket ends.
        first_end = start_ns + width
        async with asyncio.TaskGroup() as group:
            tasks = {
                name: group.create_task(self._range(q, first_end, end_ns, width))
                for name, q in queries.items()
            }
        results = {name: task.result() for name, task in tasks.items()}
        points = []
        for bucket_end in sorted(set(results["quality"]) | set(results["count"])):
            n = int(results["count"].get(bucket_end, 0))
            worst = results["quality"].get(bucket_end)
            total = results["sum"].get(bucket_end)
            points.append(
                HistoryPoint(
                    bucket_end - width,
                    total / n if n and total is not None else None,
                    results["min"].get(bucket_end) if n else None,
                    results["max"].get(bucket_end) if n else None,
                    n,
                    int(worst) if worst is not None else None,
                    None,
                    width,
                )
            )
        return points

    async def _export(
        self, labels: dict[str, str], start_ns: int, end_ns: int
    ) -> list[HistoryPoint]:
        match = '{__name__=~"reading_(value|quality|u)",' + promql_matchers(labels) + "}"
        response = await self._get(
            "/api/v1/export",
            {
                "match[]": match,
                "start": f"{start_ns / 1e9:.3f}",
                "end": f"{(end_ns - 1) / 1e9:.3f}",
            },
        )
        fields: dict[int, dict[str, float]] = {}
        try:
            for line in response.text.splitlines():
                if not line.strip():
                    continue
                series = json.loads(line)
                name = series["metric"]["__name__"].removeprefix("reading_")
                for ts_ms, value in zip(series["timestamps"], series["values"], strict=True):
                    ts = int(ts_ms) * MS
                    if start_ns <= ts < end_ns:
                        fields.setdefault(ts, {})[name] = value
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.url}: unexpected export line: {exc}") from exc
        return [
            _raw(ts, f.get("value"), f.get("quality"), f.get("u"))
            for ts, f in sorted(fields.items())
            if "quality" in f or "value" in f
        ]

    async def close(self) -> None:
        """Close the HTTP pool."""
        await self._http.aclose()


class AutoHistory:
    """A v2-API store of unknown kind: asks the server once which query API it has."""

    name = "auto"

    def __init__(self, store: InfluxV2StoreConfig, query: HistoryQueryConfig) -> None:
        self.store = store
        self.query = query
        self._chosen: HistoryReader | None = None
        self._lock = asyncio.Lock()

    async def _choose(self) -> HistoryReader:
        async with self._lock:
            if self._chosen is None:
                url = str(self.query.url or self.store.url).rstrip("/")
                try:
                    async with httpx.AsyncClient(
                        timeout=httpx.Timeout(self.query.timeout_s),
                        verify=self.store.verify_tls,
                    ) as http:
                        response = await http.get(url + "/api/v1/status/buildinfo")
                except httpx.HTTPError as exc:
                    raise StoreError(f"{url}: {type(exc).__name__}: {exc}") from exc
                prometheus = False
                if response.status_code == 200:
                    try:
                        prometheus = response.json().get("status") == "success"
                    except ValueError:
                        prometheus = False
                self._chosen = _v2_reader(self.store, self.query, prometheus)
            return self._chosen

    @property
    def chosen(self) -> str | None:
        """The query API found (None until the first read)."""
        return self._chosen.name if self._chosen else None

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
        """See :class:`HistoryReader`."""
        reader = self._chosen or await self._choose()
        return await reader.read(site, agent, instrument, channel, start_ns, end_ns, max_points)

    async def close(self) -> None:
        """Close the chosen reader."""
        if self._chosen is not None:
            await self._chosen.close()


def _v2_reader(
    store: InfluxV2StoreConfig, query: HistoryQueryConfig, prometheus: bool
) -> HistoryReader:
    url = str(query.url or store.url)
    token = store.token.resolve() if store.token else None
    if prometheus:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return PrometheusHistory(
            url, headers=headers, timeout_s=query.timeout_s, verify_tls=store.verify_tls
        )
    headers = {"Authorization": f"Token {token}"} if token else None
    return InfluxQLHistory(
        url,
        store.bucket,
        headers=headers,
        timeout_s=query.timeout_s,
        verify_tls=store.verify_tls,
    )


def build_history_reader(
    store: SqliteStoreConfig | InfluxV2StoreConfig | InfluxV1StoreConfig,
    query: HistoryQueryConfig | None = None,
) -> HistoryReader:
    """The reader for the store the gateway writes to."""
    query = query or HistoryQueryConfig()
    if isinstance(store, SqliteStoreConfig):
        return SqliteHistory(store.path)
    if isinstance(store, InfluxV1StoreConfig):
        auth = None
        if store.username is not None:
            password = store.password.resolve() if store.password else ""
            auth = httpx.BasicAuth(store.username, password)
        return InfluxQLHistory(
            str(query.url or store.url),
            store.database,
            retention_policy=store.retention_policy,
            auth=auth,
            timeout_s=query.timeout_s,
            verify_tls=store.verify_tls,
        )
    if query.api == "auto":
        return AutoHistory(store, query)
    return _v2_reader(store, query, query.api == "prometheus")
