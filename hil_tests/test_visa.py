"""VISA/SCPI scenarios: the bench's instruments (ETALON_BENCH) or the SCPI simulators.

    ETALON_BENCH=bench.yaml pytest hil_tests/test_visa.py -v -s

With -s each scenario prints what a qualification record needs (identity, timings).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator

import pytest

from core.clock import SystemClock
from drivers.reading import Quality, Reading
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from edge_agent.metrics import AgentMetrics
from edge_agent.scheduler import InstrumentRunner
from hil_tests.bench_select import bench_instruments, reachable

CONFIGS, REAL = bench_instruments("visa")


@pytest.fixture(params=CONFIGS, ids=[c.name for c in CONFIGS])
async def instrument(request: pytest.FixtureRequest) -> AsyncIterator[VisaInstrument]:
    """One bench instrument, or its simulator."""
    async with reachable(request.param, REAL) as config:
        yield config


@pytest.fixture
async def driver(instrument: VisaInstrument) -> AsyncIterator[VisaDriver]:
    """A connected driver (init sequence run, error queue drained)."""
    connected = VisaDriver(instrument, SystemClock())
    await connected.connect()
    try:
        yield connected
    finally:
        await connected.close()


def _all_good(readings: list[Reading]) -> None:
    bad = [f"{r.channel}: {r.reason}" for r in readings if r.quality is not Quality.GOOD]
    assert not bad, bad
    assert all(isinstance(r.value, float) and math.isfinite(r.value) for r in readings)


async def test_identifies_itself(driver: VisaDriver) -> None:
    identity = driver.describe()
    for field in ("manufacturer", "model", "serial", "firmware"):
        assert identity.get(field), f"*IDN? gave no {field}: {identity.get('idn')!r}"
    print(f"\n{driver.config.name}: {identity['idn']} on {identity['resource']}")


async def test_every_channel_reads_good_in_its_unit(
    driver: VisaDriver, instrument: VisaInstrument
) -> None:
    channels = list(instrument.channels)
    readings = await driver.read(channels)
    assert [r.channel for r in readings] == [c.name for c in channels]
    _all_good(readings)
    measurements = instrument.resolved_profile().measurements
    for reading, channel in zip(readings, channels, strict=True):
        assert reading.unit == measurements[channel.measurement].unit


async def test_repeated_reads_advance_in_time(
    driver: VisaDriver, instrument: VisaInstrument
) -> None:
    channels = list(instrument.channels)
    took, stamps = [], []
    for _ in range(5):
        started = time.perf_counter()
        readings = await driver.read(channels)
        took.append(time.perf_counter() - started)
        _all_good(readings)
        stamps.append(readings[0].ts_ns)
    assert stamps == sorted(set(stamps))
    assert max(took) < instrument.timeout_s
    print(
        f"\n{instrument.name}: read of {len(channels)} channels in {min(took) * 1000:.1f}–"
        f"{max(took) * 1000:.1f} ms"
    )


async def test_reopens_after_close(driver: VisaDriver, instrument: VisaInstrument) -> None:
    await driver.close()
    await driver.connect()
    _all_good(await driver.read(list(instrument.channels)))


async def test_keeps_its_schedule_under_the_agent(instrument: VisaInstrument) -> None:
    # Tick at a pace the instrument can hold: twice one read's duration, at least a second.
    probe = VisaDriver(instrument, SystemClock())
    await probe.connect()
    started = time.perf_counter()
    await probe.read(list(instrument.channels))
    interval = max(1.0, 2 * (time.perf_counter() - started))
    await probe.close()
    paced = instrument.model_copy(
        update={
            "channels": [c.model_copy(update={"interval_s": interval}) for c in instrument.channels]
        }
    )
    readings: list[Reading] = []
    metrics = AgentMetrics()
    runner = InstrumentRunner(
        paced,
        VisaDriver(paced, SystemClock()),
        SystemClock(),
        readings.extend,
        metrics,
        lambda *_: None,
    )
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(3.2 * interval)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(readings) >= 2 * len(paced.channels)
    _all_good(readings)
    assert metrics.overruns == 0
    assert metrics.read_timeouts == 0
