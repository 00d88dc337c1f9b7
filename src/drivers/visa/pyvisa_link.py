"""A :class:`~drivers.visa.link.Link` through pyvisa: every resource kind, any VISA library.

pyvisa blocks: a link is used only from its session's worker thread
(:class:`~drivers.visa.worker.SessionWorker`), and its coroutines never suspend. Every pyvisa
(and pyvisa-py) exception is mapped here, once, to ``TimeoutError`` or
:class:`~drivers.visa.link.LinkError`.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import pyvisa
import pyvisa.constants
import pyvisa.errors
from pyvisa.resources import MessageBasedResource

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
            resource = manager.open_resource(config.resource, **options)
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
        except (pyvisa.errors.Error, OSError) as exc:
            raise _mapped(exc) from exc

    async def query(self, command: str) -> str:
        """Send a query and read its reply (blocks)."""
        try:
            return self.resource.query(command)
        except (pyvisa.errors.Error, OSError) as exc:
            raise _mapped(exc) from exc

    def set_timeout(self, seconds: float) -> None:
        """Set the VISA timeout attribute."""
        try:
            self.resource.timeout = max(1, round(seconds * 1000))
        except (pyvisa.errors.Error, OSError) as exc:
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
        except (pyvisa.errors.Error, OSError) as exc:
            raise _mapped(exc) from exc

    def close(self) -> None:
        """Close the resource (never the ResourceManager: pyvisa shares one per backend, and
        closing it would close every other instrument's session too). Never raises."""
        try:
            self.resource.close()
        except (pyvisa.errors.Error, OSError) as exc:
            log.debug("close failed", extra={"instrument": self.name, "error": str(exc)})
