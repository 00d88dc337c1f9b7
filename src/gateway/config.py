"""The gateway's configuration."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from core.logs import LogConfig
from core.models import FrozenModel, Name
from core.mqtt import MqttConfig, check_client_identity
from core.secrets import Secret, check_secret
from core.spool import SpoolConfig
from gateway.alerts.config import AlertsConfig
from gateway.api.dashboard_config import DashboardConfig
from gateway.corrections.config import CorrectionsConfig
from gateway.hubsync.config import HubSyncConfig
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
    max_payload_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Larger payloads are refused whole (MQTT's own limit is 256 MiB).",
    )
    deadletter_max_bytes: int = Field(
        64 * 1024,
        ge=0,
        le=16 * 1024 * 1024,
        description="Raw bytes of a refused payload kept in its dead letter.",
    )


ARGON2_HASH = re.compile(
    r"^\$argon2id\$v=19\$m=\d{1,7},t=\d{1,3},p=\d{1,3}\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{16,128}$"
)
"""An argon2id hash in PHC form, as ``etalon token new|hash`` print it."""


class ApiToken(FrozenModel):
    """One API token: who it is (for the audit log), what it may do, and its secret: from the
    environment or a file (``token``), or only its argon2id hash (``token_hash``), which the
    config may hold in plain sight (``etalon token new`` makes a token and its hash)."""

    name: Name
    role: Literal["viewer", "auditor", "operator", "admin"] = Field(
        ...,
        description="viewer reads; auditor also verifies the records; operator acknowledges "
        "and shelves alerts; admin changes the registry and rules.",
    )
    token: Secret | None = None
    token_hash: str | None = Field(
        None, description="argon2id hash of the token ($argon2id$v=19$...), from `etalon token`."
    )

    @model_validator(mode="after")
    def _one_secret(self) -> ApiToken:
        if (self.token is None) == (self.token_hash is None):
            raise ValueError("give the token either as token (env or file) or as token_hash")
        if self.token_hash is not None and not ARGON2_HASH.match(self.token_hash):
            raise ValueError(
                "token_hash: not an argon2id hash ($argon2id$v=19$m=...,t=...,p=...$salt$hash); "
                "make one with `etalon token new` or `etalon token hash`"
            )
        return self


def _readable(paths: Iterable[Path], password: Secret | None) -> None:
    """A key and its certificates are files, and the key's password (if any) resolves."""
    for path in paths:
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
    check_secret(password)


class ApiTlsConfig(FrozenModel):
    """HTTPS for the API: the server certificate (e.g. `etalon pki issue server api`) and key."""

    cert_file: Path
    key_file: Path
    key_password: Secret | None = Field(None, description="If the key file is encrypted.")

    @model_validator(mode="after")
    def _files_exist(self) -> ApiTlsConfig:
        _readable((self.cert_file, self.key_file), self.key_password)
        return self


class AuthFailuresConfig(FrozenModel):
    """Failed authentication per client address: past ``max_failures`` within ``window_s``, the
    address gets 429 (with Retry-After) until the oldest failure leaves the window."""

    max_failures: int = Field(10, ge=1, le=10_000)
    window_s: float = Field(60.0, gt=0, le=86_400)


def is_loopback(host: str) -> bool:
    """Whether a listen address is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiConfig(FrozenModel):
    """The gateway's HTTP API and dashboard."""

    host: str = Field(
        "127.0.0.1",
        description="Listen address; a non-loopback one (0.0.0.0: the lab LAN) needs tls.",
    )
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port (tests).")
    tls: ApiTlsConfig | None = Field(None, description="Serve HTTPS.")
    allow_plain_http_on: str | None = Field(
        None,
        description="Serve plain HTTP on this non-loopback host anyway (it must equal host), "
        "e.g. behind a TLS-terminating proxy on another machine. Tokens cross that network in "
        "clear.",
    )
    tokens: list[ApiToken] = Field(default_factory=list)
    anonymous_read: bool = Field(False, description="Let anyone read without a token.")
    auth_failures: AuthFailuresConfig = Field(default_factory=AuthFailuresConfig)

    @model_validator(mode="after")
    def _tokens_resolve(self) -> ApiConfig:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        values = [t.token.resolve() for t in self.tokens if t.token is not None]
        if len(set(values)) != len(values):
            raise ValueError("two tokens have the same secret")
        if any(len(v) < 16 for v in values):
            raise ValueError("a token must be at least 16 characters")
        return self

    @model_validator(mode="after")
    def _no_plain_http_on_the_network(self) -> ApiConfig:
        if self.tls is None and not is_loopback(self.host):
            if self.allow_plain_http_on != self.host:
                raise ValueError(
                    f"host {self.host} is not loopback and there is no tls: tokens would cross "
                    "the network in clear. Give api.tls (cert_file, key_file), or listen on "
                    "127.0.0.1 behind a TLS reverse proxy (docs/security.md), or, if a proxy on "
                    f"another machine terminates TLS, set allow_plain_http_on: {self.host}"
                )
        elif self.allow_plain_http_on is not None:
            raise ValueError(
                "allow_plain_http_on is only for a non-loopback host without tls: remove it"
            )
        return self


class SigningConfig(FrozenModel):
    """The laboratory's signing key and X.509 certificate (PEM), and its intermediates."""

    key_file: Path = Field(..., description="Private key, PEM (ECDSA P-256/384/521 or RSA ≥ 2048).")
    cert_file: Path = Field(..., description="The lab's certificate, PEM.")
    chain_files: list[Path] = Field(default_factory=list, description="Intermediate CAs, PEM.")
    password: Secret | None = Field(None, description="The key's password, if it has one.")

    @model_validator(mode="after")
    def _files_exist(self) -> SigningConfig:
        _readable((self.key_file, self.cert_file, *self.chain_files), self.password)
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
    hub: HubSyncConfig | None = Field(
        None,
        description="Push the record ledger (standards, certificates, identities, calibration "
        "results, evaluation summaries — never raw readings) to a national hub (docs/hub.md).",
    )
    corrections: CorrectionsConfig = Field(
        default_factory=CorrectionsConfig,
        description="How linked channels are corrected from their certificates, and judged.",
    )
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
    def _certificate_is_this_gateway(self) -> GatewayConfig:
        check_client_identity(self.mqtt, "gateway", self.site, self.id)
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
