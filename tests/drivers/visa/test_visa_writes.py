"""Writes through the VISA driver to the simulated calibrator, over real sockets and a pty:
the exact exchange, limits refused before anything is sent, instrument errors, read-back,
timeouts, concurrency with reads, and the safe state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.errors import (
    DriverTimeout,
    LimitExceeded,
    NotConnected,
    SafeStateError,
    WriteInterrupted,
    WriteRefused,
    WriteRejected,
)
from drivers.reading import Quality
from drivers.setpoints import records_of
from drivers.sim.bench_instruments import Calibrator
from drivers.sim.scpi import ScpiSimulator, simulate_visa
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from tests.support.services import free_port

Start = Callable[..., Any]
Build = Callable[[VisaInstrument], VisaDriver]

NO_ERROR = '+0,"No error"'
TARGETS = [
    {"name": "function", "allowed": ["VOLT:DC", "RES"]},
    {"name": "voltage_dc", "min": -20, "max": 20},
    {"name": "voltage_dc_range", "allowed": [0.1, 1, 10]},
    {"name": "resistance", "min": 0, "max": 120_000},
    {"name": "output"},
]


def calibrator_config(resource: str, **overrides: Any) -> VisaInstrument:
    """The calibrator as a bench declares it: ±20 V, ranges to 10 V, output, standby."""
    data: dict[str, Any] = {
        "name": "calibrator",
        "protocol": "visa",
        "resource": resource,
        "backend": "@py",
        "profile": "multifunction-calibrator",
        "timeout_s": 1.0,
        "channels": [{"name": "cal-output", "measurement": "output_state"}],
        "targets": TARGETS,
        "safe_state": [{"target": "output", "value": False}],
    }
    data.update(overrides)
    return VisaInstrument.model_validate(data)


async def calibrator(scpi_sim: Start, **config: Any) -> tuple[ScpiSimulator, Calibrator]:
    sim: ScpiSimulator = await scpi_sim("multifunction-calibrator", serial="CAL-7", **config)
    assert isinstance(sim.instrument, Calibrator)
    return sim, sim.instrument


async def test_a_write_is_the_command_then_the_error_queue_then_the_read_back(
    scpi_sim: Start, drivers: Build
) -> None:
    sim, cal = await calibrator(scpi_sim)
    driver = drivers(calibrator_config(sim.tcp_resource))
    await driver.connect()
    sim.transcript.clear()
    (record,) = await driver.write({"voltage_dc": 10})
    assert list(sim.transcript) == [
        ("SYST:ERR?", NO_ERROR),  # stale entries drained first
        ("SOUR:VOLT 10", None),
        ("SYST:ERR?", NO_ERROR),
        ("SOUR:VOLT?", "+1.0000000000E+01"),
    ]
    assert record.sent == ("SOUR:VOLT 10",)
    assert record.confirmed == ("SYST:ERR? → no error", "SOUR:VOLT? → +1.0000000000E+01")
    assert (record.target, record.value, record.unit, record.read_back) == (
        "voltage_dc",
        10.0,
        "V",
        10.0,
    )
    assert record.ok and record.error is None and record.started_ns <= record.finished_ns
    assert cal.physics.levels["VOLT:DC"] == 10.0


async def test_every_kind_of_target_is_set_and_confirmed_in_order(
    scpi_sim: Start, drivers: Build
) -> None:
    sim, cal = await calibrator(scpi_sim)
    driver = drivers(calibrator_config(sim.tcp_resource))
    await driver.connect()
    records = await driver.write(
        {"function": "res", "resistance": 10_000, "output": True, "voltage_dc_range": 1}
    )
    assert [r.sent for r in records] == [
        ("SOUR:FUNC RES",),
        ("SOUR:RES 10000",),
        ("OUTP ON",),
        ("SOUR:VOLT:RANG 1",),
    ]
    assert [r.read_back for r in records] == ["RES", 10_000.0, True, 1.0]
    assert cal.physics.state()["function"] == "RES"
    assert cal.physics.output is True
    assert cal.physics.ranges["VOLT:DC"] == 1.0 and not cal.physics.auto_range["VOLT:DC"]
    assert set(driver.write_targets()) == {t["name"] for t in TARGETS}


async def test_out_of_limit_writes_never_reach_the_instrument(
    scpi_sim: Start, drivers: Build
) -> None:
    sim, cal = await calibrator(scpi_sim)
    driver = drivers(calibrator_config(sim.tcp_resource))
    await driver.connect()
    messages, changes = sim.messages, cal.physics.changes
    with pytest.raises(LimitExceeded) as refused:
        await driver.write({"voltage_dc": 1000})
    assert (refused.value.instrument, refused.value.target, refused.value.value) == (
        "calibrator",
        "voltage_dc",
        1000,
    )
    assert refused.value.limit == "max 20 V"
    # A whole set of set-points is checked before the first goes out.
    with pytest.raises(LimitExceeded):
        await driver.write({"output": True, "voltage_dc": 1.0, "voltage_dc_range": 100})
    with pytest.raises(WriteRefused, match="no writable target 'current_dc'"):
        await driver.write({"current_dc": 0.001})  # in the profile, not declared by the bench
    with pytest.raises(WriteRefused, match="not a finite number"):
        await driver.write({"voltage_dc": float("nan")})
    assert sim.messages == messages
    assert cal.physics.changes == changes
    assert cal.physics.output is False


async def test_an_instrument_error_fails_the_write_with_the_instruments_message(
    scpi_sim: Start, drivers: Build
) -> None:
    sim, cal = await calibrator(scpi_sim)
    driver = drivers(calibrator_config(sim.tcp_resource))
    await driver.connect()
    await driver.write({"voltage_dc_range": 1})  # a fixed 1 V range holds up to 1.2 V
    with pytest.raises(WriteRejected) as rejected:
        await driver.write({"voltage_dc": 5.0, "output": True})
    error = rejected.value
    assert error.instrument_message == '-222,"Data out of range"'
    assert "'SOUR:VOLT 5' refused by the instrument" in str(error)
    (record,) = records_of(error)
    assert record.sent == ("SOUR:VOLT 5",) and not record.ok
    assert record.confirmed == ('SYST:ERR? → -222,"Data out of range"',)
    assert cal.physics.output is False  # the output command after it was never sent
    # The queue is empty again: the next write is judged on its own.
    (ok,) = await driver.write({"voltage_dc": 1.0})
    assert ok.ok


async def test_the_refusal_fault_is_a_settings_conflict(scpi_sim: Start, drivers: Build) -> None:
    sim, cal = await calibrator(scpi_sim)
    driver = drivers(calibrator_config(sim.tcp_resource))
    await driver.connect()
    cal.set_fault("REFUSE", "ON")
    with pytest.raises(WriteRejected, match='-221,"Settings conflict"'):
        await driver.write({"voltage_dc": 1.0})
    assert cal.physics.levels["VOLT:DC"] == 0.0
    records = await driver.safe_state()  # standby is never refused
    assert records[0].read_back is False


async def test_a_read_back_that_differs_fails_the_write(scpi_sim: Start, drivers: Build) -> None:
    sim, _ = await calibrator(scpi_sim)
    wrong = {"command": "SOUR:VOLT {value}", "query": "SOUR:CURR?", "unit": "V"}
    config = calibrator_config(
        sim.tcp_resource,
        setpoints={"voltage_dc": wrong | {"min": -1020, "max": 1020}},
    )
    driver = drivers(config)
    await driver.connect()
    with pytest.raises(WriteRejected, match=r"read back '\+0\.0000000000E\+00' after setting 5 V"):
        await driver.write({"voltage_dc": 5})


def opc_profile(folder: Path) -> Path:
    """The calibrator's profile with ``write_sync: opc``."""
    shipped = Path(__file__).resolve().parents[3] / "src/drivers/visa/profiles"
    text = (shipped / "multifunction-calibrator.yaml").read_text()
    profile = folder / "calibrator-opc.yaml"
    profile.write_text(
        text.replace("name: multifunction-calibrator", "name: cal-opc") + "write_sync: opc\n"
    )
    return profile


