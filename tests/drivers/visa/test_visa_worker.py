"""The VISA driver's worker thread: one per session, a whole due set per hop, and what becomes of
the thread when the instrument (or the VISA library) stops answering.

The worker itself is tested on real threads with jobs that block on an event; the driver against
the SCPI simulator over real sockets. A VISA library that ignores its own timeout cannot be made
from pyvisa-py (it honours it), so that case blocks the session's pyvisa resource on an event.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from core.errors import DriverTimeout, NotConnected
from drivers.reading import Quality
from drivers.sim.scpi import ScpiSimulator
from drivers.visa import driver as driver_module
from drivers.visa import worker as worker_module
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from drivers.visa.pyvisa_link import PyvisaLink
from drivers.visa.worker import Budget, SessionWorker

Start = Callable[..., Any]
Build = Callable[[VisaInstrument], VisaDriver]
Config = Callable[..., VisaInstrument]

THERMOMETER = [
    {"name": "t1", "measurement": "temperature_ch1"},
    {"name": "t2", "measurement": "temperature_ch2"},
    {"name": "r1", "measurement": "resistance_ch1"},
    {"name": "r2", "measurement": "resistance_ch2"},
]
QUERIES = ["MEAS:TEMP? (@1)", "MEAS:TEMP? (@2)", "MEAS:FRES? (@1)", "MEAS:FRES? (@2)"]


def _sent(sim: ScpiSimulator) -> list[str]:
    return [message for message, _ in sim.transcript]


# -- the worker on its own ---------------------------------------------------------------------


async def test_jobs_run_in_order_on_the_sessions_own_thread() -> None:
    worker = SessionWorker("visa-order")
    seen: list[tuple[int, str]] = []

    def job(n: int) -> Callable[[Budget], int]:
        def run(_: Budget) -> int:
            seen.append((n, threading.current_thread().name))
            return n * 10

        return run

    def fails(_: Budget) -> None:
        raise NotConnected("dmm", "socket closed")

    futures = [worker.submit(job(n), Budget(1.0)) for n in range(3)]
    failing = worker.submit(fails, Budget(1.0))
    assert await asyncio.gather(*futures) == [0, 10, 20]
    with pytest.raises(NotConnected, match="socket closed"):
        await failing
    assert seen == [(0, "visa-order"), (1, "visa-order"), (2, "visa-order")]
    worker.stop()
    await asyncio.to_thread(worker.thread.join, 2)
    assert not worker.alive


async def test_where_there_is_no_eventfd_a_pipe_and_a_socket_pair_carry_the_wake_ups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "_EVENTFD", False)
    worker = SessionWorker("visa-portable")  # this test's loop gets its port now, without one
    futures = [worker.submit(lambda _, n=n: n, Budget(1.0)) for n in range(3)]
    assert await asyncio.gather(*futures) == [0, 1, 2]
    assert await worker.submit(lambda _: "again", Budget(1.0)) == "again"
    worker.stop()
    await asyncio.to_thread(worker.thread.join, 2)
    assert not worker.alive


async def test_a_job_given_up_before_it_starts_never_runs() -> None:
    worker = SessionWorker("visa-skip")
    release = threading.Event()
    ran: list[str] = []
    first = worker.submit(lambda _: release.wait(5), Budget(5.0))
    budget = Budget(1.0)
    skipped = worker.submit(lambda _: ran.append("skipped"), budget)
    budget.cancelled = True  # what VisaDriver._call does when its awaiting task is cancelled
    release.set()
    assert await first is True
    with pytest.raises(asyncio.CancelledError):
        await skipped
    assert ran == []
    worker.stop()


async def test_the_budget_runs_from_when_the_thread_takes_the_job_up() -> None:
    worker = SessionWorker("visa-budget")
    release = threading.Event()
    blocking = worker.submit(lambda _: release.wait(5), Budget(5.0))
    queued = worker.submit(lambda budget: budget.left(), Budget(30.0))
    await asyncio.sleep(0.3)  # the second job waits in the queue meanwhile
    release.set()
    await blocking
    assert await queued > 29.0  # its 30 s started when it started, not when it was queued
    worker.stop()


async def test_an_abandoned_thread_fails_its_jobs_at_once_and_cleans_up_when_its_call_returns() -> (
    None
):
    worker = SessionWorker("visa-stuck")
    release = threading.Event()
    cleaned: list[str] = []
    ran: list[str] = []
    stuck = worker.submit(lambda _: release.wait(10), Budget(0.1))
    queued = worker.submit(lambda _: ran.append("queued"), Budget(0.1))
    await asyncio.sleep(0.1)
    worker.abandon(
        DriverTimeout("dmm", "the VISA call has not returned"), lambda: cleaned.append("x")
    )
    for future in (stuck, queued):
        with pytest.raises(DriverTimeout, match="has not returned"):
            await future
    assert worker.alive and cleaned == []  # still inside its call
    release.set()  # the library returns at last
    await asyncio.to_thread(worker.thread.join, 2)
    assert not worker.alive
    assert cleaned == ["x"]  # it closed its own session…
    assert ran == []  # …and ran nothing else


# -- the driver's worker: hung queries, deadlines, stuck threads ---------------------------------


async def test_a_query_that_hangs_in_a_set_ends_that_read_only(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    thermometer_sim = await scpi_sim("thermometer-readout")
    dmm_sim = await scpi_sim("longscale-dmm")
    config = visa_config(
        thermometer_sim.tcp_resource, "thermometer-readout", timeout_s=0.4, channels=THERMOMETER
    )
    thermometer = drivers(config)
    dmm_config = visa_config(dmm_sim.tcp_resource, "longscale-dmm", name="dmm")
    dmm = drivers(dmm_config)
    await thermometer.connect()
    await dmm.connect()
    thermometer_sim.unanswered.add("MEAS:TEMP? (@2)")

    dmm_readings = []

    async def read_the_dmm_meanwhile() -> None:
        while True:
            dmm_readings.extend(await dmm.read(dmm_config.channels))
            await asyncio.sleep(0.01)

    other = asyncio.create_task(read_the_dmm_meanwhile())
    try:
        with pytest.raises(DriverTimeout) as timed_out:
            await thermometer.read(config.channels)
        during = len(dmm_readings)
    finally:
        other.cancel()
    # "(the whole read)" is added when the machine was so slow that the hung query's VISA
    # timeout had to be cut to what was left of the read's.
    assert timed_out.value.reason.startswith("query 'MEAS:TEMP? (@2)': no reply within 0.4 s")
    assert timed_out.value.reason.endswith("(1 of 4 queries of the read answered)")
    assert during >= 3, "the other instrument was held up by the hung query"
    assert all(r.quality is Quality.GOOD for r in dmm_readings)
    assert "MEAS:FRES? (@1)" not in _sent(thermometer_sim)  # the read stopped at the hang

    thermometer_sim.unanswered.clear()
    readings = await thermometer.read(config.channels)
    assert [r.quality for r in readings] == [Quality.GOOD] * 4
    assert thermometer_sim.connections == 2  # re-opened: the late reply stays on the old session


async def test_a_read_of_slow_queries_stops_at_its_deadline(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("thermometer-readout")
    # Every query alone answers well within its VISA timeout; four of them cannot fit in 0.4 s.
    config = visa_config(
        sim.tcp_resource,
        "thermometer-readout",
        timeout_s=0.4,
        visa_timeout_s=0.3,
        channels=THERMOMETER,
    )
    driver = drivers(config)
    await driver.connect()
    sim.faults.delay_s = 0.15
    with pytest.raises(DriverTimeout) as timed_out:
        await driver.read(config.channels)
    assert "no reply within 0.4 s (the whole read)" in timed_out.value.reason
    assert "of 4 queries of the read answered" in timed_out.value.reason
    await asyncio.sleep(0.3)  # whatever the thread still meant to send, it would have sent now
    assert "MEAS:FRES? (@2)" not in _sent(sim)  # past the deadline nothing more was sent
    sim.faults.delay_s = 0.0
    readings = await driver.read(config.channels)
    assert [r.quality for r in readings] == [Quality.GOOD] * 4


async def test_a_read_given_up_by_the_agent_sends_no_further_query(
    scpi_sim: Start, drivers: Build, visa_config: Config
) -> None:
    sim = await scpi_sim("thermometer-readout")
    config = visa_config(
        sim.tcp_resource, "thermometer-readout", timeout_s=2.0, channels=THERMOMETER
    )
    driver = drivers(config)
    await driver.connect()
    sim.faults.delay_s = 0.3
    before = len(sim.transcript)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):  # the agent's own timeout
            await driver.read(config.channels)
    await asyncio.sleep(0.8)  # time for three more queries, had the thread gone on
    # Only the query already in flight (none, on a machine so busy that the thread had not
    # started the read when it was given up).
    assert _sent(sim)[before:] in ([QUERIES[0]], [])
    sim.faults.delay_s = 0.0
    readings = await driver.read(config.channels)
    assert [r.quality for r in readings] == [Quality.GOOD] * 4


class Dmm(NamedTuple):
    """A simulated long-scale DMM and its connected driver (0.3 s reads)."""

    sim: ScpiSimulator
    config: VisaInstrument
    driver: VisaDriver


@pytest.fixture
async def dmm(
    scpi_sim: Start, drivers: Build, visa_config: Config, monkeypatch: pytest.MonkeyPatch
) -> Dmm:
    """The DMM the stuck-library tests hang, with the watchdog's grace cut to 0.2 s."""
    monkeypatch.setattr(driver_module, "STUCK_GRACE_S", 0.2)
    sim = await scpi_sim("longscale-dmm")
    # A VISA library that ignores its own timeout: pyvisa's way only.
    config = visa_config(sim.tcp_resource, "longscale-dmm", timeout_s=0.3, socket_io="pyvisa")
    driver = drivers(config)
    await driver.connect()
    return Dmm(sim, config, driver)


