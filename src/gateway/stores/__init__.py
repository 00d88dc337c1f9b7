"""Time-series stores the gateway writes to: InfluxDB v2 API, InfluxDB v1 API, embedded SQLite."""

from __future__ import annotations

from gateway.config import InfluxV1StoreConfig, InfluxV2StoreConfig, SqliteStoreConfig
from gateway.stores.base import Store, WriteResult

__all__ = ["Store", "WriteResult", "build_store"]


def build_store(config: SqliteStoreConfig | InfluxV2StoreConfig | InfluxV1StoreConfig) -> Store:
    """The store a config names (its client library is imported only now)."""
    if isinstance(config, InfluxV2StoreConfig):
        from gateway.stores.influx_v2 import InfluxV2Store

        return InfluxV2Store(config)
    if isinstance(config, InfluxV1StoreConfig):
        from gateway.stores.influx_v1 import InfluxV1Store

        return InfluxV1Store(config)
    from gateway.stores.sqlite_store import SqliteStore

    return SqliteStore(config)