async def test_opc_sync_waits_for_the_instrument_before_reading_its_errors(
    scpi_sim: Start, drivers: Build, tmp_path: Path
) -> None:
    sim, _ = await calibrator(scpi_sim)
    profile = opc_profile(tmp_path)
    driver = drivers(calibrator_config(sim.tcp_resource, profile=str(profile)))
    await driver.connect()
    sim.transcript.clear()
    (record,) = await driver.write({"output": True})
    assert [m for m, _ in sim.transcript] == ["SYST:ERR?", "OUTP ON", "*OPC?", "SYST:ERR?", "OUTP?"]
    assert record.confirmed[0] == "*OPC? → 1"


async def test_a_hung_instrument_interrupts_the_write_and_the_next_one_reopens(
    scpi_sim: Start, drivers: Build
) -> None:
    sim, cal = await calibrator(scpi_sim)
    driver = drivers(calibrator_config(sim.tcp_resource, timeout_s=0.4))
    await driver.connect()
    sim.faults.hang = True
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(WriteInterrupted) as interrupted:
        await driver.write({"voltage_dc": 2.0})
    assert loop.time() - start < 1.5
    assert isinstance(interrupted.value.__cause__, DriverTimeout)
    (record,) = records_of(interrupted.value)
    assert not record.ok
    assert record.sent == ()  # it hung on the drain before the command: nothing was sent
    sim.faults.hang = False
    (done,) = await driver.write({"voltage_dc": 2.0})
    assert done.ok and cal.physics.levels["VOLT:DC"] == 2.0
    assert sim.connections == 2  # a fresh session, not the one a late reply may be on


