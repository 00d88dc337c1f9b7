"""Config of the time-series stores: which store the gateway writes to, how it writes, and how
the dashboard's history queries reach it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, model_validator

from core.backoff import Backoff
from core.models import FrozenModel
from core.secrets import Secret, check_login, check_secret


class SqliteStoreConfig(FrozenModel):
    """The embedded store: readings in a local SQLite file (no server needed)."""

    kind: Literal["sqlite"] = "sqlite"
    path: Path


class InfluxV2StoreConfig(FrozenModel):
    """InfluxDB 2.x/3.x, InfluxDB Cloud, VictoriaMetrics: the v2 write API."""

    kind: Literal["influxdb_v2"]
    url: AnyHttpUrl
    token: Secret | None = None
    org: str = Field("etalon", min_length=1)
    bucket: str = Field(..., min_length=1)
    timeout_s: float = Field(10.0, gt=0)
    gzip: bool = False
    verify_tls: bool = True

    @model_validator(mode="after")
    def _token_resolves(self) -> InfluxV2StoreConfig:
        check_secret(self.token)
        return self


class InfluxV1StoreConfig(FrozenModel):
    """InfluxDB 1.x: ``POST /write?db=``."""

    kind: Literal["influxdb_v1"]
    url: AnyHttpUrl
    database: str = Field(..., min_length=1)
    retention_policy: str | None = None
    username: str | None = None
    password: Secret | None = None
    create_database: bool = Field(
        False, description="Issue CREATE DATABASE at start (needs admin rights; idempotent)."
    )
    timeout_s: float = Field(10.0, gt=0)
    verify_tls: bool = True

    @model_validator(mode="after")
    def _password_resolves(self) -> InfluxV1StoreConfig:
        check_login(self.username, self.password)
        return self


StoreConfig = Annotated[
    SqliteStoreConfig | InfluxV2StoreConfig | InfluxV1StoreConfig, Field(discriminator="kind")
]


class WriteConfig(FrozenModel):
    """How the gateway writes to the store."""

    batch_max_lines: int = Field(5000, ge=1, le=500_000)
    batch_max_delay_ms: int = Field(
        500,
        ge=0,
        le=60_000,
        description="How long a partial batch may wait for more; no longer once the messages "
        "stopped coming (a burst's or a drain's end is written at once).",
    )
    concurrency: int = Field(
        2, ge=1, le=16, description="Batches written at the same time (writes are idempotent)."
    )
    retry: Backoff = Field(default_factory=lambda: Backoff(initial_s=0.5, max_s=30.0))


class HistoryQueryConfig(FrozenModel):
    """How the API reads a channel's history back from the time-series store.

    SQLite and InfluxDB 1.x stores are read the way they are written. A store written through the
    v2 API may be InfluxDB 2.x/3.x (read with InfluxQL on ``/query``, the bucket as database
    through its DBRP mapping) or VictoriaMetrics (``/api/v1/export`` for raw points, the
    Prometheus ``/api/v1/query_range`` for downsampled ones); ``auto`` asks the server once.
    """

    api: Literal["auto", "influxql", "prometheus"] = Field(
        "auto", description="Query API of an influxdb_v2 store (ignored for the other kinds)."
    )
    url: AnyHttpUrl | None = Field(
        None,
        description="Where to query, if not the store's URL (e.g. a VictoriaMetrics cluster's "
        "vmselect: http://vmselect:8481/select/0/prometheus).",
    )
    timeout_s: float = Field(15.0, gt=0, le=300)
