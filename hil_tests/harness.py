"""Hardware-in-the-loop harness: the same driver scenarios against real instruments or simulators.

A bench file (YAML) lists instruments exactly as an agent config does, each with optional
expectations (plausible ranges of its channels) and protocol probes::

    bench: lab-a
    instruments:
      - instrument: {name: chiller-1, protocol: modbus, transport: {...}, channels: [...]}
        expect: {supply-temperature: {min: 5, max: 30}}
        probes: {illegal: {table: holding, address: 44}}

With ``ETALON_BENCH=path/to/bench.yaml`` the scenarios run against the instruments it names (real
hardware). Without it they run against the simulators: the example bench file
(``hil_tests/bench.example.yaml``) is served by each protocol's registered simulator (the
registry's ``simulate`` hook), so the harness itself is tested on every run.

Scenarios live in ``hil_tests/test_<protocol>.py`` modules that set ``PROTOCOL``; the conftest
parametrises their ``bench_instrument`` fixture over the bench's instruments of that protocol.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from core.clock import SystemClock
from core.config_loader import load_config
from core.models import FrozenModel
from drivers.base import Driver
from drivers.config import ChannelBase, InstrumentBase
from drivers.reading import Quality, Reading
from drivers.registry import DRIVERS, InstrumentConfig, create_driver
from edge_agent.pipeline import finish

BENCH_ENV = "ETALON_BENCH"
EXAMPLE_BENCH = Path(__file__).with_name("bench.example.yaml")


class Expect(FrozenModel):
    """What a channel's value must be on this bench (after scale and offset)."""

    min: float | None = None
    max: float | None = None
    equals: bool | int | float | str | None = None
    tolerance: float | None = Field(
        None, ge=0, description="Largest change between two reads a second apart."
    )


class BenchInstrument(FrozenModel):
    """One instrument of the bench: its config, what to expect, protocol-specific probes."""

    instrument: InstrumentConfig
    expect: dict[str, Expect] = Field(default_factory=dict)
    probes: dict[str, Any] = Field(
        default_factory=dict, description="Protocol scenarios' extra inputs (see docs/hil.md)."
    )


class Bench(FrozenModel):
    """A bench file."""

    bench: str = "bench"
    instruments: list[BenchInstrument]


@dataclass
class Target:
    """An instrument ready for a scenario: its (possibly rewritten) config and expectations."""

    config: Any
    expect: dict[str, Expect]
    probes: dict[str, Any]
    real: bool
    notes: list[str] = field(default_factory=list)

    @property
    def channels(self) -> list[ChannelBase]:
        """The instrument's channels."""
        return list(self.config.channels)


def bench_path() -> tuple[Path, bool]:
    """The bench file in force and whether it names real hardware."""
    named = os.environ.get(BENCH_ENV)
    if named:
        return Path(named), True
    return EXAMPLE_BENCH, False


def load_bench(path: Path) -> Bench:
    """A bench file, with errors that name the file, line and field."""
    return load_config(path, Bench)


def entries_for(protocol: str) -> list[BenchInstrument]:
    """The bench's instruments of one protocol (those whose protocol is registered)."""
    path, _ = bench_path()
    return [
        entry
        for entry in load_bench(path).instruments
        if entry.instrument.protocol == protocol and entry.instrument.enabled
    ]


@contextlib.asynccontextmanager
async def open_target(entry: BenchInstrument) -> AsyncIterator[Target]:
    """The instrument itself on a real bench; its simulator otherwise."""
    _, real = bench_path()
    instrument = entry.instrument
    if real:
        yield Target(instrument, entry.expect, entry.probes, real=True)
        return
    async with DRIVERS[instrument.protocol].simulate(instrument) as simulated:
        yield Target(simulated, entry.expect, entry.probes, real=False)


@contextlib.asynccontextmanager
async def connected(config: InstrumentBase) -> AsyncIterator[Driver[Any]]:
    """A connected driver, closed afterwards."""
    driver = create_driver(config, SystemClock())
    try:
        await driver.connect()
        yield driver
    finally:
        await driver.close()


def check_readings(target: Target, readings: Sequence[Reading]) -> list[Reading]:
    """Scaled as the agent scales them, every reading GOOD and as the bench expects."""
    channels = target.channels
    assert [r.channel for r in readings] == [c.name for c in channels]
    finished = finish(readings, channels)
    problems = []
    for reading in finished:
        if reading.quality is not Quality.GOOD:
            problems.append(f"{reading.channel}: {reading.quality} ({reading.reason})")
            continue
        expect = target.expect.get(reading.channel)
        if expect is None:
            continue
        value = reading.value
        if expect.equals is not None and value != expect.equals:
            problems.append(f"{reading.channel}: {value!r}, expected {expect.equals!r}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if expect.min is not None and value < expect.min:
                problems.append(f"{reading.channel}: {value} below {expect.min}")
            if expect.max is not None and value > expect.max:
                problems.append(f"{reading.channel}: {value} above {expect.max}")
    assert not problems, "\n".join(problems)
    return finished


async def poll(driver: Driver[Any], channels: Sequence[ChannelBase], count: int) -> list[float]:
    """Read all channels ``count`` times; the seconds each read took."""
    took = []
    for _ in range(count):
        started = time.perf_counter()
        readings = await driver.read(channels)
        took.append(time.perf_counter() - started)
        bad = [r for r in readings if r.quality is not Quality.GOOD]
        assert not bad, [f"{r.channel}: {r.reason}" for r in bad]
    return took


def summary(name: str, took: Sequence[float]) -> str:
    """One line for the qualification record."""
    return (
        f"{name}: {len(took)} polls, median {statistics.median(took) * 1000:.1f} ms, "
        f"max {max(took) * 1000:.1f} ms"
    )