async def test_writes_and_reads_from_two_tasks_never_interleave(
    scpi_sim: Start, drivers: Build
) -> None:
    sim, _ = await calibrator(scpi_sim)
    config = calibrator_config(
        sim.tcp_resource,
        channels=[
            {"name": "out", "measurement": "output_state"},
            {"name": "level", "measurement": "voltage_dc_level"},
        ],
    )
    driver = drivers(config)
    await driver.connect()
    sim.transcript.clear()

    async def reads() -> None:
        for _ in range(20):
            readings = await driver.read(config.channels)
            assert all(r.quality is Quality.GOOD for r in readings), readings

    async def writes() -> None:
        for i in range(20):
            await driver.write({"voltage_dc": i / 10})

    await asyncio.gather(reads(), writes())
    messages = [m for m, _ in sim.transcript]
    for index, message in enumerate(messages):
        if message.startswith("SOUR:VOLT "):  # each write's exchange is contiguous
            assert messages[index - 1] == "SYST:ERR?"
            assert messages[index + 1 : index + 3] == ["SYST:ERR?", "SOUR:VOLT?"]


async def test_write_before_connect_is_interrupted_not_connected(drivers: Build) -> None:
    driver = drivers(calibrator_config("TCPIP::127.0.0.1::9::SOCKET"))
    with pytest.raises(WriteInterrupted) as interrupted:
        await driver.write({"output": False})
    assert isinstance(interrupted.value.__cause__, NotConnected)


async def test_identify_reads_the_instrument_now(scpi_sim: Start, drivers: Build) -> None:
    sim, cal = await calibrator(scpi_sim)
    driver = drivers(calibrator_config(sim.tcp_resource))
    await driver.connect()
    assert driver.describe()["serial"] == "CAL-7"
    cal.idn = cal.idn.replace("CAL-7", "CAL-8")
    assert (await driver.identify())["serial"] == "CAL-8"
    assert driver.describe()["serial"] == "CAL-8"


async def test_safe_state_connects_if_needed_and_turns_the_output_off(
    scpi_sim: Start, drivers: Build
) -> None:
    sim, cal = await calibrator(scpi_sim)
    cal.physics.set_level("VOLT:DC", 10.0)
    cal.physics.set_output(True)
    driver = drivers(calibrator_config(sim.tcp_resource))
    records = await driver.safe_state()  # never connected: it connects first
    assert cal.physics.output is False
    (record,) = records
    assert record.purpose == "safe_state"
    assert record.sent == ("OUTP OFF",) and record.read_back is False


