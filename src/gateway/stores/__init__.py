"""Time-series stores the gateway writes to: InfluxDB v2 API, InfluxDB v1 API, embedded SQLite."""

from __future__ import annotations

from gateway.config import InfluxV1StoreConfig, InfluxV2StoreConfig, SqliteStoreConfig
from gateway.stores.base import Store, WriteResult
from gateway.stores.influx_v1 import InfluxV1Store
from gateway.stores.influx_v2 import InfluxV2Store
from gateway.stores.sqlite_store import SqliteStore

__all__ = ["Store", "WriteResult", "build_store"]


def build_store(config: SqliteStoreConfig | InfluxV2StoreConfig | InfluxV1StoreConfig) -> Store:
    """The store a config names."""
    if isinstance(config, InfluxV2StoreConfig):
        return InfluxV2Store(config)
    if isinstance(config, InfluxV1StoreConfig):
        return InfluxV1Store(config)
    return SqliteStore(config)
