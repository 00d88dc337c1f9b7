"""Serial ASCII scenarios, the same against a real instrument and against the simulator."""

from __future__ import annotations

from drivers.serial_ascii.driver import SerialAsciiDriver
from hil_tests import harness

PROTOCOL = "serial_ascii"


async def test_every_channel_reads_good_and_as_expected(
    target: harness.Target, driver: SerialAsciiDriver
) -> None:
    harness.check_readings(target, await driver.read(target.channels))


async def test_repeated_polls_all_good(target: harness.Target, driver: SerialAsciiDriver) -> None:
    took = await harness.poll(driver, target.channels, 10)
    print(harness.summary(target.config.name, took))
    assert max(took) < target.config.timeout_s


async def test_reconnects_after_close(target: harness.Target, driver: SerialAsciiDriver) -> None:
    await driver.close()
    await driver.connect()
    harness.check_readings(target, await driver.read(target.channels))
