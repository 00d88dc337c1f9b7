"""The one factory of the time-series room: the store a config names, and its readers.

The client libraries of a backend are imported only when that backend is built.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from core.errors import StoreError
from gateway.tsdb.config import (
    HistoryQueryConfig,
    InfluxV1StoreConfig,
    InfluxV2StoreConfig,
    SqliteStoreConfig,
    StoreConfig,
)
from gateway.tsdb.reader import PeriodsReader, PointsReader
from gateway.tsdb.store import Store

if TYPE_CHECKING:
    from gateway.tsdb.influx_v1 import InfluxQLPeriods
    from gateway.tsdb.influx_v2 import VictoriaPeriods


class PeriodsQuery(Protocol):
    """How the analytics ask to read (``standards.history`` in a gateway config)."""

    @property
    def api(self) -> str:
        """``auto``, ``sqlite``, ``influxql`` or ``victoriametrics``."""
        ...

    @property
    def database(self) -> str | None:
        """InfluxQL database of a v2 API store, if not the bucket's name."""
        ...


def build_store(config: SqliteStoreConfig | InfluxV2StoreConfig | InfluxV1StoreConfig) -> Store:
    """The store a config names (its client library is imported only now)."""
    if isinstance(config, InfluxV2StoreConfig):
        from gateway.tsdb.influx_v2 import InfluxV2Store

        return InfluxV2Store(config)
    if isinstance(config, InfluxV1StoreConfig):
        from gateway.tsdb.influx_v1 import InfluxV1Store

        return InfluxV1Store(config)
    from gateway.tsdb.sqlite import SqliteStore

    return SqliteStore(config)


def build_points_reader(
    store: SqliteStoreConfig | InfluxV2StoreConfig | InfluxV1StoreConfig,
    query: HistoryQueryConfig | None = None,
) -> PointsReader:
    """The reader for the store the gateway writes to."""
    query = query or HistoryQueryConfig()
    if isinstance(store, SqliteStoreConfig):
        from gateway.tsdb.sqlite import SqlitePoints

        return SqlitePoints(store.path)
    if isinstance(store, InfluxV1StoreConfig):
        from gateway.tsdb.influx_v1 import InfluxQLPoints, basic_auth

        return InfluxQLPoints(
            str(query.url or store.url),
            store.database,
            retention_policy=store.retention_policy,
            auth=basic_auth(store),
            timeout_s=query.timeout_s,
            verify_tls=store.verify_tls,
        )
    from gateway.tsdb.influx_v2 import AutoPoints, v2_points_reader

    if query.api == "auto":
        return AutoPoints(store, query)
    return v2_points_reader(store, query, query.api == "prometheus")


def build_periods_reader(
    store: StoreConfig, history: PeriodsQuery, executor: Executor
) -> PeriodsReader:
    """The reader for the gateway's store, as ``history.api`` asks."""
    if isinstance(store, SqliteStoreConfig):
        if history.api not in ("auto", "sqlite"):
            raise StoreError(f"standards.history.api {history.api} does not read a sqlite store")
        from gateway.tsdb.sqlite import SqlitePeriods

        return SqlitePeriods(store.path, executor)
    from gateway.tsdb.influx_v1 import InfluxQLPeriods, basic_auth

    def influxql(
        server: InfluxV1StoreConfig | InfluxV2StoreConfig,
        database: str,
        *,
        retention_policy: str | None = None,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
    ) -> InfluxQLPeriods:
        return InfluxQLPeriods(
            str(server.url),
            history.database or database,
            executor,
            retention_policy=retention_policy,
            timeout_s=server.timeout_s,
            verify=server.verify_tls,
            headers=headers,
            auth=auth,
        )

    if isinstance(store, InfluxV1StoreConfig):
        if history.api not in ("auto", "influxql"):
            raise StoreError(f"standards.history.api {history.api} does not read InfluxDB 1.x")
        return influxql(
            store, store.database, retention_policy=store.retention_policy, auth=basic_auth(store)
        )
    assert isinstance(store, InfluxV2StoreConfig)
    if history.api == "sqlite":
        raise StoreError("standards.history.api sqlite does not read an InfluxDB v2 API store")
    headers: dict[str, Any] = {}
    if store.token is not None:
        headers["Authorization"] = f"Token {store.token.resolve()}"

    from gateway.tsdb.influx_v2 import AutoV2Periods, VictoriaPeriods

    def victoria() -> VictoriaPeriods:
        return VictoriaPeriods(str(store.url), executor, store.timeout_s, store.verify_tls, headers)

    if history.api == "victoriametrics":
        return victoria()
    if history.api == "influxql":
        return influxql(store, store.bucket, headers=headers)
    return AutoV2Periods(victoria(), influxql(store, store.bucket, headers=headers))
