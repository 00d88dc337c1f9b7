"""The InfluxDB 1.x write API: ``POST /write?db=&precision=ns``."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import httpx
import orjson

from core.errors import StoreError, StoreRejected
from gateway.tsdb.config import InfluxV1StoreConfig
from gateway.tsdb.reader import (
    ChannelKey,
    HistoryPoint,
    HttpBodyReader,
    HttpPointsReader,
    RawReadings,
    SeriesRef,
    bucket_width_ns,
    channel_tags,
    raw_point,
)
from gateway.tsdb.store import LineProtocolStore

DATA_REFUSED = frozenset({400, 413, 422})
"""HTTP statuses of an InfluxDB write API refusing the data itself (not worth retrying as is)."""


def basic_auth(config: InfluxV1StoreConfig) -> httpx.BasicAuth | None:
    """InfluxDB 1.x credentials, when the config names a user."""
    if config.username is None:
        return None
    password = config.password.resolve() if config.password else ""
    return httpx.BasicAuth(config.username, password)


class InfluxV1Store(LineProtocolStore):
    """See the module doc. influxd answers 204 when all points were written, 400 with the reason
    for malformed lines or field-type conflicts (after writing the good points of the batch)."""

    name = "influxdb_v1"

    def __init__(self, config: InfluxV1StoreConfig) -> None:
        super().__init__()
        self.config = config
        self._http = httpx.AsyncClient(
            base_url=str(config.url).rstrip("/"),
            auth=basic_auth(config),
            timeout=httpx.Timeout(config.timeout_s),
            verify=config.verify_tls,
        )
        self._params = {"db": config.database, "precision": "ns"}
        if config.retention_policy:
            self._params["rp"] = config.retention_policy

    async def open(self) -> None:
        """Create the database if asked to (idempotent in InfluxDB 1.x)."""
        if self.config.create_database:
            name = self.config.database.replace('"', '\\"')
            await self._request("/query", {"q": f'CREATE DATABASE "{name}"'}, None)

    async def _request(self, path: str, params: dict[str, str], body: str | None) -> None:
        try:
            response = await self._http.post(path, params=params, content=body)
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.config.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code < 300:
            return
        reason = f"HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code in DATA_REFUSED:
            raise StoreRejected(f"{self.config.url}: {reason}")
        raise StoreError(f"{self.config.url}: {reason}")

    async def _post(self, body: str) -> None:
        await self._request("/write", self._params, body)

    async def close(self) -> None:
        """Close the HTTP pool."""
        await self._http.aclose()


# -- reading back with InfluxQL (InfluxDB 1.x; 2.x/3.x through their DBRP mapping) ---


def influxql_string(text: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql_identifier(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_where(tags: dict[str, str]) -> str:
    """``"tag" = 'value' AND ...``, names and values escaped."""
    return " AND ".join(
        f"{influxql_identifier(tag)} = {influxql_string(value)}" for tag, value in tags.items()
    )


class InfluxQLPoints(HttpPointsReader):
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
        super().__init__(
            url, auth=auth, headers=headers, timeout_s=timeout_s, verify_tls=verify_tls
        )
        self.database = database
        source = influxql_identifier("reading")
        if retention_policy:
            source = f"{influxql_identifier(retention_policy)}.{source}"
        self._from = source

    async def query(self, statement: str) -> list[dict[str, Any]]:
        """The series of one InfluxQL statement's result (raises StoreError)."""
        response = await self._get("/query", {"db": self.database, "q": statement, "epoch": "ns"})
        try:
            result = response.json()["results"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise self._unexpected(response) from exc
        if "error" in result:
            raise StoreError(f"{self.url}: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    async def _points(
        self, key: ChannelKey, start_ns: int, end_ns: int, max_points: int
    ) -> list[HistoryPoint]:
        where = f"{influxql_where(channel_tags(key))} AND time >= {start_ns} AND time < {end_ns}"
        counted = await self.query(f'SELECT count("quality") FROM {self._from} WHERE {where}')
        count = sum(int(row[1] or 0) for s in counted for row in s.get("values", []))
        if count <= max_points:
            series = await self.query(
                'SELECT "value", "quality", "u", "corrected", "u_corrected", "certificate_id" '
                f"FROM {self._from} WHERE {where}"
            )
            points = [raw_point(*row) for s in series for row in s.get("values", [])]
            points.sort(key=lambda p: p.ts_ns)
            return points
        width = bucket_width_ns(start_ns, end_ns, max_points)
        # InfluxQL aligns buckets to the epoch; the offset aligns them to the range's start.
        offset = start_ns % width
        series = await self.query(
            'SELECT mean("value"), min("value"), max("value"), count("value"), max("quality"), '
            'mean("corrected") '
            f"FROM {self._from} WHERE {where} "
            f"GROUP BY time({width}ns, {offset}ns) fill(none)"
        )
        points = []
        for s in series:
            for ts, mean, low, high, n, worst, corrected in s.get("values", []):
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
                        corrected,
                        span_ns=width,
                    )
                )
        return points


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


class InfluxQLPeriods(HttpBodyReader):
    """InfluxQL ``/query``: InfluxDB 1.x, or 2.x/3.x through their 1.x-compatible API."""

    name = "influxql"
    parse = staticmethod(parse_influxql)

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
        conditions = influxql_where(series.tags())
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
