"""Which instruments a protocol's scenarios run against: the bench's, or the simulators.

The small interface the VISA and OPC UA scenarios rely on (the generic harness, hil_tests/
harness.py, offers the same ideas; the lead reconciles the two):

- ``ETALON_BENCH`` names a YAML bench file whose ``instruments:`` list holds agent instrument
  configs, either bare or as ``{instrument: {...}, expect: {...}}`` entries.
- When it names instruments of the protocol, the scenarios run against them (real hardware).
- Otherwise they run against the protocol's example config (``config/agent-<protocol>.yaml``),
  each instrument rewritten by the registry's ``simulate`` hook to reach its simulator.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from core.config_loader import load_config
from drivers.registry import DRIVERS, InstrumentConfig
from edge_agent.config import AgentConfig

BENCH_ENV = "ETALON_BENCH"
REPO = Path(__file__).resolve().parents[1]


def bench_instruments(protocol: str) -> tuple[list[Any], bool]:
    """The enabled instrument configs of a protocol, and whether they are real hardware."""
    named = os.environ.get(BENCH_ENV)
    if named:
        data = yaml.safe_load(Path(named).read_text(encoding="utf-8")) or {}
        adapter: TypeAdapter[Any] = TypeAdapter(InstrumentConfig)
        real = []
        for entry in data.get("instruments", []):
            raw = entry.get("instrument", entry) if isinstance(entry, dict) else entry
            if isinstance(raw, dict) and raw.get("protocol") == protocol:
                config = adapter.validate_python(raw)
                if config.enabled:
                    real.append(config)
        if real:
            return real, True
    example = load_config(REPO / DRIVERS[protocol].example_config, AgentConfig)
    simulated = [i for i in example.instruments if getattr(i, "protocol") == protocol]  # noqa: B009
    return [i for i in simulated if i.enabled], False


@contextlib.asynccontextmanager
async def reachable(config: Any, real: bool) -> AsyncIterator[Any]:
    """The config itself on a real bench; rewritten to its simulator otherwise."""
    if real:
        yield config
        return
    async with DRIVERS[config.protocol].simulate(config) as simulated:
        yield simulated
