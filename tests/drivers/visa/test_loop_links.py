"""etalon's asyncio links to instruments the SCPI simulator serves on its own servers — HiSLIP and
VXI-11 on real loopback sockets, a serial port on a real pseudo-terminal — and the driver over
them: what holds for each alike (every profile read on the loop without a thread, errors and
writes both ways, a hung instrument, device clear, the query delay, cancellation, a dropped
connection, a long command in pieces). A test that cannot hold for a transport says why in its
parameters (a serial line has no connection to drop, no message to cut, nothing that tells a
late reply from the next). What is a transport's own is in test_hislip_link.py,
test_vxi11_link.py and test_serial_link.py; raw SOCKET resources have test_socket_link.py and
test_visa_driver.py (every driver test both ways)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from core.errors import DriverTimeout, NotConnected
from drivers.reading import Quality
from drivers.visa.driver import VisaDriver
from tests.drivers.visa.conftest import visa_config
from tests.drivers.visa.loop_transports import Start, Transport, on_the_loop, serving

NO_CLEAR = (
    "a serial line has no device clear (pyvisa-py has none either): the link flushes what came, "
    "and nothing on the line tells a reply still to come from the next; a read given up re-opens "
    "the port, whose clear drops the reply owed (test_serial_link.py)"
)


@pytest.fixture
def loop_sim(scpi_sim: Start, transport: Transport) -> Start:
    """Start SCPI simulators that serve the transport too."""
    return serving(scpi_sim, **transport.sim_options)


@on_the_loop()
async def test_a_driver_reads_every_profile_on_the_loop_without_a_thread(
    transport: Transport, loop_sim: Start, clock: Any
) -> None:
    before = {t.name for t in threading.enumerate()}
    for profile in ("generic-dmm", "longscale-dmm", "frequency-counter", "thermometer-readout"):
        sim = await loop_sim(profile, serial="SN-77")
        config = visa_config(transport.resource(sim), profile)
        driver = VisaDriver(config, clock)
        try:
            await driver.connect()
            assert driver._session is not None and driver._session.on_loop
            assert driver.describe()["serial"] == "SN-77"
            readings = await driver.read(config.channels)
            assert [r.quality for r in readings] == [Quality.GOOD] * len(readings), readings
            assert {t.name for t in threading.enumerate()} <= before  # no worker thread
        finally:
            await driver.close()
        if transport.connections(sim) is not None:
            assert transport.connections(sim) == transport.per_session  # one session


@pytest.mark.parametrize("socket_io", ["auto", "pyvisa"])
@on_the_loop()
async def test_errors_writes_and_readings_alike_both_ways(
    socket_io: str, transport: Transport, loop_sim: Start, clock: Any
) -> None:
    sim = await loop_sim("generic-dmm")
    config = visa_config(
        transport.resource(sim),
        "generic-dmm",
        socket_io=socket_io,
        channels=[{"name": "v", "measurement": "voltage_dc"}],
    )
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        assert driver._session is not None and driver._session.on_loop is (socket_io == "auto")
        (good,) = await driver.read(config.channels)
        assert good.quality is Quality.GOOD and good.value == pytest.approx(10, rel=1e-5)
        sim.push_error(-230, "Data corrupt or stale")
        (bad,) = await driver.read(config.channels)
        assert bad.quality is Quality.BAD
        assert bad.reason is not None and "Data corrupt or stale" in bad.reason
    finally:
        await driver.close()


@on_the_loop()
async def test_a_hung_instrument_times_out_alone_and_the_next_read_reopens(
    transport: Transport, loop_sim: Start, clock: Any
) -> None:
    hung, healthy = await loop_sim("longscale-dmm"), await loop_sim("longscale-dmm")
    one_query = {"check": "periodic", "interval_s": 3600}
    hung_config = visa_config(
        transport.resource(hung), "longscale-dmm", name="hung", timeout_s=0.5, errors=one_query
    )
    healthy_config = visa_config(transport.resource(healthy), "longscale-dmm", name="healthy")
    hung_driver, healthy_driver = VisaDriver(hung_config, clock), VisaDriver(healthy_config, clock)
    try:
        await hung_driver.connect()
        await healthy_driver.connect()
        assert hung_driver._session is not None and hung_driver._session.on_loop
        first_link = hung_driver._session.link
        hung.unanswered.add("READ?")
        loop = asyncio.get_running_loop()
        start = loop.time()
        stuck = asyncio.create_task(hung_driver.read(hung_config.channels))
        answered = 0
        while not stuck.done():  # the other instrument is read all the while
            (reading,) = await healthy_driver.read(healthy_config.channels)
            assert reading.quality is Quality.GOOD
            answered += 1
        with pytest.raises(DriverTimeout, match=r"no reply within 0\.5 s"):
            await stuck
        assert 0.45 < loop.time() - start < 1.5
        assert answered > 20
        hung.unanswered.clear()
        (reading,) = await hung_driver.read(hung_config.channels)
        assert reading.quality is Quality.GOOD
        assert hung_driver._session.link is not first_link  # re-opened
        if transport.connections(hung) is not None:
            assert transport.connections(hung) == 2 * transport.per_session
    finally:
        await hung_driver.close()
        await healthy_driver.close()


@on_the_loop(serial=NO_CLEAR)
async def test_a_device_clear_drops_a_late_reply(transport: Transport, loop_sim: Start) -> None:
    sim = await loop_sim("generic-dmm")
    link = await transport.open(visa_config(transport.resource(sim), "generic-dmm"))
    try:
        sim.faults.delay_s = 0.3
        link.set_timeout(0.1)
        with pytest.raises(TimeoutError):
            await link.query("FUNC?")
        link.set_timeout(2.0)
        start = time.monotonic()
        await link.clear()  # while the instrument still works on FUNC?
        # HiSLIP: no 0.1 s sleep, no wait for the reply. (VXI-11's core channel answers the
        # clear once the device_read it serves ends, at its io_timeout of 0.1 s.)
        assert time.monotonic() - start < 0.25
        sim.faults.delay_s = 0.0
        await asyncio.sleep(0.35)  # FUNC?'s reply would have been sent by now
        assert await link.query("*IDN?") == sim.instrument.idn
        assert await link.query("*OPC?") == "1"
    finally:
        link.close()


@on_the_loop()
async def test_the_query_delay_passes_between_the_write_and_the_read(
    transport: Transport, loop_sim: Start
) -> None:
    sim = await loop_sim("generic-dmm")
    link = await transport.open(
        visa_config(transport.resource(sim), "generic-dmm", query_delay_s=0.2)
    )
    try:
        start = time.monotonic()
        assert await link.query("*IDN?") == sim.instrument.idn  # it came during the delay
        assert time.monotonic() - start >= 0.2
    finally:
        link.close()


@on_the_loop(serial=NO_CLEAR)
async def test_a_late_reply_to_a_cancelled_query_is_not_taken_for_the_next(
    transport: Transport, loop_sim: Start
) -> None:
    sim = await loop_sim("generic-dmm")
    link = await transport.open(visa_config(transport.resource(sim), "generic-dmm"))
    try:
        sim.faults.delay_s = 0.3
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):  # the agent gives up on the read
                await link.query("FUNC?")
        sim.faults.delay_s = 0.0
        # FUNC?'s reply comes first, with the older message id (HiSLIP) or xid (VXI-11): not
        # taken for this one's.
        assert await link.query("*IDN?") == sim.instrument.idn
        assert await link.query("*OPC?") == "1"
    finally:
        link.close()


@pytest.mark.parametrize("socket_io", ["auto", "pyvisa"])
@on_the_loop(
    serial="a serial line has no connection to drop (a port that vanishes, the pty closed: "
    "test_serial_link.py's hostile replies)"
)
async def test_the_driver_reads_again_after_the_instrument_drops_the_connection(
    socket_io: str, transport: Transport, loop_sim: Start, clock: Any
) -> None:
    sim = await loop_sim("longscale-dmm")
    config = visa_config(
        transport.resource(sim), "longscale-dmm", timeout_s=2.0, socket_io=socket_io
    )
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        sim.drop_connections()
        await asyncio.sleep(0.05)
        start = time.monotonic()
        # pyvisa-py's HiSLIP client raises a bare RuntimeError here: mapped like any other.
        with pytest.raises(NotConnected):
            await driver.read(config.channels)
        if socket_io == "auto" or transport.name == "hislip":
            # At once, not the 2 s timeout. (pyvisa-py's VXI-11 RPC client does not see the
            # end of the stream: it waits out its timeout and a second more.)
            assert time.monotonic() - start < 0.5
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
    finally:
        await driver.close()


@on_the_loop(serial="a serial line carries bytes, not messages of a bounded size to cut")
async def test_a_long_command_goes_in_pieces_the_server_takes(
    transport: Transport, loop_sim: Start
) -> None:
    sim = await loop_sim("generic-dmm")
    transport.take_pieces(sim, 7)
    link = await transport.open(visa_config(transport.resource(sim), "generic-dmm"))
    try:
        command = "*IDN?" + ";*OPC?" * 9
        assert await link.query(command) == ";".join([sim.instrument.idn] + ["1"] * 9)
        assert sim.transcript[-1][0] == command  # one program message, put together again
        await link.write("VOLT:RANG 100")
        assert await link.query("VOLT:RANG?") == "+1.00000E+02"
    finally:
        link.close()
