"""The hub's configuration (``hub.yaml``): its database, its HTTP API, its key and its staff."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.logs import LogConfig
from core.models import FrozenModel, Name
from core.secrets import Secret

CONNINFO_PASSWORD = re.compile(r"(^|\s)password\s*=|://[^/@]*:[^/@]*@", re.IGNORECASE)


class DatabaseConfig(FrozenModel):
    """The PostgreSQL database (a libpq connection string, its password from a secret)."""

    url: str = Field(
        ...,
        min_length=1,
        max_length=2000,
        description="libpq connection string without the password, e.g. "
        "'host=db.example port=5432 dbname=hub user=hub sslmode=verify-full' or "
        "'postgresql://hub@db.example/hub'.",
    )
    password: Secret | None = Field(None, description="The password (env or file), if any.")
    replica_url: str | None = Field(
        None,
        max_length=2000,
        description="A read replica (streaming replication, or a managed service's read "
        "endpoint) for searches, pages and exports; pushes always go to 'url'.",
    )
    pool_min: int = Field(1, ge=1, le=100)
    pool_max: int = Field(10, ge=1, le=500)
    connect_timeout_s: float = Field(10.0, gt=0, le=300)
    statement_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="No query runs longer (a search, an export)."
    )
    migrate_on_start: bool = Field(
        True,
        description="Apply pending migrations when the hub starts (else `etalon hub migrate` "
        "must have done it: the hub refuses to start on an older schema).",
    )

    @field_validator("url", "replica_url")
    @classmethod
    def _no_inline_password(cls, value: str | None) -> str | None:
        if value is not None and CONNINFO_PASSWORD.search(value):
            raise ValueError("no password in the connection string: give 'password' (env or file)")
        return value

    @model_validator(mode="after")
    def _pool(self) -> DatabaseConfig:
        if self.pool_max < self.pool_min:
            raise ValueError("pool_max must be ≥ pool_min")
        return self


class StaffToken(FrozenModel):
    """A token of the hub's own staff: who it is (for the audit chain) and its role."""

    name: Name
    role: Literal["viewer", "operator", "admin"]
    token: Secret


class TlsConfig(FrozenModel):
    """HTTPS: the hub's certificate chain and key (PEM files)."""

    cert_file: Path
    key_file: Path


class HubApiConfig(FrozenModel):
    """The hub's HTTP API and pages."""

    host: str = Field("127.0.0.1", description="Listen address; 0.0.0.0 to serve the network.")
    port: int = Field(8443, ge=0, le=65535, description="0 picks a free port (tests).")
    tls: TlsConfig | None = Field(
        None, description="Serve HTTPS (labs push over HTTPS; or terminate TLS at a proxy)."
    )
    tokens: list[StaffToken] = Field(default_factory=list)
    public_read: bool = Field(
        True,
        description="Let anyone search the registry, see labs' due counts and the traceability "
        "graph without a token (the national registry is public); refusals, the audit chain "
        "and exports of whole labs still need a staff token.",
    )
    max_segment_bytes: int = Field(
        16 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024, description="Largest push body."
    )
    max_attachment_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Largest certificate file."
    )

    @model_validator(mode="after")
    def _tokens_resolve(self) -> HubApiConfig:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        values = [t.token.resolve() for t in self.tokens]
        if len(set(values)) != len(values):
            raise ValueError("two tokens have the same secret")
        if any(len(v) < 16 for v in values):
            raise ValueError("a token must be at least 16 characters")
        return self


class HubConfig(FrozenModel):
    """A national hub: labs push their signed record ledgers to it; it serves the registry."""

    id: str = Field(
        "hub",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="The id of the hub's own audit chain (enrolments, revocations, refusals).",
    )
    name: str = Field("National measurement registry", min_length=1, max_length=200)
    database: DatabaseConfig
    api: HubApiConfig = Field(default_factory=HubApiConfig)
    key_file: Path = Field(
        ...,
        description="The hub's Ed25519 key that signs its audit chain (made on first start, "
        "mode 0600).",
    )
    due_soon_days: int = Field(
        30, ge=0, le=366, description="A calibration due within this many days counts as due."
    )
    log: LogConfig = Field(default_factory=LogConfig)
