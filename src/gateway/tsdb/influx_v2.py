"""The InfluxDB v2 write API (``/api/v2/write``) through influxdb-client.

Works with InfluxDB 2.x/3.x, InfluxDB Cloud and VictoriaMetrics. influxdb-client is blocking, so
writes run on one dedicated thread. Its own retries are off: the gateway's writer owns retry and
backoff, and must see every failure.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
import orjson

from core.errors import StoreError, StoreRejected
from gateway.tsdb.config import HistoryQueryConfig, InfluxV2StoreConfig
from gateway.tsdb.influx_v1 import DATA_REFUSED, InfluxQLPeriods, InfluxQLPoints
from gateway.tsdb.reader import (
    MS,
    ChannelKey,
    HistoryPoint,
    HttpBodyReader,
    HttpPointsReader,
    PeriodsReader,
    PointsReader,
    RawReadings,
    SeriesRef,
    bucket_width_ns,
    channel_tags,
    raw_point,
)
from gateway.tsdb.store import LineProtocolStore

if TYPE_CHECKING:
    from gateway.analytics.aggregate import PeriodStat


class InfluxV2Store(LineProtocolStore):
    """See the module doc."""

    name = "influxdb_v2"

    def __init__(self, config: InfluxV2StoreConfig) -> None:
        # influxdb-client is imported by the writer alone: the readers of this module run in the
        # analytics' worker process too, which must start fast.
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        super().__init__()
        self.config = config
        # Threads for the gateway's concurrent writes (influxdb-client's pool is thread-safe).
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="influx-v2")
        token = config.token.resolve() if config.token else ""
        self._client = InfluxDBClient(
            url=str(config.url).rstrip("/"),
            token=token,
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            enable_gzip=config.gzip,
            verify_ssl=config.verify_tls,
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    async def open(self) -> None:
        """Nothing to prepare: the bucket must exist (servers differ in how it is created)."""

    def _write_blocking(self, body: str) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            self._write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record=body,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]  # its stubs say enum, it is a str
            )
        except ApiException as exc:
            reason = f"HTTP {exc.status}: {(exc.body or exc.reason or '')!s:.300}"
            if exc.status in DATA_REFUSED:
                raise StoreRejected(f"{self.config.url}: {reason}") from exc
            raise StoreError(f"{self.config.url}: {reason}") from exc
        except (HTTPError, OSError) as exc:
            raise StoreError(f"{self.config.url}: {type(exc).__name__}: {exc}") from exc

    async def _post(self, body: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._write_blocking, body)

    async def close(self) -> None:
        """Close the HTTP pool and the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._client.close)
        self._executor.shutdown(wait=True)


# -- reading back: the dashboard's points (Prometheus API of VictoriaMetrics, or InfluxQL) ---


