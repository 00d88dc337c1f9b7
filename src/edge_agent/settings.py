"""The agent's configuration but its instruments' protocols, and the model an agent validates
its own config with.

:class:`edge_agent.config.AgentConfig` holds instruments of every registered protocol: its
JSON Schema is the published one, and ``etalon check``, the demo and calibration validate with
it. An agent at start-up validates with :func:`agent_config_model`: the same model but for the
union of the protocols its config names, so it builds the config models of those protocols
only (each is tens of milliseconds of start-up, on a Raspberry Pi several times more). The
checks and the errors are the same: an instrument is validated against its protocol's model
either way, and a config naming anything but registered protocols gets the model of them all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import GenericAlias
from typing import Any

from pydantic import Field, create_model, model_validator

from core.clock import ClockConfig, SystemClockConfig
from core.logs import LogConfig
from core.models import FrozenModel, Name, repeated
from core.mqtt import MqttConfig, check_client_identity
from core.spool import SpoolConfig
from drivers.config import InstrumentBase
from drivers.registry import instrument_config, known_protocols


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


class AgentSettings(FrozenModel):
    """An edge agent's config, its instruments of any model (the base of the agent's config
    models, which say what an instrument is)."""

    site: Name
    id: Name
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    spool: SpoolConfig
    publish: PublishConfig = Field(default_factory=PublishConfig)
    clock: ClockConfig = Field(default_factory=SystemClockConfig)
    metrics_interval_s: float = Field(10.0, ge=1, le=3600)
    log: LogConfig = Field(default_factory=LogConfig)
    instruments: Sequence[InstrumentBase] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _unique_instruments(self) -> AgentSettings:
        twice = repeated(instrument.name for instrument in self.instruments)
        if twice:
            raise ValueError(f"instrument name {twice[0]!r} appears twice")
        return self

    @model_validator(mode="after")
    def _certificate_is_this_agent(self) -> AgentSettings:
        check_client_identity(self.mqtt, "agent", self.site, self.id)
        return self


def agent_config_model(data: Any) -> type[AgentSettings]:
    """The model to validate the agent config ``data`` (as read from YAML) with: the agent's
    config for the protocols its instruments name, or, if it names anything else (or is not
    of the shape to tell), :class:`edge_agent.config.AgentConfig`."""
    instruments = data.get("instruments") if isinstance(data, dict) else None
    protocols = None
    if isinstance(instruments, list) and all(isinstance(i, dict) for i in instruments):
        protocols = known_protocols(i.get("protocol") for i in instruments)
    if not protocols:
        from edge_agent.config import AgentConfig

        return AgentConfig
    return _narrowed(protocols)


@functools.cache
def _narrowed(protocols: tuple[str, ...]) -> type[AgentSettings]:
    instruments: Any = GenericAlias(list, (instrument_config(protocols),))
    model = create_model(
        "AgentConfig",
        __base__=AgentSettings,
        __module__=__name__,
        instruments=(instruments, Field(..., min_length=1)),
    )
    # Named "AgentConfig" where a user reads it; found by pickle (a config handed to another
    # process) under a name of its own in this module.
    model.__qualname__ = f"AgentConfig_{'_'.join(protocols)}"
    globals()[model.__qualname__] = model
    return model
