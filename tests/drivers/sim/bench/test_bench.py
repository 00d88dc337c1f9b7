"""The simulated bench over real sockets: every meter reads the calibrator's output through its
own error model; settling, output off, drift; every fault; the control channel; the calibrator's
SCPI exchange; and the safe state after an abort, checked on the simulator."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import statistics

import numpy as np
import pytest

from core.errors import DriverTimeout, WriteRejected
from drivers.modbus.driver import ModbusDriver
from drivers.reading import Quality
from drivers.sim.bench import BenchConfig, DmmSim, TransmitterSim
from drivers.sim.bench_physics import ErrorModel
from drivers.visa.driver import VisaDriver
from tests.drivers.sim.bench.conftest import Bench, RawScpi, start_bench

SOURCE_NOISE = 0.1e-6  # of the calibrator's range in use (the default CalibratorModel)


async def dcv(driver: VisaDriver | ModbusDriver) -> float:
    """One DC voltage reading (GOOD, or the test fails)."""
    (reading,) = await driver.read(driver.config.channels[:1])  # type: ignore[arg-type]
    assert reading.quality is Quality.GOOD, reading.reason
    assert isinstance(reading.value, float)
    return reading.value


def dmm_step(value: float, digits: int) -> float:
    """The resolution of an auto-ranged DMM reading (range / 10^digits)."""
    for span in (0.1, 1.0, 10.0, 100.0, 1000.0):
        if abs(value) <= span * 1.2:
            return span * 10.0**-digits
    return 1000.0 * 10.0**-digits


def source_sigma(level: float) -> float:
    for span in (0.1, 1.0, 10.0, 100.0, 1000.0):
        if abs(level) <= span * 1.2:
            return SOURCE_NOISE * span
    return SOURCE_NOISE * 1000


async def set_dcv(bench: Bench, level: float) -> None:
    await bench.calibrator.write({"function": "VOLT:DC", "voltage_dc": level, "output": True})


async def test_addresses_identities_and_agent_configs(bench: Bench) -> None:
    addresses = bench.sim.addresses()
    assert set(addresses) == {"calibrator", "reference", "uut-dmm", "uut-xmtr", "control"}
    assert addresses["uut-xmtr"]["protocol"] == "modbus"
    assert addresses["calibrator"]["resource"].startswith("TCPIP::127.0.0.1::")
    serials = {
        name: driver.describe()["serial"]
        for name, driver in (
            ("calibrator", bench.calibrator),
            ("reference", bench.reference),
            ("uut-dmm", bench.uut),
            ("uut-xmtr", bench.transmitter),
        )
    }
    assert serials == {
        "calibrator": "CAL-0001",
        "reference": "REF-0001",
        "uut-dmm": "MY12345",
        "uut-xmtr": "VTX-000042",
    }
    assert {name: a["serial"] for name, a in addresses.items() if name != "control"} == serials
    assert await bench.control.ask("*IDN?") == "ETALON-SIM,BENCH-CONTROL,CAL-0001,1.0"


async def test_settling_follows_the_time_constant(bench: Bench) -> None:
    physics = bench.sim.physics
    tau = physics.model.tau_s
    meter = bench.sim.dmms["reference"].meter
    await set_dcv(bench, 10.0)
    start = bench.clock.now_ns()
    target = 10.0 * (1 + physics.model.gain_ppm * 1e-6) + 1e-6
    for taus in (0.5, 1, 2, 3, 5, 8, 15):
        bench.clock.t_ns = start + int(taus * tau * 1e9)
        truth = target * (1 - math.exp(-taus))
        expected = meter.expected("VOLT:DC", truth, bench.clock.now_ns())
        reading = await dcv(bench.reference)
        tolerance = 5 * math.hypot(5e-8, SOURCE_NOISE * 10) + dmm_step(truth, 8)
        assert reading == pytest.approx(expected, abs=tolerance), taus


async def test_meters_agree_with_the_truth_within_their_declared_error(bench: Bench) -> None:
    physics = bench.sim.physics
    reference = bench.sim.dmms["reference"].meter
    uut = bench.sim.dmms["uut-dmm"].meter
    _, device = bench.sim.transmitters["uut-xmtr"]
    for level in (0.05, 0.5, 1.0, -1.0, 5.0, 10.0, -10.0, 11.5):
        await bench.calibrator.write({"voltage_dc": level, "output": True})
        bench.settle()
        now = bench.clock.now_ns()
        truth = physics.true_output(now)
        assert truth == pytest.approx(level, rel=3e-6, abs=2e-6)  # the calibrator's own error
        source = source_sigma(level)
        # The reference: within its small known error of the truth (0.3 ppm + 50 nV) …
        ref = await dcv(bench.reference)
        declared = 0.3e-6 * abs(truth) + 5e-8
        tolerance = 5 * math.hypot(5e-8, source) + dmm_step(truth, 8)
        assert abs(ref - truth) <= declared + tolerance, level
        assert ref == pytest.approx(reference.expected("VOLT:DC", truth, now), abs=tolerance)
        # … the units under test: their error models, within their noise and resolution.
        reading = await dcv(bench.uut)
        tolerance = 5 * math.hypot(3e-6, source) + dmm_step(truth, 6)
        assert reading == pytest.approx(uut.expected("VOLT:DC", truth, now), abs=tolerance)
        voltage = await dcv(bench.transmitter)
        expected = device.model.true_value("voltage", now)  # type: ignore[union-attr]
        assert voltage == pytest.approx(expected, abs=5 * 1e-4 + abs(expected) * 2**-23)


async def test_the_uut_reads_gain_offset_and_nonlinearity_that_a_fit_recovers() -> None:
    uut_error = ErrorModel(offset=50e-6, gain_ppm=80.0, quadratic=1e-6, noise=3e-6)
    config = BenchConfig(
        dmms=[
            DmmSim(name="reference", role="reference", serial="R1", digits=8),
            DmmSim(name="uut-dmm", serial="U1", errors={"VOLT:DC": uut_error}),
        ],
        transmitters=[TransmitterSim(error=ErrorModel(offset=-2e-3, gain_ppm=-500, noise=1e-4))],
    )
    bench, drivers = await start_bench(config)
    try:
        truths, dmm_errors, xmtr_errors = [], [], []
        for level in (-10.0, -7.0, -4.0, -1.0, 1.0, 3.0, 6.0, 9.0, 11.0):
            await bench.calibrator.write({"voltage_dc": level, "output": True})
            bench.settle()
            truth = bench.sim.physics.true_output()
            dmm = statistics.fmean([await dcv(bench.uut) for _ in range(5)])
            xmtr = statistics.fmean([await dcv(bench.transmitter) for _ in range(5)])
            truths.append(truth)
            dmm_errors.append(dmm - truth)
            xmtr_errors.append(xmtr - truth)
    finally:
        await bench.control.close()
        for driver in drivers:
            await driver.close()
        await bench.sim.stop()
    quadratic, gain, offset = np.polyfit(truths, dmm_errors, 2)
    assert offset == pytest.approx(50e-6, abs=6e-6)
    assert gain == pytest.approx(80e-6, abs=1.5e-6)
    assert quadratic == pytest.approx(1e-6, abs=1.5e-7)
    gain, offset = np.polyfit(truths, xmtr_errors, 1)
    assert offset == pytest.approx(-2e-3, abs=1e-4)
    assert gain == pytest.approx(-500e-6, abs=3e-5)


async def test_output_off_reads_about_zero_and_open_terminals(bench: Bench) -> None:
    await set_dcv(bench, 10.0)
    bench.settle()
    await bench.calibrator.write({"output": False})
    bench.settle()
    assert abs(await dcv(bench.reference)) < 5 * 5e-8 + 5e-8 + 1e-9
    uut = bench.sim.dmms["uut-dmm"].meter.error_model("VOLT:DC")
    assert await dcv(bench.uut) == pytest.approx(uut.offset, abs=5 * 3e-6 + 1e-6 / 2 + 1e-8)
    assert await dcv(bench.transmitter) == pytest.approx(0.5e-3, abs=5e-4)
    await bench.calibrator.write({"function": "RES", "resistance": 10_000})
    ohms = bench.reference.config.channels[1]
    (open_circuit,) = await bench.reference.read([ohms])
    assert open_circuit.quality is Quality.BAD and "overload" in (open_circuit.reason or "")
    await bench.calibrator.write({"output": True})
    bench.settle(40)
    (closed,) = await bench.reference.read([ohms])
    assert closed.value == pytest.approx(10_000 * (1 + 1.5e-6) + 1e-4, rel=2e-6)
    assert await dcv(bench.uut) == pytest.approx(uut.offset, abs=20e-6)  # no volts in RES


async def test_drift_during_the_run() -> None:
    drifting = ErrorModel(noise=2e-6, drift_per_hour=100e-6)
    config = BenchConfig(
        dmms=[
            DmmSim(name="reference", role="reference", serial="R1", digits=8),
            DmmSim(name="uut-dmm", serial="U1", errors={"VOLT:DC": drifting}),
        ]
    )
    bench, drivers = await start_bench(config)
    try:
        await set_dcv(bench, 5.0)
        bench.settle()
        truth = bench.sim.physics.true_output
        before = statistics.fmean([await dcv(bench.uut) - truth() for _ in range(10)])
        bench.clock.advance(2 * 3600)
        after = statistics.fmean([await dcv(bench.uut) - truth() for _ in range(10)])
    finally:
        await bench.control.close()
        for driver in drivers:
            await driver.close()
        await bench.sim.stop()
    assert after - before == pytest.approx(200e-6, abs=8e-6)


# -- faults ------------------------------------------------------------------------------------


async def test_the_calibrator_refuses_a_setpoint(bench: Bench) -> None:
    await set_dcv(bench, 1.0)
    await bench.control.command("SIM:FAULT calibrator,REFUSE,ON")
    assert await bench.control.errors() == []
    changes = bench.sim.physics.changes
    with pytest.raises(WriteRejected) as refused:
        await bench.calibrator.write({"voltage_dc": 2.0})
    assert refused.value.instrument_message == '-221,"Settings conflict"'
    assert bench.sim.physics.levels["VOLT:DC"] == 1.0
    assert bench.sim.physics.changes == changes
    await bench.calibrator.safe_state()  # standby is never refused
    assert bench.sim.physics.output is False
    await bench.control.command("SIM:FAULT:CLEAR calibrator")
    await bench.calibrator.write({"voltage_dc": 2.0})
    assert bench.sim.physics.levels["VOLT:DC"] == 2.0


async def test_the_unstable_source_never_settles(bench: Bench) -> None:
    await set_dcv(bench, 10.0)
    bench.settle()
    quiet = [await dcv(bench.reference) for _ in range(10)]
    assert statistics.stdev(quiet) < 1e-6
    await bench.control.command("SIM:FAULT calibrator,UNSTABLE,ON")
    wandering = []
    for _ in range(60):
        bench.clock.advance(0.1)
        wandering.append(await dcv(bench.reference))
    for start in range(0, 60, 10):  # no one-second window ever looks settled
        window = wandering[start : start + 10]
        assert statistics.stdev(window) > 100 * statistics.stdev(quiet) + 1e-4
    assert max(wandering) - min(wandering) == pytest.approx(2 * 300e-6 * 10, rel=0.1)


async def test_the_uut_stops_answering_mid_point(bench: Bench) -> None:
    await set_dcv(bench, 5.0)
    bench.settle()
    await bench.control.command("SIM:FAULT uut-dmm,SILENT_AFTER,2")
    await dcv(bench.uut)
    await dcv(bench.uut)
    with pytest.raises(DriverTimeout):
        await bench.uut.read(bench.uut.config.channels[:1])
    state = json.loads(await bench.control.ask("SIM:STATE?"))
    assert state["dmms"]["uut-dmm"]["faults"]["hang"] is True
    await bench.control.command("SIM:FAULT uut-dmm,SILENT,OFF")
    assert await dcv(bench.uut) == pytest.approx(5.0, abs=1e-3)  # on a fresh session
    await bench.control.command("SIM:FAULT uut-xmtr,SILENT,ON")
    with pytest.raises(DriverTimeout):
        await bench.transmitter.read(bench.transmitter.config.channels)
    await bench.control.command("SIM:FAULT uut-xmtr,SILENT,OFF")
    assert await dcv(bench.transmitter) == pytest.approx(5.0, abs=0.01)


async def test_the_uut_is_swapped(bench: Bench) -> None:
    assert (await bench.uut.identify())["serial"] == "MY12345"
    assert (await bench.transmitter.identify())["serial"] == "VTX-000042"
    await bench.control.command("SIM:FAULT uut-dmm,SERIAL,MY99999")
    await bench.control.command("SIM:FAULT uut-xmtr,SERIAL,VTX-000777")
    assert await bench.control.errors() == []
    assert (await bench.uut.identify())["serial"] == "MY99999"
    assert (await bench.transmitter.identify())["serial"] == "VTX-000777"
    serial_register = bench.sim.transmitters["uut-xmtr"][1]
    assert serial_register.stored["serial-number"] == "VTX-000777"


async def test_a_fault_sent_to_the_instrument_itself(bench: Bench) -> None:
    uut = await RawScpi.open(bench.sim.addresses()["uut-dmm"]["port"])
    try:
        await uut.send("SIM:FAULT SERIAL,SN-SELF")
        assert (await uut.ask("*IDN?")).split(",")[2] == "SN-SELF"
        await uut.send("SIM:FAULT NO_SUCH_FAULT,ON")
        assert await uut.errors() == ['-224,"Illegal parameter value"']
        assert json.loads(await uut.ask("SIM:FAULT?"))["serial"] == "SN-SELF"
    finally:
        await uut.close()


async def test_the_control_channel(bench: Bench) -> None:
    await set_dcv(bench, 2.0)
    bench.settle()
    truth = float(await bench.control.ask("SIM:TRUTH?"))
    assert truth == pytest.approx(bench.sim.physics.true_output(), rel=1e-12)
    state = json.loads(await bench.control.ask("SIM:STATE?"))
    assert state["calibrator"]["output"] is True and state["calibrator"]["level"] == 2.0
    assert state["transmitters"]["uut-xmtr"]["serial"] == "VTX-000042"
    for bad in (
        "SIM:FAULT nobody,HANG,ON",
        "SIM:FAULT calibrator,MELT,ON",
        "SIM:FAULT calibrator,REFUSE,MAYBE",
        "SIM:FAULT uut-dmm,GARBAGE,2",
        "SIM:FAULT calibrator",
        "SIM:FAULT:CLEAR nobody",
    ):
        await bench.control.send(bad)
        errors = await bench.control.errors()
        assert errors and errors[0].startswith(("-224", "-109")), bad
    await bench.control.command("SIM:FAULT uut-dmm,DELAY,0.2;:SIM:FAULT uut-xmtr,HANG,ON")
    await bench.control.command("SIM:FAULT:CLEAR")
    state = json.loads(await bench.control.ask("SIM:STATE?"))
    assert state["dmms"]["uut-dmm"]["faults"]["delay_s"] == 0.0


async def test_the_calibrators_scpi_exchange(bench: Bench) -> None:
    cal = await RawScpi.open(bench.sim.addresses()["calibrator"]["port"])
    try:
        script = [
            ("*IDN?", "ETALON-SIM,MFC5500-SIM,CAL-0001,2.3.1"),
            ("SOUR:VOLT 2000", None),
            ("SYST:ERR?", '-222,"Data out of range"'),
            ("SOUR:VOLT:RANG 1", None),
            ("SOUR:VOLT 5", None),
            ("SYST:ERR?", '-222,"Data out of range"'),
            ("SOUR:VOLT?", "+0.0000000000E+00"),
            ("SOUR:VOLT:RANG 10;:SOUR:VOLT 5;:SOUR:VOLT?", "+5.0000000000E+00"),
            ("SOURCE:VOLTAGE:DC:LEVEL:IMMEDIATE:AMPLITUDE?", "+5.0000000000E+00"),
            ("SOUR:VOLT:RANG?", "+1.00000E+01"),
            ("SOUR:BOGUS 1", None),
            ("SYST:ERR?", '-113,"Undefined header"'),
            ("OUTP MAYBE", None),
            ("SYST:ERR?", '-224,"Illegal parameter value"'),
            ("SOUR:RES -1", None),
            ("SYST:ERR?", '-222,"Data out of range"'),
            ("SOUR:FREQ 5", None),
            ("SYST:ERR?", '-222,"Data out of range"'),
            ("SOUR:FUNC DCV;FUNC?", "VOLT:DC"),
            ("OUTP ON;OUTP?", "1"),
            ("*RST;OUTP?;:SOUR:VOLT?", "0;+0.0000000000E+00"),
            ("SIM:FAULT REFUSE,ON", None),
            ("SOUR:VOLT 1;:OUTP ON", None),
            ("SYST:ERR?", '-221,"Settings conflict"'),
            ("SYST:ERR?", '-221,"Settings conflict"'),
            ("OUTP OFF;*OPC?", "1"),
            ("SYST:ERR?", '+0,"No error"'),
        ]
        for message, reply in script:
            if reply is None:
                await cal.send(message)
            else:
                assert await cal.ask(message) == reply, message
    finally:
        await cal.close()


# -- the safe state after an abort ---------------------------------------------------------------


async def test_after_an_abort_the_safe_state_turns_the_source_off(bench: Bench) -> None:
    async def run_points() -> None:
        # Until cancelled: a fixed number of points can all be done before the cancel comes (120
        # took under 0.1 s on a quiet machine, and the cancel then found the task ended).
        for level in itertools.cycle((1.0, 2.0, 5.0, 10.0, 15.0, 19.0)):
            await bench.calibrator.write({"voltage_dc": level, "output": True})
            await dcv(bench.reference)
            await dcv(bench.uut)

    points = asyncio.create_task(run_points())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not bench.sim.physics.output and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)  # until the first point has switched the output on
    await asyncio.sleep(0.1)
    points.cancel()  # SIGINT in the runner: the point is cut off wherever it was
    with pytest.raises(asyncio.CancelledError):
        await points
    assert bench.sim.physics.output is True
    records = await bench.calibrator.safe_state()
    assert bench.sim.physics.output is False
    state = json.loads(await bench.control.ask("SIM:STATE?"))
    assert state["calibrator"]["output"] is False
    assert records[-1].sent == ("OUTP OFF",) and records[-1].read_back is False


async def test_safe_state_after_the_link_dropped(bench: Bench) -> None:
    await set_dcv(bench, 10.0)
    bench.sim.calibrator_sim.drop_connections()
    await asyncio.sleep(0.05)
    records = await bench.calibrator.safe_state()
    assert bench.sim.physics.output is False
    assert records[-1].ok
    # The transmitter's safe state too, after its server closed every connection.
    await bench.transmitter.write({"trim_enable": True})
    server, device = bench.sim.transmitters["uut-xmtr"]
    server.drop_connections()
    await asyncio.sleep(0.05)
    await bench.transmitter.safe_state()
    assert device.stored["trim-enable"] is False


async def test_the_dmms_scpi_exchange(bench: Bench) -> None:
    await set_dcv(bench, 5.0)
    bench.settle()
    dmm = await RawScpi.open(bench.sim.addresses()["uut-dmm"]["port"])
    try:
        assert await dmm.ask("*IDN?") == "ETALON-SIM,DMM6500-SIM,MY12345,1.9.4"
        value = float(await dmm.ask("MEAS:VOLT:DC? 10"))
        assert value == pytest.approx(5.0, abs=2e-4)
        assert round(value / 1e-5) * 1e-5 == pytest.approx(value, abs=1e-12)  # 10 µV steps
        assert await dmm.ask("VOLT:DC:RANG?") == "+1.00000E+01"
        assert await dmm.ask("CONF:VOLT:DC 1;:READ?") == "+9.90000000E+37"  # 5 V on 1 V
        assert await dmm.ask("VOLT:DC:RANG:AUTO ON;:READ?") != "+9.90000000E+37"
        assert await dmm.ask("VOLT:DC:RANG?") == "+1.00000E+01"  # auto-ranged to 10 V
        assert len((await dmm.ask("SAMP:COUN 3;:READ?")).split(",")) == 3
        assert await dmm.ask('SAMP:COUN 1;:FUNC "RES";:FUNC?') == '"RES"'
        assert await dmm.ask("READ?") == "+9.90000000E+37"  # no resistance sourced: open
        await dmm.send("CONF:VOLT:DC 2000")
        await dmm.send('FUNC "HUMIDITY"')
        assert await dmm.errors() == ['-222,"Data out of range"', '-224,"Illegal parameter value"']
        precise = await RawScpi.open(bench.sim.addresses()["reference"]["port"])
        try:
            reading = await precise.ask("MEAS:VOLT:DC?")
        finally:
            await precise.close()
        assert len(reading.split("E")[0].replace("+", "").replace(".", "")) == 11  # 8½ digits
    finally:
        await dmm.close()


async def test_every_function_reaches_the_meters(bench: Bench) -> None:
    reference = bench.reference.config.channels
    await bench.calibrator.write({"function": "VOLT:AC", "voltage_ac": 7.0, "output": True})
    bench.settle()
    (acv,) = await bench.reference.read([reference[2]])
    assert acv.value == pytest.approx(7.0, rel=3e-5)
    assert await dcv(bench.reference) == pytest.approx(0.0, abs=2e-7)  # no DC in an AC output
    await bench.calibrator.write({"current_dc": 0.01})  # a level selects its function
    assert bench.sim.physics.function == "CURR:DC"
    bench.settle()
    current = await RawScpi.open(bench.sim.addresses()["reference"]["port"])
    try:
        amps = float(await current.ask("MEAS:CURR:DC?"))
    finally:
        await current.close()
    assert amps == pytest.approx(0.01 * (1 + 1.5e-6) + 2e-9, rel=1e-5)
