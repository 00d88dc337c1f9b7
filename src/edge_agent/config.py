"""The agent's configuration, and the pieces (MQTT, spool, secrets, clock) the gateway reuses."""

from __future__ import annotations

from pydantic import Field

from drivers.registry import InstrumentConfig
from edge_agent.settings import AgentSettings, PublishConfig

__all__ = ["AgentConfig", "PublishConfig"]


class AgentConfig(AgentSettings):
    """An edge agent: who it is, where it publishes, where it spools, what it reads."""

    instruments: list[InstrumentConfig] = Field(..., min_length=1)