def _hang_the_library(driver: VisaDriver, release: threading.Event) -> None:
    """Make the session's pyvisa resource block in its next query until ``release`` — a VISA
    library ignoring its own timeout."""
    session = driver._session
    assert session is not None and isinstance(session.link, PyvisaLink)
    resource = session.link.resource

    def stuck(*_args: object, **_kw: object) -> str:
        release.wait(30)
        return ""

    resource.query = stuck  # type: ignore[method-assign]


async def test_a_visa_call_stuck_past_its_timeout_abandons_the_thread_and_reading_goes_on(
    dmm: Dmm,
) -> None:
    sim, config, driver = dmm
    release = threading.Event()
    try:
        _hang_the_library(driver, release)
        stuck_worker, stuck_session = driver._worker, driver._session
        assert stuck_worker is not None and stuck_session is not None
        with pytest.raises(
            DriverTimeout, match=r"has not returned 0\.5 s after it began.*abandoned"
        ):
            await driver.read(config.channels)
        assert driver.stuck_threads == [stuck_worker] and stuck_worker.alive

        # The next read runs on a fresh thread and a fresh session (no init: state was kept).
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
        assert driver._worker is not stuck_worker
        assert sim.connections == 2
    finally:
        release.set()
    await asyncio.to_thread(stuck_worker.thread.join, 2)
    assert not stuck_worker.alive  # it returned, closed its own session and ended
    assert stuck_session.link is None
    (reading,) = await driver.read(config.channels)
    assert reading.quality is Quality.GOOD


