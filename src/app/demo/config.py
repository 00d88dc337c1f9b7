"""The demo's config model and its embedded defaults (light: no server code is imported)."""

from __future__ import annotations

from importlib import resources

from pydantic import Field

from core.models import FrozenModel, Name
from drivers.registry import InstrumentConfig
from edge_agent.config import PublishConfig


class DemoConfig(FrozenModel):
    """What the demo runs: a site and its instruments (simulated)."""

    site: Name = "demo-lab"
    publish: PublishConfig = Field(default_factory=PublishConfig)
    instruments: list[InstrumentConfig] = Field(..., min_length=1)


def default_config_text() -> str:
    """The embedded defaults, as YAML."""
    return resources.files("app.demo").joinpath("demo.yaml").read_text(encoding="utf-8")
