"""The agent's configuration, and the pieces (MQTT, spool, secrets, clock) the gateway reuses."""

from __future__ import annotations

from pydantic import Field, model_validator

from core.clock import ClockConfig, SystemClockConfig
from core.logs import LogConfig
from core.models import FrozenModel, Name, repeated
from core.mqtt import MqttConfig, check_client_identity
from core.spool import SpoolConfig
from drivers.registry import InstrumentConfig


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
        twice = repeated(instrument.name for instrument in self.instruments)
        if twice:
            raise ValueError(f"instrument name {twice[0]!r} appears twice")
        return self

    @model_validator(mode="after")
    def _certificate_is_this_agent(self) -> AgentConfig:
        check_client_identity(self.mqtt, "agent", self.site, self.id)
        return self
