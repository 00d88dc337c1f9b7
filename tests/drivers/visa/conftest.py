"""Fixtures of the VISA tests: SCPI simulators on loopback, instrument configs, drivers.

Every test that builds its driver with the ``drivers`` fixture runs twice: once with a
``TCPIP::…::SOCKET`` (or serial ``ASRL…``) resource on etalon's own asyncio link
(``socket_io: auto``), once through pyvisa (``socket_io: pyvisa``), over the same real sockets
(or pseudo-terminal) to the same simulator. A config that says which way itself (or has neither
resource) runs once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from core.clock import SystemClock
from drivers.sim.scpi import ScpiSimConfig, ScpiSimulator
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver

# A channel per measurement of each shipped profile, as an agent config would list them.
PROFILE_CHANNELS: dict[str, list[dict[str, Any]]] = {
    "generic-dmm": [
        {"name": "zener-voltage", "measurement": "voltage_dc"},
        {"name": "zener-voltage-mean", "measurement": "voltage_dc_mean"},
        {"name": "resistor-4w", "measurement": "resistance_4w"},
        {"name": "resistor-2w", "measurement": "resistance_2w"},
    ],
    "longscale-dmm": [{"name": "zener-voltage", "measurement": "voltage_dc"}],
    "frequency-counter": [{"name": "rb-frequency", "measurement": "frequency"}],
    "thermometer-readout": [
        {"name": "bath-t1", "measurement": "temperature_ch1"},
        {"name": "bath-t2", "measurement": "temperature_ch2"},
        {"name": "sprt-r1", "measurement": "resistance_ch1"},
        {"name": "scan-t1", "measurement": "temperatures", "index": 0},
        {"name": "scan-t2", "measurement": "temperatures", "index": 1},
    ],
}


def visa_config(resource: str, profile: str, **overrides: Any) -> VisaInstrument:
    """An instrument config for a resource, with the profile's channels unless given."""
    data: dict[str, Any] = {
        "name": overrides.pop("name", f"{profile}-1"),
        "protocol": "visa",
        "resource": resource,
        "backend": "@py",
        "profile": profile,
        "timeout_s": 1.0,
        "channels": PROFILE_CHANNELS[profile],
    }
    data.update(overrides)
    return VisaInstrument.model_validate(data)


@pytest.fixture(name="visa_config")
def _visa_config() -> Callable[..., VisaInstrument]:
    """The :func:`visa_config` builder, for tests."""
    return visa_config


@pytest.fixture
def clock() -> SystemClock:
    """The clock both the simulator and the driver use."""
    return SystemClock()


@pytest.fixture
async def scpi_sim(clock: SystemClock) -> AsyncIterator[Callable[..., Any]]:
    """Start SCPI simulators on free loopback ports; all are stopped at the end of the test."""
    started: list[ScpiSimulator] = []

    async def start(personality: str, **config: Any) -> ScpiSimulator:
        simulator = ScpiSimulator(ScpiSimConfig(personality=personality, **config), clock)
        await simulator.start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        await simulator.stop()


@pytest.fixture(params=["asyncio", "pyvisa"])
def socket_io(request: pytest.FixtureRequest) -> str:
    """The way to a SOCKET resource this run of the test takes."""
    return str(request.param)


def on_path(config: VisaInstrument, socket_io: str) -> VisaInstrument:
    """``config`` taking ``socket_io``'s way; skips the test when that way is the other run's
    (the config says which way itself, or its resource is neither a SOCKET nor a serial
    port)."""
    if "socket_io" in config.model_fields_set or (
        config.socket_address() is None and config.serial_port() is None
    ):
        if socket_io == "pyvisa":
            pytest.skip("one way only: the config says which, or its resource has no asyncio way")
        return config
    if socket_io == "asyncio":
        return config
    return config.model_copy(update={"socket_io": "pyvisa"})


@pytest.fixture
async def drivers(
    clock: SystemClock, socket_io: str
) -> AsyncIterator[Callable[[VisaInstrument], VisaDriver]]:
    """Build VISA drivers (each on this run's way, see the module doc) that are closed at the
    end of the test."""
    built: list[VisaDriver] = []

    def build(config: VisaInstrument) -> VisaDriver:
        config = on_path(config, socket_io)
        driver = VisaDriver(config, clock)
        built.append(driver)
        return driver

    yield build
    for driver in built:
        await driver.close()
