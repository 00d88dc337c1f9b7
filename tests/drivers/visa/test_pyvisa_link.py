"""pyvisa's way: the lean resource class a session opens (the VISA library's write and read
called directly, pyvisa's behaviour kept), and that a query on it still leaves the event loop
alone when the instrument hangs, and the session usable when a read is given up.

(The two ways' replies, terminations, delays and timeouts are compared in test_socket_link.py;
hung queries, deadlines and stuck threads in test_visa_worker.py: both run through this class.)
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from pyvisa import ResourceManager
from pyvisa.constants import StatusCode
from pyvisa.resources import (
    GPIBInstrument,
    SerialInstrument,
    TCPIPInstrument,
    TCPIPSocket,
    USBInstrument,
)

from core.errors import DriverTimeout, NotConnected
from drivers.reading import Quality
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from drivers.visa.link import drive
from drivers.visa.pyvisa_link import LeanMessageIO, PyvisaLink, lean_class
from tests.drivers.visa.conftest import visa_config

Start = Callable[..., Any]
Build = Callable[[VisaInstrument], VisaDriver]


@pytest.mark.parametrize(
    ("resource", "pyvisas_own"),
    [
        ("TCPIP::127.0.0.1::5025::SOCKET", TCPIPSocket),
        ("TCPIP0::192.168.0.7::inst0::INSTR", TCPIPInstrument),
        ("GPIB0::22::INSTR", GPIBInstrument),
        ("ASRL/dev/ttyUSB0::INSTR", SerialInstrument),
        ("USB0::0x0957::0x0607::MY123::INSTR", USBInstrument),
    ],
)
def test_each_resource_kind_gets_pyvisas_own_class_with_the_lean_io_mixed_in(
    resource: str, pyvisas_own: type[Any]
) -> None:
    lean = lean_class(ResourceManager("@py"), resource)
    assert lean is not None
    assert issubclass(lean, LeanMessageIO) and issubclass(lean, pyvisas_own)
    assert lean_class(ResourceManager("@py"), resource) is lean  # made once per class


def test_a_name_pyvisa_cannot_parse_is_left_to_pyvisa_which_says_what_is_wrong() -> None:
    assert lean_class(ResourceManager("@py"), "NOT-A-RESOURCE") is None
    config = visa_config("TCPIP::127.0.0.1::1::SOCKET", "longscale-dmm", socket_io="pyvisa")
    bad = config.model_copy(update={"resource": "NOT-A-RESOURCE"})
    with pytest.raises(NotConnected, match="cannot open NOT-A-RESOURCE"):
        PyvisaLink.open(bad, 1.0)


async def test_the_lean_session_reads_long_replies_whole_and_forgets_its_filter_at_close(
    scpi_sim: Start,
) -> None:
    sim = await scpi_sim("longscale-dmm")
    config = visa_config(sim.tcp_resource, "longscale-dmm", socket_io="pyvisa")
    link = await asyncio.to_thread(PyvisaLink.open, config, 2.0)
    resource = link.resource
    assert isinstance(resource, LeanMessageIO)
    session, library = resource.session, resource.visalib
    try:
        whole = await asyncio.to_thread(drive, link.query("*IDN?"))
        # A chunk shorter than the reply: read on while the library says there is more, and
        # no warning for it (warnings are errors in the tests).
        resource.chunk_size = 5
        assert await asyncio.to_thread(drive, link.query("*IDN?")) == whole
        assert whole.count(",") == 3 and not whole.endswith("\n")
        # A write with a termination of its own goes pyvisa's way.
        resource.write("*CLS", termination="\n")
        assert await asyncio.to_thread(drive, link.query("*IDN?")) == whole
        assert [message for message, _ in sim.transcript][-2:] == ["*CLS", "*IDN?"]
        assert StatusCode.success_max_count_read in library._ignore_warning_in_session[session]
    finally:
        link.close()
    assert StatusCode.success_max_count_read not in library._ignore_warning_in_session[session]


async def test_a_hung_query_holds_up_neither_the_loop_nor_the_next_read(
    scpi_sim: Start, drivers: Build
) -> None:
    sim = await scpi_sim("longscale-dmm")
    config = visa_config(sim.tcp_resource, "longscale-dmm", timeout_s=0.4, socket_io="pyvisa")
    driver = drivers(config)
    await driver.connect()
    beats: list[float] = []

    async def heartbeat() -> None:
        while True:
            beats.append(time.monotonic())
            await asyncio.sleep(0.01)

    beating = asyncio.create_task(heartbeat())
    try:
        sim.unanswered.add("READ?")
        start = time.monotonic()
        with pytest.raises(DriverTimeout, match=r"no reply within 0\.4 s"):
            await driver.read(config.channels)
        hung = [t for t in beats if t >= start]
        # The loop went on beating all through the hung query (a blocked loop: one beat, then
        # a gap of the whole 0.4 s).
        assert len(hung) >= 10, hung
        assert max(b - a for a, b in itertools.pairwise(hung)) < 0.35

        # Given up mid-query by the agent: the session stays usable, on a fresh connection.
        sim.unanswered.clear()
        sim.faults.delay_s = 0.3
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await driver.read(config.channels)
        sim.faults.delay_s = 0.0
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
        assert sim.connections == 3  # the first, after the hung query, after the given-up one
    finally:
        beating.cancel()


_DEVICE = """spec: "1.1"
devices:
  d:
    eom:
      TCPIP INSTR: {q: "\\n", r: "\\n"}
    dialogues:
      - q: "*IDN?"
        r: "SIM,D,1,2"
      - q: "LONG?"
        r: "%s"
      - q: "*RST"
  bare:
    eom:
      TCPIP INSTR: {q: "\\n", r: ""}
    dialogues:
      - q: "*IDN?"
        r: "SIM,BARE,1,2"
