"""A :class:`~drivers.visa.link.Link` through pyvisa: every resource kind, any VISA library.

pyvisa blocks: a link is used only from its session's worker thread
(:class:`~drivers.visa.worker.SessionWorker`), and its coroutines never suspend. Every pyvisa
(and pyvisa-py) exception is mapped here, once, to ``TimeoutError`` or
:class:`~drivers.visa.link.LinkError` — pyvisa-py's HiSLIP client among them raises a bare
``RuntimeError`` for a connection the instrument closed or a message it cannot parse, and an
``AssertionError`` for a header field it does not expect (a Data message's control code); its
VXI-11 client its own ``RPCError`` (a reply with the wrong xid, a call denied or not accepted,
a message that is no reply), xdrlib's ``Error`` and ``EOFError`` (a reply cut short).

A query goes straight to the VISA library's write and read (``viWrite``/``viRead``, where
pyvisa's ``query`` ends too) through :class:`LeanMessageIO`, a subclass of the resource class
pyvisa picks for the resource name. pyvisa's own ``query`` spends about 10 µs of CPU more per
query on the way (a context manager per read, debug-log calls, copies): a tenth of a fast
instrument's round trip on loopback, and a third of what the worker thread's hop costs.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from functools import cache
from typing import Any

import pyvisa
import pyvisa.constants
import pyvisa.errors
from pyvisa.resources import MessageBasedResource
from pyvisa_py.protocols import rpc, xdrlib

from core.errors import NotConnected
from drivers.visa.config import VisaInstrument
from drivers.visa.link import LinkError

log = logging.getLogger("etalon.drivers.visa")


@cache
def auto_backend() -> str:
    """'@ivi' when a VISA library (NI-VISA, Keysight IO Libraries) is installed, else '@py'."""
    try:
        from pyvisa.ctwrapper.highlevel import IVIVisaLibrary

        return "@ivi" if IVIVisaLibrary.get_library_paths() else "@py"
    except (ImportError, OSError):
        return "@py"


_PARITY = {
    "none": pyvisa.constants.Parity.none,
    "odd": pyvisa.constants.Parity.odd,
    "even": pyvisa.constants.Parity.even,
    "mark": pyvisa.constants.Parity.mark,
    "space": pyvisa.constants.Parity.space,
}
_STOP_BITS = {
    1: pyvisa.constants.StopBits.one,
    1.5: pyvisa.constants.StopBits.one_and_a_half,
    2: pyvisa.constants.StopBits.two,
}
_FLOW = {
    "none": pyvisa.constants.ControlFlow.none,
    "xon_xoff": pyvisa.constants.ControlFlow.xon_xoff,
    "rts_cts": pyvisa.constants.ControlFlow.rts_cts,
    "dtr_dsr": pyvisa.constants.ControlFlow.dtr_dsr,
}

_TIMEOUT = pyvisa.constants.StatusCode.error_timeout
_MORE = pyvisa.constants.StatusCode.success_max_count_read
"""A read's status when the reply filled the chunk: there is more to read."""
_QUIET = (pyvisa.constants.StatusCode.success_device_not_present, _MORE)
"""The read statuses pyvisa's own read keeps from warning (each read in a context manager);
:class:`LeanMessageIO` keeps them quiet for the session's life."""


class LeanMessageIO(MessageBasedResource):
    """A message-based resource whose ``query`` and ``write`` (with the resource's own
    terminations and encoding) call the VISA library's write and read directly. They do what
    pyvisa's do — the write termination appended (with pyvisa's warning when the message ends
    with it already), the query delay slept, the read repeated while the reply fills the chunk,
    the read termination stripped when the reply ends with it, else the reply returned as it
    came with pyvisa's warning — without their per-call overhead.
    Mixed into the class pyvisa picks for a resource name (:func:`lean_class`).

    pyvisa's own ``read`` is not for it: on return it would take back the session's warning
    filter (it adds and removes the same statuses around each read); the driver never calls it.
    """

    _lean_quiet: contextlib.ExitStack | None = None

    def open(
        self,
        access_mode: pyvisa.constants.AccessModes = pyvisa.constants.AccessModes.no_lock,
        open_timeout: int = 5000,
    ) -> None:
        """Open the session and keep its read statuses quiet until :meth:`close`."""
        super().open(access_mode, open_timeout)
        quiet = contextlib.ExitStack()
        quiet.enter_context(self.ignore_warning(*_QUIET))
        self._lean_quiet = quiet

    def close(self) -> None:
        """Close the session and drop its warning filter."""
        try:
            super().close()
        finally:
            quiet, self._lean_quiet = self._lean_quiet, None
            if quiet is not None:
                quiet.close()

    def write(
        self, message: str, termination: str | None = None, encoding: str | None = None
    ) -> int:
        """Write ``message`` and the write termination; pyvisa's ``write`` for other
        terminations or encodings."""
        if termination is not None or encoding is not None:
            return super().write(message, termination, encoding)
        count, _ = self.visalib.write(self.session, self._terminated(message).encode(self.encoding))
        return count

    def _terminated(self, message: str) -> str:
        """``message`` and the write termination, with pyvisa's warning when the message ends
        with the termination already (it is sent twice, as pyvisa sends it)."""
        termination = self.write_termination
        if termination and message.endswith(termination):
            warnings.warn("write message already ends with termination characters", stacklevel=3)
        return message + termination

    def query(self, message: str, delay: float | None = None) -> str:
        """Write ``message``, wait the query delay, read one reply."""
        lib, session = self.visalib, self.session
        lib.write(session, self._terminated(message).encode(self.encoding))
        delay = self.query_delay if delay is None else delay
        if delay > 0.0:
            time.sleep(delay)
        size = self.chunk_size
        reply, status = lib.read(session, size)
        if status == _MORE:  # a reply longer than a chunk
            whole = bytearray(reply)
            while status == _MORE:
                reply, status = lib.read(session, size)
                whole += reply
            reply = bytes(whole)
        text: str = reply.decode(self.encoding)
        termination = self.read_termination
        if not termination:
            return text
        if text.endswith(termination):
            return text[: -len(termination)]
        warnings.warn("read string doesn't end with termination characters", stacklevel=2)
        return text


