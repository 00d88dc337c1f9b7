"""The VISA driver against the SCPI simulator, through pyvisa-py on real sockets and a pty."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.errors import DriverTimeout, NotConnected, ProtocolError
from drivers.reading import Quality
from drivers.sim.scpi import ScpiSimulator
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver

REPO = Path(__file__).resolve().parents[3]

# Where each test channel's true value lives in the simulator, and how close a reading must be
# (instrument resolution plus a few standard deviations of the model's noise).
TRUTH: dict[str, tuple[str, str, float]] = {
    "zener-voltage": ("dcv", "voltage", 5e-6),
    "zener-voltage-mean": ("dcv", "voltage", 5e-6),
    "resistor-4w": ("ohms", "resistance", 3e-3),
    "resistor-2w": ("ohms", "resistance", 3e-3),
    "rb-frequency": ("ch1", "frequency", 1e-3),
    "bath-t1": ("ch1", "temperature", 2e-3),
    "bath-t2": ("ch2", "temperature", 2e-3),
    "sprt-r1": ("ch1", "resistance", 5e-4),
    "scan-t1": ("ch1", "temperature", 2e-3),
    "scan-t2": ("ch2", "temperature", 2e-3),
}

Start = Callable[..., Any]
Build = Callable[[VisaInstrument], VisaDriver]
Config = Callable[..., VisaInstrument]


@pytest.mark.parametrize(
    "profile", ["generic-dmm", "longscale-dmm", "frequency-counter", "thermometer-readout"]
)
async def test_every_shipped_profile_reads_its_simulator(
    profile: str, scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim: ScpiSimulator = await scpi_sim(profile, serial="SN-4711")
    config = visa_config(sim.tcp_resource, profile)
    driver = drivers(config)
    await driver.connect()

    identity = driver.describe()
    manufacturer, model, serial, firmware = sim.instrument.idn.split(",")
    assert identity["manufacturer"] == manufacturer == "ETALON-SIM"
    assert identity["model"] == model
    assert identity["serial"] == serial == "SN-4711"
    assert identity["firmware"] == firmware
    assert identity["resource"] == sim.tcp_resource
    assert identity["profile"] == profile

    before = sim.clock.now_ns()
    readings = await driver.read(config.channels)
    after = sim.clock.now_ns()
    assert [r.channel for r in readings] == [c.name for c in config.channels]
    profile_measurements = config.resolved_profile().measurements
    for reading, channel in zip(readings, config.channels, strict=True):
        assert reading.quality is Quality.GOOD, reading.reason
        assert before <= reading.ts_ns <= after
        assert reading.unit == profile_measurements[channel.measurement].unit
        input_name, quantity, tolerance = TRUTH[channel.name]
        truth = sim.instrument.inputs[input_name].true_value(quantity, reading.ts_ns)
        assert reading.value == pytest.approx(truth, abs=tolerance), channel.name


async def test_init_sequence_reaches_the_instrument(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    dmm = await scpi_sim("longscale-dmm")
    counter = await scpi_sim("frequency-counter")
    for sim, profile in ((dmm, "longscale-dmm"), (counter, "frequency-counter")):
        await drivers(visa_config(sim.tcp_resource, profile)).connect()
    assert dmm.instrument.nplc["VOLT:DC"] == 100  # type: ignore[attr-defined]
    assert counter.instrument.gate_s == 1.0  # type: ignore[attr-defined]


async def test_mean_measurement_attaches_type_a_uncertainty(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("generic-dmm")
    config = visa_config(
        sim.tcp_resource,
        "generic-dmm",
        channels=[{"name": "zener-voltage-mean", "measurement": "voltage_dc_mean"}],
    )
    driver = drivers(config)
    await driver.connect()
    (reading,) = await driver.read(config.channels)
    assert reading.quality is Quality.GOOD
    assert reading.u is not None
    assert 0 < reading.u < 2e-6
    assert sim.instrument.sample_count == 5  # type: ignore[attr-defined]


async def test_error_queue_entry_marks_the_tick_bad_with_the_instruments_message(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("generic-dmm")
    config = visa_config(sim.tcp_resource, "generic-dmm")
    driver = drivers(config)
    await driver.connect()
    sim.push_error(-230, "Data corrupt or stale")
    readings = await driver.read(config.channels)
    assert all(r.quality is Quality.BAD for r in readings)
    assert all(r.reason == 'instrument error: -230,"Data corrupt or stale"' for r in readings)
    assert all(r.value is None for r in readings)
    again = await driver.read(config.channels)
    assert all(r.quality is Quality.GOOD for r in again)


async def test_after_each_query_pins_the_error_on_the_channel_that_caused_it(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("thermometer-readout")
    config = visa_config(
        sim.tcp_resource,
        "thermometer-readout",
        measurements={
            # A setup command the readout refuses: -224 lands in the queue right after it.
            "t1_bad_unit": {
                "setup": ["UNIT:TEMP RANKINE", "UNIT:TEMP C"],
                "query": "MEAS:TEMP? (@1)",
                "parse": "number_with_unit",
                "reply_unit": "C",
                "unit": "°C",
            }
        },
        channels=[
            {"name": "bath-t2", "measurement": "temperature_ch2"},
            {"name": "odd", "measurement": "t1_bad_unit"},
            {"name": "sprt-r1", "measurement": "resistance_ch1"},
        ],
    )
    driver = drivers(config)
    await driver.connect()
    good_t2, odd, good_r1 = await driver.read(config.channels)
    assert good_t2.quality is Quality.GOOD
    assert good_r1.quality is Quality.GOOD
    assert odd.quality is Quality.BAD
    assert odd.reason == 'instrument error: -224,"Illegal parameter value"'


async def test_init_refused_by_the_instrument_is_a_protocol_error(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("generic-dmm")
    config = visa_config(
        sim.tcp_resource, "generic-dmm", init=["*RST", "VOLT:DC:NPLC 7", "CONF:VOLTS:DC"]
    )
    with pytest.raises(ProtocolError) as caught:
        await drivers(config).connect()
    assert caught.value.reason == (
        'init sequence refused: -222,"Data out of range"; -113,"Undefined header"'
    )


async def test_garbled_number_spoils_only_its_own_reading(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("thermometer-readout")
    config = visa_config(sim.tcp_resource, "thermometer-readout")
    driver = drivers(config)
    await driver.connect()
    sim.faults.garbage_rate = 0.5
    readings = [r for _ in range(10) for r in await driver.read(config.channels)]
    bad = [r for r in readings if r.quality is Quality.BAD]
    good = [r for r in readings if r.quality is Quality.GOOD]
    assert bad
    assert good
    # A garbled SYST:ERR? reply counts as an error entry; a garbled value as unparseable.
    assert all(
        r.reason is not None
        and (r.reason.startswith("unparseable reply") or r.reason.startswith("instrument error"))
        for r in bad
    )


async def test_a_reply_in_the_wrong_unit_is_bad_not_wrong(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("thermometer-readout")
    config = visa_config(sim.tcp_resource, "thermometer-readout")
    driver = drivers(config)
    await driver.connect()
    sim.instrument.execute("UNIT:TEMP K")  # someone at the front panel
    by_channel = {r.channel: r for r in await driver.read(config.channels)}
    assert by_channel["bath-t1"].quality is Quality.BAD
    assert by_channel["bath-t1"].reason == "reply in unit 'K', expected 'C'"
    assert by_channel["sprt-r1"].quality is Quality.GOOD


async def test_hung_instrument_times_out_and_next_tick_reopens_the_session(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("generic-dmm")
    config = visa_config(sim.tcp_resource, "generic-dmm", timeout_s=0.4)
    driver = drivers(config)
    await driver.connect()
    assert sim.connections == 1
    sim.faults.hang = True
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(DriverTimeout, match=r"no reply within 0\.4 s"):
        await driver.read(config.channels)
    assert 0.35 < loop.time() - start < 1.5
    sim.faults.hang = False
    readings = await driver.read(config.channels)
    assert all(r.quality is Quality.GOOD for r in readings)
    assert sim.connections == 2  # a fresh session, not the one that may hold a late reply


async def test_the_re_open_after_a_hang_has_its_own_deadline_not_the_reads(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("longscale-dmm")
    one_query = {"check": "periodic", "interval_s": 3600}
    config = visa_config(sim.tcp_resource, "longscale-dmm", timeout_s=1.0, errors=one_query)
    driver = drivers(config)
    await driver.connect()
    sim.unanswered.add("READ?")
    with pytest.raises(DriverTimeout, match="READ"):
        await driver.read(config.channels)
    sim.unanswered.clear()
    # Each reply now takes 0.6 s: the re-open (its error-queue read) and the read's own query
    # would not fit in one 1 s read together (1.2 s, more on a loaded machine); the re-open
    # runs within the connect timeout. Each query alone has 0.4 s to spare within its own 1 s
    # (a loaded machine's late wake-ups took more than the 0.1 s a 0.2 s reply left in 0.3 s).
    sim.faults.delay_s = 0.6
    assert [r.quality for r in await driver.read(config.channels)] == [Quality.GOOD]
    assert sim.connections == 2


async def test_a_late_reply_is_never_taken_for_the_next_answer(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("generic-dmm")
    config = visa_config(
        sim.tcp_resource,
        "generic-dmm",
        timeout_s=0.3,
        channels=[
            {"name": "v", "measurement": "voltage_dc"},
            {"name": "r", "measurement": "resistance_4w"},
        ],
    )
    driver = drivers(config)
    await driver.connect()
    sim.faults.delay_s = 0.5
    with pytest.raises(DriverTimeout):
        await driver.read(config.channels)
    sim.faults.delay_s = 0.0
    await asyncio.sleep(0.4)  # the late reply has now been sent on the old session
    for _ in range(3):
        volts, ohms = await driver.read(config.channels)
        assert volts.value == pytest.approx(10, rel=1e-5)
        assert ohms.value == pytest.approx(10_000, rel=1e-5)


@pytest.mark.parametrize("medium", ["tcp", "pty"])
async def test_cancelled_read_leaves_no_stray_reply_behind(
    medium: str, scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    # On a serial line no fresh connection keeps the late reply out: the re-opened port's clear
    # waits for it and drops it.
    sim = await scpi_sim("generic-dmm", pty=medium == "pty")
    resource = sim.tcp_resource if medium == "tcp" else sim.asrl_resource
    config = visa_config(resource, "generic-dmm", timeout_s=0.6)
    driver = drivers(config)
    await driver.connect()
    sim.faults.delay_s = 0.4
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):  # the agent's timeout, shorter than pyvisa's
            await driver.read(config.channels)
    sim.faults.delay_s = 0.0
    readings = await driver.read(config.channels)
    assert [r.quality for r in readings] == [Quality.GOOD] * len(readings)
    assert readings[0].value == pytest.approx(10, rel=1e-5)
    if medium == "tcp":
        assert sim.connections == 2  # re-opened


async def test_closed_socket_is_survived(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("longscale-dmm")
    config = visa_config(sim.tcp_resource, "longscale-dmm", timeout_s=0.3)
    driver = drivers(config)
    await driver.connect()
    sim.drop_connections()
    await asyncio.sleep(0.05)
    # pyvisa-py sees a closed socket as silence: this tick times out (or finds the pipe broken)…
    with pytest.raises((DriverTimeout, NotConnected)):
        await driver.read(config.channels)
    # …and the next one reads on a fresh session.
    (reading,) = await driver.read(config.channels)
    assert reading.quality is Quality.GOOD


async def test_no_instrument_is_not_connected(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("generic-dmm")
    resource = sim.tcp_resource
    await sim.stop()
    with pytest.raises(NotConnected, match="ConnectionRefusedError"):
        await drivers(visa_config(resource, "generic-dmm")).connect()


async def test_read_before_connect_is_not_connected(drivers: Build, visa_config: Config) -> None:
    config = visa_config("TCPIP::127.0.0.1::9::SOCKET", "generic-dmm")
    with pytest.raises(NotConnected):
        await drivers(config).read(config.channels)


async def test_serial_instrument_on_a_pseudo_terminal(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("thermometer-readout", tcp=False, pty=True)
    assert sim.asrl_resource.startswith("ASRL/dev/pts/")
    config = visa_config(sim.asrl_resource, "thermometer-readout", serial={"baud_rate": 115200})
    driver = drivers(config)
    await driver.connect()
    assert driver.describe()["model"] == "TR1594-SIM"
    readings = await driver.read(config.channels)
    assert all(r.quality is Quality.GOOD for r in readings), [r.reason for r in readings]


async def test_pyvisa_sim_devices_are_supported(drivers: Build, visa_config: Config) -> None:
    config = visa_config(
        "TCPIP0::dmm.sim::inst0::INSTR",
        "generic-dmm",
        backend=f"{REPO / 'config' / 'pyvisa-sim' / 'devices.yaml'}@sim",
        channels=[{"name": "v", "measurement": "voltage_dc"}],
    )
    driver = drivers(config)
    await driver.connect()
    assert driver.describe()["manufacturer"] == "PYVISA-SIM"
    (reading,) = await driver.read(config.channels)
    assert reading.value == pytest.approx(10.000008)
    assert reading.quality is Quality.GOOD
