"""The gateway's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from core.logs import LogConfig
from core.models import FrozenModel, Name
from core.mqtt import MqttConfig
from core.secrets import Secret
from core.spool import SpoolConfig
from gateway.alerts.config import AlertsConfig
from gateway.api.dashboard_config import DashboardConfig
from gateway.records.config import RecordsConfig
from gateway.standards.config import StandardsConfig
from gateway.tsdb.config import StoreConfig, WriteConfig


class IngestConfig(FrozenModel):
    """What the gateway subscribes to and what it refuses."""

    sites: list[Name] | None = Field(
        None, description="Sites whose agents this gateway ingests; default: its own site."
    )
    all_sites: bool = Field(False, description="Ingest every site on the broker.")
    shared_group: Name | None = Field(
        None,
        description="MQTT 5 shared subscription group: N gateways in one group split the data.",
    )
    max_payload_bytes: int = Field(1024 * 1024, ge=1024)
    deadletter_max_bytes: int = Field(
        64 * 1024, ge=0, description="Raw bytes of a refused payload kept in its dead letter."
    )


class ApiToken(FrozenModel):
    """One API token: who it is (for the audit log), what it may do, where its secret is."""

    name: Name
    role: Literal["viewer", "auditor", "operator", "admin"] = Field(
        ...,
        description="viewer reads; auditor also verifies the records; operator acknowledges "
        "and shelves alerts; admin changes the registry and rules.",
    )
    token: Secret


class ApiConfig(FrozenModel):
    """The gateway's HTTP API and dashboard."""

    host: str = Field("127.0.0.1", description="Listen address; 0.0.0.0 to serve the lab LAN.")
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port (tests).")
    tokens: list[ApiToken] = Field(default_factory=list)
    anonymous_read: bool = Field(False, description="Let anyone read without a token.")

    @model_validator(mode="after")
    def _tokens_resolve(self) -> ApiConfig:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        values = [t.token.resolve() for t in self.tokens]
        if len(set(values)) != len(values):
            raise ValueError("two tokens have the same secret")
        if any(len(v) < 16 for v in values):
            raise ValueError("a token must be at least 16 characters")
        return self


class SigningConfig(FrozenModel):
    """The laboratory's signing key and X.509 certificate (PEM), and its intermediates."""

    key_file: Path = Field(..., description="Private key, PEM (ECDSA P-256/384/521 or RSA ≥ 2048).")
    cert_file: Path = Field(..., description="The lab's certificate, PEM.")
    chain_files: list[Path] = Field(default_factory=list, description="Intermediate CAs, PEM.")
    password: Secret | None = Field(None, description="The key's password, if it has one.")

    @model_validator(mode="after")
    def _files_exist(self) -> SigningConfig:
        for path in (self.key_file, self.cert_file, *self.chain_files):
            if not path.is_file():
                raise ValueError(f"file not found: {path}")
        if self.password is not None:
            self.password.resolve()
        return self


class CalibrationsConfig(FrozenModel):
    """Calibration records from benches."""

    signing: SigningConfig | None = Field(
        None, description="Sign the DCCs served at /api/v1/calibrations/{run}/dcc."
    )


class GatewayConfig(FrozenModel):
    """A gateway: who it is, what it ingests, where it spools and writes."""

    site: Name
    id: Name = "gw-1"
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    spool: SpoolConfig
    store: StoreConfig
    write: WriteConfig = Field(default_factory=WriteConfig)
    records: RecordsConfig
    api: ApiConfig | None = Field(None, description="Serve the HTTP API and dashboard.")
    dashboard: DashboardConfig = Field(
        default_factory=DashboardConfig, description="Built-in dashboard, history, limits."
    )
    standards: StandardsConfig | None = Field(
        None, description="Reference standards: certificate files and scheduled drift analytics."
    )
    alerts: AlertsConfig | None = Field(None, description="Alert rules and notifications.")
    calibrations: CalibrationsConfig = Field(
        default_factory=CalibrationsConfig,
        description="Calibration records from benches (the DCC signing key).",
    )
    metrics_interval_s: float = Field(10.0, ge=1, le=3600)
    log: LogConfig = Field(default_factory=LogConfig)

    @model_validator(mode="after")
    def _shared_needs_v5(self) -> GatewayConfig:
        if self.ingest.shared_group and self.mqtt.version != "5":
            raise ValueError("ingest.shared_group needs mqtt.version: '5' (shared subscriptions)")
        return self

    @model_validator(mode="after")
    def _history_reads_the_store(self) -> GatewayConfig:
        if self.standards is not None:
            self.standards.check_store(self.store.kind)
        return self

    def ingest_sites(self) -> list[str]:
        """Topic levels to subscribe for the site: ['+'] for all sites."""
        if self.ingest.all_sites:
            return ["+"]
        return list(self.ingest.sites or [self.site])