def promql_string(value: str) -> str:
    """A double-quoted PromQL/MetricsQL string (a label value in a series selector)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def promql_matchers(labels: dict[str, str]) -> str:
    """``label="value",...`` with the values escaped."""
    return ",".join(f"{k}={promql_string(v)}" for k, v in labels.items())


def promql_selector(metric: str, labels: dict[str, str]) -> str:
    """``metric{label="value",...}``."""
    return f"{metric}{{{promql_matchers(labels)}}}"


class PrometheusPoints(HttpPointsReader):
    """History from VictoriaMetrics: ``/api/v1/export`` (raw) and ``/api/v1/query_range``.

    VictoriaMetrics stores ``reading`` fields as metrics ``reading_value``, ``reading_quality``,
    ``reading_u`` at millisecond resolution, and its query API does not see the last 30 s
    (``-search.latencyOffset``): downsampled views end there, raw ones do not.
    """

    name = "prometheus"

    async def _instant(self, query: str, at_ns: int) -> float:
        response = await self._get("/api/v1/query", {"query": query, "time": f"{at_ns / 1e9:.3f}"})
        try:
            result = response.json()["data"]["result"]
            return sum(float(item["value"][1]) for item in result)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise self._unexpected(response) from exc

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
            raise self._unexpected(response) from exc

    async def _points(
        self, key: ChannelKey, start_ns: int, end_ns: int, max_points: int
    ) -> list[HistoryPoint]:
        labels = channel_tags(key)
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
                    span_ns=width,
                )
            )
        return points

    async def _export(
        self, labels: dict[str, str], start_ns: int, end_ns: int
    ) -> list[HistoryPoint]:
        match = (
            '{__name__=~"reading_(value|quality|u|corrected|u_corrected|certificate_id)",'
            + promql_matchers(labels)
            + "}"
        )
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
            raw_point(
                ts,
                f.get("value"),
                f.get("quality"),
                f.get("u"),
                f.get("corrected"),
                f.get("u_corrected"),
                f.get("certificate_id"),
            )
            for ts, f in sorted(fields.items())
            if "quality" in f or "value" in f
        ]


class AutoPoints(PointsReader):
    """A v2-API store of unknown kind: asks the server once which query API it has."""

    name = "auto"

    def __init__(self, store: InfluxV2StoreConfig, query: HistoryQueryConfig) -> None:
        self.store = store
        self.query = query
        self._chosen: PointsReader | None = None
        self._lock = asyncio.Lock()

    async def _choose(self) -> PointsReader:
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
                self._chosen = v2_points_reader(self.store, self.query, prometheus)
            return self._chosen

    @property
    def chosen(self) -> str | None:
        """The query API found (None until the first read)."""
        return self._chosen.name if self._chosen else None

    async def _points(
        self, key: ChannelKey, start_ns: int, end_ns: int, max_points: int
    ) -> list[HistoryPoint]:
        reader = self._chosen or await self._choose()
        return await reader.read(*key, start_ns, end_ns, max_points)

    async def close(self) -> None:
        """Close the chosen reader."""
        if self._chosen is not None:
            await self._chosen.close()


def v2_points_reader(
    store: InfluxV2StoreConfig, query: HistoryQueryConfig, prometheus: bool
) -> PointsReader:
    url = str(query.url or store.url)
    token = store.token.resolve() if store.token else None
    if prometheus:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return PrometheusPoints(
            url, headers=headers, timeout_s=query.timeout_s, verify_tls=store.verify_tls
        )
    headers = {"Authorization": f"Token {token}"} if token else None
    return InfluxQLPoints(
        url,
        store.bucket,
        headers=headers,
        timeout_s=query.timeout_s,
        verify_tls=store.verify_tls,
    )


# -- reading back: the analytics' periods (VictoriaMetrics' export, or InfluxQL) -------------------


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


class VictoriaPeriods(HttpBodyReader):
    """VictoriaMetrics' export API."""

    name = "victoriametrics"
    parse = staticmethod(parse_victoria_export)

    def match(self, series: SeriesRef) -> str:
        """The series selector of one channel's readings."""
        labels = promql_matchers(series.tags())
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


class AutoV2Periods:
    """An InfluxDB v2 API store: VictoriaMetrics if the server offers ``/api/v1/export``, else
    InfluxDB's 1.x-compatible ``/query``. Asked once, on the first read that gets an answer."""

    def __init__(self, victoria: VictoriaPeriods, influxql: InfluxQLPeriods) -> None:
        self._victoria = victoria
        self._influxql = influxql
        self.chosen: PeriodsReader | None = None
        self.name = "auto"

    async def _choose(self) -> PeriodsReader:
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
        """See :class:`PeriodsReader`."""
        return await (await self._choose()).read(series, start_ns, end_ns)

    async def read_periods(
        self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
    ) -> list[PeriodStat]:
        """See :class:`PeriodsReader`."""
        reader = await self._choose()
        return await reader.read_periods(series, start_ns, end_ns, period_ns)

    async def close(self) -> None:
        """Close both clients."""
        await self._victoria.close()
        await self._influxql.close()