_LEAN: dict[type[Any], type[MessageBasedResource]] = {}


def lean_class(manager: pyvisa.ResourceManager, resource: str) -> type[MessageBasedResource] | None:
    """The class pyvisa would open ``resource`` with, with :class:`LeanMessageIO` mixed in; None
    when that is no message-based class (pyvisa then picks, and the open says what is wrong)."""
    try:
        info = manager.resource_info(resource, extended=True)
        base = pyvisa.ResourceManager._resource_classes[
            (info.interface_type, info.resource_class)  # type: ignore[index]
        ]
    except (pyvisa.errors.Error, KeyError, ValueError):
        return None
    if not issubclass(base, MessageBasedResource):
        return None
    lean = _LEAN.get(base)
    if lean is None:
        lean = _LEAN[base] = type(f"Lean{base.__name__}", (LeanMessageIO, base), {})
    return lean


_LIBRARY_ERRORS = (
    pyvisa.errors.Error,
    OSError,
    RuntimeError,
    AssertionError,
    rpc.RPCError,
    xdrlib.Error,
    EOFError,
)
"""What pyvisa and its backends raise for an instrument's fault (see the module doc)."""


def _mapped(exc: BaseException) -> Exception:
    """``TimeoutError`` or :class:`LinkError` for a pyvisa/OS exception."""
    if isinstance(exc, pyvisa.errors.VisaIOError):
        if exc.error_code == _TIMEOUT:
            return TimeoutError()
        return LinkError(f"{exc.abbreviation}: {exc.description}")
    if isinstance(exc, pyvisa.errors.InvalidSession):
        return LinkError("session closed")
    return LinkError(f"{type(exc).__name__}: {exc}")


class PyvisaLink:
    """One open pyvisa resource (see the module doc)."""

    def __init__(self, name: str, resource: MessageBasedResource) -> None:
        self.name = name
        self.resource = resource

    @classmethod
    def open(cls, config: VisaInstrument, open_s: float) -> PyvisaLink:
        """Open ``config.resource`` within ``open_s``; NotConnected says why it cannot be."""
        name = config.name
        backend = auto_backend() if config.backend == "auto" else config.backend
        try:
            manager = pyvisa.ResourceManager(backend)
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise NotConnected(name, f"VISA backend {backend!r}: {exc}") from exc
        options: dict[str, Any] = {
            "timeout": int(config.io_timeout_s * 1000),
            "open_timeout": max(1, round(open_s * 1000)),
            "write_termination": config.write_termination,
            "read_termination": config.read_termination,
            "encoding": config.encoding,
            "query_delay": config.query_delay_s,
        }
        if config.serial is not None:
            options |= {
                "baud_rate": config.serial.baud_rate,
                "data_bits": config.serial.data_bits,
                "parity": _PARITY[config.serial.parity],
                "stop_bits": _STOP_BITS[config.serial.stop_bits],
                "flow_control": _FLOW[config.serial.flow_control],
            }
        try:
            resource = manager.open_resource(
                config.resource, resource_pyclass=lean_class(manager, config.resource), **options
            )
        except Exception as exc:
            raise NotConnected(
                name, f"cannot open {config.resource}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(resource, MessageBasedResource):
            resource.close()
            raise NotConnected(name, f"{config.resource} is not a message-based resource")
        return cls(name, resource)

    async def write(self, command: str) -> None:
        """Send a command (blocks)."""
        try:
            self.resource.write(command)
        except _LIBRARY_ERRORS as exc:
            raise _mapped(exc) from exc

    async def query(self, command: str) -> str:
        """Send a query and read its reply (blocks)."""
        try:
            return self.resource.query(command)
        except _LIBRARY_ERRORS as exc:
            raise _mapped(exc) from exc

    def set_timeout(self, seconds: float) -> None:
        """Set the VISA timeout attribute."""
        try:
            self.resource.timeout = max(1, round(seconds * 1000))
        except _LIBRARY_ERRORS as exc:
            raise _mapped(exc) from exc

    async def clear(self) -> None:
        """viClear, where the resource supports it (pyvisa-py's SOCKET: reads until 0.1 s of
        silence)."""
        try:
            self.resource.clear()
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code != pyvisa.constants.StatusCode.error_nonsupported_operation:
                raise _mapped(exc) from exc
        except NotImplementedError:
            pass
        except _LIBRARY_ERRORS as exc:
            raise _mapped(exc) from exc

    def close(self) -> None:
        """Close the resource (never the ResourceManager: pyvisa shares one per backend, and
        closing it would close every other instrument's session too). Never raises."""
        try:
            self.resource.close()
        except _LIBRARY_ERRORS as exc:
            log.debug("close failed", extra={"instrument": self.name, "error": str(exc)})
