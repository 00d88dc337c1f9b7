"""The agent's configuration, and the pieces (MQTT, spool, secrets, clock) the gateway reuses."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from drivers.clock import AcceleratedClock, Clock, SystemClock
from drivers.config import Backoff, FrozenModel, Name
from drivers.registry import InstrumentConfig


class EnvSecret(FrozenModel):
    """A secret read from an environment variable."""

    env: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    def resolve(self) -> str:
        """The secret; raises ValueError if the variable is not set."""
        value = os.environ.get(self.env)
        if value is None:
            raise ValueError(f"environment variable {self.env} is not set")
        return value


class FileSecret(FrozenModel):
    """A secret read from a file (first line, whitespace stripped), e.g. a Docker/systemd secret."""

    file: Path

    def resolve(self) -> str:
        """The secret; raises ValueError if the file cannot be read."""
        try:
            return self.file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc}") from exc


Secret = EnvSecret | FileSecret


class TlsConfig(FrozenModel):
    """TLS to the broker: the CA that signed it and, for client-certificate auth, ours."""

    ca_file: Path | None = Field(None, description="CA bundle; None uses the system's.")
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        for path in (self.ca_file, self.cert_file, self.key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"file not found: {path}")
        return self


class MqttConfig(FrozenModel):
    """Connection to the MQTT broker."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    version: Literal["3.1.1", "5"] = Field(
        "3.1.1", description="MQTT protocol version; '5' is needed for shared subscriptions."
    )
    client_id: str | None = Field(
        None, max_length=128, description="Fixed per process: the broker keeps its session by it."
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    connect_timeout_s: float = Field(10.0, gt=0)
    session_expiry_s: int = Field(
        7 * 86_400, ge=0, description="MQTT 5: how long the broker keeps our session offline."
    )
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig | None = None
    topic_prefix: str = Field("etalon", pattern=r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
    reconnect: Backoff = Field(default_factory=lambda: Backoff(initial_s=1.0, max_s=30.0))

    @model_validator(mode="after")
    def _secret_resolves(self) -> MqttConfig:
        if self.password is not None:
            if self.username is None:
                raise ValueError("password given without username")
            self.password.resolve()
        return self


def check_certificate_identity(mqtt: MqttConfig, expected: str, issue_hint: str) -> None:
    """With a client certificate and no user name, the broker knows this process by the
    certificate's CN (``use_identity_as_username``): it must be ``expected``, or the broker's ACL
    would silently drop what the process publishes. Raises ValueError naming both."""
    if mqtt.tls is None or mqtt.tls.cert_file is None or mqtt.username is not None:
        return
    from core.pki import PkiError, certificate_identity  # cryptography: only when it is needed

    try:
        actual = certificate_identity(mqtt.tls.cert_file)
    except PkiError as exc:
        raise ValueError(f"mqtt.tls.cert_file: {exc}") from None
    if actual != expected:
        raise ValueError(
            f"mqtt.tls.cert_file: the certificate's identity (CN) is {actual!r} but this process "
            f"is {expected!r}: the broker's ACL would refuse its topics "
            f"(a certificate for it: {issue_hint})"
        )


class SpoolConfig(FrozenModel):
    """The on-disk spool (SQLite, WAL) that holds readings until the next hop acknowledged them."""

    path: Path = Field(..., description="SQLite file; its directory is created if missing.")
    max_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024,
        description="When full, the oldest entries are dropped (counted).",
    )
    synchronous: Literal["full", "normal"] = Field(
        "full",
        description="full: every commit is fsync'ed, so a commit survives power loss. normal: a "
        "commit survives a process crash but the last ones may be lost on power loss.",
    )


class PublishConfig(FrozenModel):
    """How readings are batched onto MQTT."""

    batch_max_readings: int = Field(500, ge=1, le=50_000)
    batch_max_delay_ms: int = Field(200, ge=0, le=60_000)
    window: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Most unacknowledged batches in flight (paho's 65,535 "
        "message-id space silently wraps otherwise).",
    )


class SystemClockConfig(FrozenModel):
    """Stamp readings with the host clock (the default)."""

    kind: Literal["system"] = "system"


class AcceleratedClockConfig(FrozenModel):
    """Simulated time for demos and long simulated histories: never for real instruments."""

    kind: Literal["accelerated"]
    start: AwareDatetime = datetime(2026, 1, 1, tzinfo=UTC)
    rate: float = Field(1.0, gt=0, le=1e9)


ClockConfig = Annotated[SystemClockConfig | AcceleratedClockConfig, Field(discriminator="kind")]


def build_clock(config: SystemClockConfig | AcceleratedClockConfig) -> Clock:
    """The clock a config asks for."""
    if isinstance(config, AcceleratedClockConfig):
        return AcceleratedClock(int(config.start.timestamp() * 1e9), config.rate)
    return SystemClock()


class LogConfig(FrozenModel):
    """Structured logs: quiet at INFO (one line per state change, none per reading)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class AgentConfig(FrozenModel):
    """An edge agent: who it is, where it publishes, where it spools, what it reads."""

    site: Name
    id: Name
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    spool: SpoolConfig
    publish: PublishConfig = Field(default_factory=PublishConfig)
    clock: ClockConfig = Field(default_factory=SystemClockConfig)
    metrics_interval_s: float = Field(10.0, ge=1, le=3600)
    log: LogConfig = Field(default_factory=LogConfig)
    instruments: list[InstrumentConfig] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _unique_instruments(self) -> AgentConfig:
        seen: set[str] = set()
        for instrument in self.instruments:
            if instrument.name in seen:
                raise ValueError(f"instrument name {instrument.name!r} appears twice")
            seen.add(instrument.name)
        return self

    @model_validator(mode="after")
    def _certificate_is_this_agent(self) -> AgentConfig:
        check_certificate_identity(
            self.mqtt,
            f"{self.site}/{self.id}",
            f"etalon pki issue agent --site {self.site} --id {self.id}",
        )
        return self
