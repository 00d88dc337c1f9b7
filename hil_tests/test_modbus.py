"""Modbus scenarios, the same against a real device and against the simulator."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.reading import Quality
from edge_agent.pipeline import finish
from hil_tests import harness

PROTOCOL = "modbus"


async def test_connects_and_identifies(target: harness.Target, driver: ModbusDriver) -> None:
    identity = driver.describe()
    assert identity["device_id"] == str(target.config.device_id)
    assert identity["endpoint"] == target.config.transport.endpoint()
    if target.config.identify and target.real:
        print(f"{target.config.name}: {identity}")


async def test_every_channel_reads_good_and_as_expected(
    target: harness.Target, driver: ModbusDriver
) -> None:
    harness.check_readings(target, await driver.read(target.channels))


async def test_coalesced_read_agrees_with_one_channel_at_a_time(
    target: harness.Target, driver: ModbusDriver
) -> None:
    """Coalescing and decoding are right on this device: each channel read alone (its own
    request) gives what the coalesced read gave."""
    together = {r.channel: r for r in finish(await driver.read(target.channels), target.channels)}
    for channel in target.channels:
        (alone,) = finish(await driver.read([channel]), [channel])
        first = together[channel.name]
        assert alone.quality is first.quality is Quality.GOOD, (alone.reason, first.reason)
        if first.is_finite_number():
            # A measurement moves between two reads: compare within the bench's tolerance.
            expect = target.expect.get(channel.name)
            if expect is not None and expect.tolerance is not None:
                assert isinstance(alone.value, int | float)
                assert isinstance(first.value, int | float)
                assert abs(alone.value - first.value) <= expect.tolerance, channel.name
        else:
            assert alone.value == first.value, channel.name


async def test_requests_per_poll_stay_below_one_per_channel(
    target: harness.Target, driver: ModbusDriver
) -> None:
    await driver.read(target.channels)
    before = driver.requests_sent
    await driver.read(target.channels)
    per_poll = driver.requests_sent - before
    assert 1 <= per_poll <= len(target.channels)
    print(f"{target.config.name}: {per_poll} requests per poll for {len(target.channels)} channels")


async def test_repeated_polls_all_good(target: harness.Target, driver: ModbusDriver) -> None:
    took = await harness.poll(driver, target.channels, 20)
    print(harness.summary(target.config.name, took))
    assert max(took) < target.config.timeout_s


async def test_reconnects_after_close(target: harness.Target, driver: ModbusDriver) -> None:
    await driver.close()
    await driver.connect()
    harness.check_readings(target, await driver.read(target.channels))


async def test_illegal_address_marks_only_its_channel(
    target: harness.Target, driver: ModbusDriver
) -> None:
    """Probe ``illegal: {table, address}``: an address this device refuses. Read with the
    channels, only the probe is BAD, named ILLEGAL DATA ADDRESS; the split is remembered."""
    probe = target.probes.get("illegal")
    if probe is None:
        pytest.skip("no 'illegal' probe for this instrument in the bench file")
    data: dict[str, Any] = target.config.model_dump()
    data["channels"].append({"name": "illegal-probe", "unit": "1", **probe})
    config = ModbusInstrument.model_validate(data)
    async with harness.connected(config) as probing:
        for _ in range(2):
            readings = {r.channel: r for r in await probing.read(config.channels)}
            bad = readings.pop("illegal-probe")
            assert bad.quality is Quality.BAD
            assert "ILLEGAL DATA ADDRESS" in (bad.reason or "")
            assert all(r.quality is Quality.GOOD for r in readings.values())