async def test_no_session_is_opened_while_too_many_threads_are_stuck(
    dmm: Dmm,
) -> None:
    config, driver = dmm.config, dmm.driver
    release = threading.Event()
    try:
        for _ in range(driver_module.MAX_STUCK_THREADS):
            if driver._session is not None and driver._session.link is None:
                await driver.read(config.channels)  # opens the fresh session
            _hang_the_library(driver, release)
            with pytest.raises(DriverTimeout, match="abandoned"):
                await driver.read(config.channels)
        refusal = "2 worker threads are still stuck in the VISA library"
        with pytest.raises(NotConnected, match=refusal):
            await driver.read(config.channels)
        with pytest.raises(NotConnected, match=refusal):  # the agent's reconnect: refused too
            await driver.connect()
    finally:
        release.set()
    for worker in list(driver.stuck_threads):
        await asyncio.to_thread(worker.thread.join, 2)
    await driver.connect()  # they returned: a session again
    (reading,) = await driver.read(config.channels)
    assert reading.quality is Quality.GOOD


async def test_the_watchdog_follows_the_driver_to_another_event_loop(
    scpi_sim: Start, visa_config: Config, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "STUCK_GRACE_S", 0.2)
    sim = await scpi_sim("longscale-dmm")
    config = visa_config(sim.tcp_resource, "longscale-dmm", timeout_s=0.3, socket_io="pyvisa")
    driver = VisaDriver(config, clock)
    release = threading.Event()

    async def first() -> None:  # leaves a watchdog armed on this loop, which then ends
        await driver.connect()
        await driver.read(config.channels)

    async def second() -> str:
        _hang_the_library(driver, release)
        try:
            await driver.read(config.channels)
        except DriverTimeout as exc:
            return exc.reason
        finally:
            release.set()
            await driver.close()
        return "no timeout"

    def scenario() -> str:  # one asyncio.run after another, as a command-line tool would
        asyncio.run(first())
        return asyncio.run(second())

    assert "abandoned" in await asyncio.to_thread(scenario)


async def test_close_abandons_a_thread_stuck_in_the_library_and_returns(
    dmm: Dmm,
) -> None:
    config, driver = dmm.config, dmm.driver
    release = threading.Event()
    try:
        _hang_the_library(driver, release)
        stuck_worker = driver._worker
        assert stuck_worker is not None
        reading = asyncio.create_task(driver.read(config.channels))
        await asyncio.sleep(0.05)  # the read is inside the stuck call
        await driver.close()  # returns: does not wait for the library
        assert driver.stuck_threads == [stuck_worker] and stuck_worker.alive
        with pytest.raises(NotConnected, match="closed"):
            await reading
    finally:
        release.set()
    await asyncio.to_thread(stuck_worker.thread.join, 2)
    assert not stuck_worker.alive


@pytest.mark.skipif(not hasattr(os, "eventfd"), reason="the eventfd port is Linux's")
def test_a_post_after_the_port_closed_writes_into_no_file() -> None:
    """A worker thread that finishes its job after the loop's port closed (at the loop's
    collection, or at interpreter exit) must not write its wake-up into the file that took the
    closed eventfd's number (found in review)."""
    loop = asyncio.new_event_loop()
    try:
        port = worker_module.ResultPort(loop)
        fd = port._take.args[0]  # type: ignore[attr-defined]
        loop.remove_reader(fd)
        port.close()
        port.close()  # twice: the second must not close a number someone else holds now
        with tempfile.TemporaryFile() as reused:
            assert reused.fileno() == fd  # the lowest free number: the eventfd's
            port.post(lambda *_: None, loop.create_future(), None, None)
            reused.seek(0)
            assert reused.read() == b""
            os.fstat(reused.fileno())  # still open
    finally:
        loop.close()