resources:
  TCPIP0::d.sim::inst0::INSTR: {device: d}
  TCPIP0::bare.sim::inst0::INSTR: {device: bare}
""" % ("Y" * 3000)


def _both(manager: ResourceManager, resource: str, **options: Any) -> list[Any]:
    """Each of pyvisa's own class and the lean one, opened on ``resource`` with ``options``."""
    lean = lean_class(manager, resource)
    assert lean is not None
    return [
        manager.open_resource(resource, timeout=200, **options),
        manager.open_resource(resource, resource_pyclass=lean, timeout=200, **options),
    ]


def _outcome(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """What ``call`` returns or raises, and the warnings it gives."""
    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")
        try:
            out = call()
        except Exception as exc:  # noqa: BLE001 - compared, not handled
            out = (type(exc).__name__, str(exc))
    return out, [str(w.message) for w in given]


@pytest.mark.parametrize(
    ("resource", "message", "options"),
    [
        ("d", "*IDN?", {}),
        ("d", "LONG?", {"chunk_size": 100}),  # a reply of many chunks
        ("d", "LONG?", {"chunk_size": 3000}),  # the reply fills the chunk exactly
        ("d", "*IDN?", {"read_termination": None}),
        ("d", "*IDN?", {"read_termination": ""}),
        ("d", "*IDN?", {"read_termination": "\r\n"}),  # the reply lacks it: warned
        ("d", "*IDN?", {"encoding": "latin-1"}),
        ("d", "*IDN?", {"query_delay": 0.02}),
        ("d", "*IDN?\n", {}),  # the message ends with the termination: warned, sent twice
        ("bare", "*IDN?", {}),  # the instrument ends no reply with the read termination
    ],
)
def test_the_lean_query_answers_warns_and_fails_as_pyvisas_own(
    tmp_path: Any, resource: str, message: str, options: dict[str, Any]
) -> None:
    device = tmp_path / "devices.yaml"
    device.write_text(_DEVICE)
    manager = ResourceManager(f"{device}@sim")
    terminations = {"read_termination": "\n", "write_termination": "\n"}
    own, lean = _both(manager, f"TCPIP0::{resource}.sim::inst0::INSTR", **terminations | options)
    try:
        assert isinstance(lean, LeanMessageIO) and not isinstance(own, LeanMessageIO)
        assert _outcome(lambda: lean.query(message)) == _outcome(lambda: own.query(message))
        for kind in ({}, {"termination": "\r\n"}, {"encoding": "latin-1"}):
            written = [_outcome(functools.partial(r.write, "*RST\n", **kind)) for r in (lean, own)]
            assert written[0] == written[1]
    finally:
        own.close()
        lean.close()
    lean.close()  # twice: nothing to do


def test_sessions_opened_and_closed_leave_no_warning_filter_behind(tmp_path: Any) -> None:
    device = tmp_path / "devices.yaml"
    device.write_text(_DEVICE)
    manager = ResourceManager(f"{device}@sim")
    resource = "TCPIP0::d.sim::inst0::INSTR"
    filters = list(warnings.filters)
    sessions = []
    for _ in range(50):
        lean = manager.open_resource(
            resource,
            resource_pyclass=lean_class(manager, resource),
            read_termination="\n",
            write_termination="\n",
        )
        sessions.append(lean.session)
        assert lean.query("*IDN?") == "SIM,D,1,2"
        lean.close()
    assert warnings.filters == filters
    ignored = manager.visalib._ignore_warning_in_session
    assert not any(ignored.get(session) for session in sessions)