async def test_a_safe_state_that_cannot_connect_says_so_and_leaves_no_half_session(
    drivers: Build,
) -> None:
    resource = f"TCPIP::127.0.0.1::{free_port()}::SOCKET"  # nothing listens there
    driver = drivers(calibrator_config(resource, connect_timeout_s=2.0))
    with pytest.raises(SafeStateError) as failure:
        await driver.safe_state()
    (reason,) = failure.value.failures
    assert reason.startswith("connect: ")
    assert not records_of(failure.value)  # nothing was sent
    # Closed again: the next exchange finds no session rather than a half-open one.
    with pytest.raises(NotConnected) as after:
        await driver.read(driver.config.channels)
    assert after.value.reason == "not connected"


async def test_safe_state_goes_on_past_a_failed_step(scpi_sim: Start, drivers: Build) -> None:
    sim, cal = await calibrator(scpi_sim)
    cal.physics.set_output(True)
    config = calibrator_config(sim.tcp_resource, safe_state=["SOUR:BOGUS 1", "OUTP OFF", "*RST"])
    driver = drivers(config)
    await driver.connect()
    with pytest.raises(SafeStateError) as failure:
        await driver.safe_state()
    records = records_of(failure.value)
    assert [(r.sent, r.ok) for r in records] == [
        (("SOUR:BOGUS 1",), False),
        (("OUTP OFF",), True),
        (("*RST",), True),
    ]
    assert failure.value.failures == [
        "SOUR:BOGUS 1: 'SOUR:BOGUS 1' refused by the instrument: -113,\"Undefined header\""
    ]
    assert cal.physics.output is False


async def test_safe_state_of_a_hung_instrument_sends_but_cannot_confirm(
    scpi_sim: Start, drivers: Build
) -> None:
    sim, cal = await calibrator(scpi_sim)
    driver = drivers(calibrator_config(sim.tcp_resource, timeout_s=0.3, safe_state=["OUTP OFF"]))
    await driver.connect()
    cal.physics.set_output(True)
    sim.faults.hang = True  # commands still execute; queries get no answer
    with pytest.raises(SafeStateError, match="not confirmed"):
        await driver.safe_state()
    sim.faults.hang = False
    records = await driver.safe_state()  # on a fresh session, confirmed this time
    assert records[0].ok
    assert cal.physics.output is False


async def test_a_calibrator_on_a_pseudo_terminal(scpi_sim: Start, drivers: Build) -> None:
    sim, cal = await calibrator(scpi_sim, tcp=False, pty=True)
    driver = drivers(calibrator_config(sim.asrl_resource, serial={"baud_rate": 115200}))
    await driver.connect()
    records = await driver.write({"voltage_dc": -7.5, "output": True})
    assert [r.read_back for r in records] == [-7.5, True]
    assert cal.physics.levels["VOLT:DC"] == -7.5 and cal.physics.output
    await driver.safe_state()
    assert cal.physics.output is False


@pytest.mark.parametrize(
    ("profile", "measurement"),
    [("multifunction-calibrator", "output_state"), ("bench-dmm", "voltage_dc")],
)
async def test_the_bench_profiles_have_standalone_simulators(
    profile: str, measurement: str, drivers: Build
) -> None:
    config = VisaInstrument.model_validate(
        {
            "name": "alone",
            "protocol": "visa",
            "resource": "TCPIP::127.0.0.1::5030::SOCKET",
            "profile": profile,
            "channels": [{"name": "c", "measurement": measurement}],
        }
    )
    async with simulate_visa(config) as simulated:
        driver = drivers(simulated)
        await driver.connect()
        (reading,) = await driver.read(simulated.channels)
        await driver.close()
    assert reading.quality is Quality.GOOD, reading.reason
    assert reading.value == pytest.approx(0.0, abs=2e-5)  # standby / open input
