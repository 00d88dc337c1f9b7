"""The blocking side of the VISA driver: one pyvisa session, used only from its worker thread.

pyvisa blocks. Each instrument gets one worker thread of its own (:class:`Worker`), so a hung
query holds up nobody else; pyvisa's own I/O timeout bounds how long the thread stays stuck. Every
pyvisa (and pyvisa-py) exception is mapped here, once, to the :mod:`core.errors` tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

import pyvisa
import pyvisa.constants
import pyvisa.errors
from pyvisa.resources import MessageBasedResource

from core.clock import Clock
from core.errors import DriverTimeout, NotConnected, ProtocolError, WriteRejected
from drivers.reading import Quality, Reading, midpoint_ns
from drivers.setpoints import SetValue, WriteTrace
from drivers.visa.config import VisaChannel, VisaInstrument
from drivers.visa.profiles import Measurement, Profile, Setpoint, parse_reply

log = logging.getLogger("etalon.drivers.visa")

T = TypeVar("T")

_MAX_REASON = 900  # the wire format allows 1024 characters of reason


class Worker:
    """One daemon thread running jobs in order, each result handed to an asyncio future.

    A daemon thread (not a ThreadPoolExecutor, whose threads are joined at interpreter exit) so
    that a VISA library stuck in a call can never keep the agent from exiting. Results go back
    with one ``call_soon_threadsafe`` (no concurrent.futures.Future in between): the hop costs
    about half as much, which matters at thousands of queries per second.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop] | None
        ] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """Queue a job; the returned future (of the running loop) gets its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((job, future, loop))
        return future

    def stop(self) -> None:
        """Let the thread end after the jobs already queued."""
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, future, loop = item
            if future.cancelled():  # abandoned before it started (a racy read, on purpose:
                continue  # at worst the job runs and its result is dropped)
            try:
                outcome: tuple[Any, BaseException | None] = (job(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side, re-raised
                outcome = (None, exc)
            # A closed loop (RuntimeError) has nobody waiting for this any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, *outcome)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


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


def parse_idn(reply: str) -> dict[str, str]:
    """``*IDN?`` (IEEE 488.2: manufacturer, model, serial, firmware) as a dict."""
    fields = [part.strip() for part in reply.split(",")]
    keys = ("manufacturer", "model", "serial", "firmware")
    identity = {key: value for key, value in zip(keys, fields, strict=False) if value}
    if len(fields) > len(keys):  # firmware strings with commas
        identity["firmware"] = ",".join(fields[3:])
    identity["idn"] = reply.strip()
    return identity


class VisaSession:
    """One open VISA session and what it knows; every method runs on the worker thread."""

    def __init__(self, config: VisaInstrument, profile: Profile, clock: Clock) -> None:
        self.config = config
        self.profile = profile
        self.clock = clock
        self.name = config.name
        self.resource: MessageBasedResource | None = None
        self.identity: dict[str, str] = {}
        self.needs_reopen = False
        """Set when an exchange was cut off (timeout, cancellation): a late reply may still be on
        its way, so the next exchange starts on a fresh session."""
        self.last_setup: str | None = None
        self.last_error_check_s = 0.0
        self.last_errors: list[str] = []
        self._no_error = re.compile(profile.errors.no_error) if profile.errors else None

    # -- pyvisa calls, mapped ----------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> Exception:
        """The etalon error for a pyvisa/OS exception raised while doing ``what``."""
        if isinstance(exc, pyvisa.errors.VisaIOError):
            if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
                self.needs_reopen = True
                return DriverTimeout(
                    self.name, f"{what}: no reply within {self.config.io_timeout_s:g} s"
                )
            self.needs_reopen = True
            return NotConnected(self.name, f"{what}: {exc.abbreviation}: {exc.description}")
        if isinstance(exc, pyvisa.errors.InvalidSession):
            self.needs_reopen = True
            return NotConnected(self.name, f"{what}: session closed")
        self.needs_reopen = True
        return NotConnected(self.name, f"{what}: {type(exc).__name__}: {exc}")

    def write(self, command: str) -> None:
        """Send a command."""
        resource = self._require()
        try:
            resource.write(command)
        except (pyvisa.errors.Error, OSError) as exc:
            raise self._fail(f"write {command!r}", exc) from exc

    def query(self, command: str) -> str:
        """Send a query and read its reply; an undecodable reply raises ProtocolError."""
        resource = self._require()
        try:
            return resource.query(command)
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                self.name, f"{command!r}: reply is not {self.config.encoding}: {exc.object[:40]!r}"
            ) from exc
        except (pyvisa.errors.Error, OSError) as exc:
            raise self._fail(f"query {command!r}", exc) from exc

    def _require(self) -> MessageBasedResource:
        if self.resource is None:
            raise NotConnected(self.name, "session is not open")
        return self.resource

    # -- open / close ------------------------------------------------------------------------

    def _open_resource(self) -> None:
        config = self.config
        backend = auto_backend() if config.backend == "auto" else config.backend
        try:
            manager = pyvisa.ResourceManager(backend)
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise NotConnected(self.name, f"VISA backend {backend!r}: {exc}") from exc
        options: dict[str, Any] = {
            "timeout": int(config.io_timeout_s * 1000),
            "open_timeout": int(config.connect_timeout_s * 1000),
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
                self.name, f"cannot open {config.resource}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(resource, MessageBasedResource):
            resource.close()
            raise NotConnected(self.name, f"{config.resource} is not a message-based resource")
        self.resource = resource
        self.needs_reopen = False
        self.last_setup = None
        self._device_clear()

    def _device_clear(self) -> None:
        """Drop whatever the instrument still meant to send us (viClear), where supported."""
        resource = self._require()
        try:
            resource.clear()
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code != pyvisa.constants.StatusCode.error_nonsupported_operation:
                raise self._fail("device clear", exc) from exc
        except (pyvisa.errors.Error, OSError, NotImplementedError) as exc:
            if not isinstance(exc, NotImplementedError):
                raise self._fail("device clear", exc) from exc

    def open(self) -> dict[str, str]:
        """Open, identify, drain stale errors, run the init sequence, check it took.

        Returns the identification; raises NotConnected, DriverTimeout or ProtocolError (init
        refused by the instrument: the reason names the errors it reported).
        """
        self._open_resource()
        identity: dict[str, str] = {}
        if self.profile.identify:
            identity = parse_idn(self.query(self.profile.identify))
        identity |= {"resource": self.config.resource, "profile": self.profile.name}
        self.identity = identity
        self._drain_stale("instrument had errors queued before init")
        for command in self.profile.init:
            self.write(command)
        refused = self.drain_errors()
        if refused:
            raise ProtocolError(
                self.name,
                self._cap(f"init sequence refused: {'; '.join(refused)}"),
            )
        self.last_error_check_s = self.clock.now_ns() / 1e9
        return identity

    def reopen(self) -> None:
        """A fresh session after a cut-off exchange (no init: the instrument kept its state)."""
        self.close()
        self._open_resource()
        leftover = self.drain_errors()
        if leftover:
            log.info(
                "errors queued by an interrupted exchange",
                extra={"instrument": self.name, "errors": leftover},
            )

    def identify(self) -> dict[str, str]:
        """Ask the instrument who it is now (``*IDN?``); the identification, also kept."""
        if self.needs_reopen:
            self.reopen()
        if self.profile.identify:
            identity = parse_idn(self.query(self.profile.identify))
            self.identity = identity | {
                "resource": self.config.resource,
                "profile": self.profile.name,
            }
        return dict(self.identity)

    def close(self) -> None:
        """Close the resource (never the ResourceManager: pyvisa shares one per backend, and
        closing it would close every other instrument's session too). Never raises."""
        resource, self.resource = self.resource, None
        if resource is None:
            return
        try:
            resource.close()
        except (pyvisa.errors.Error, OSError) as exc:
            log.debug("close failed", extra={"instrument": self.name, "error": str(exc)})

    # -- the error queue -------------------------------------------------------------------------

    def drain_errors(self) -> list[str]:
        """Read the error queue until it says empty; the entries, oldest first."""
        policy = self.profile.errors
        if policy is None or self._no_error is None:
            return []
        entries: list[str] = []
        for _ in range(policy.max_entries):
            reply = self.query(policy.query).strip()
            if self._no_error.match(reply):
                return entries
            entries.append(reply)
        entries.append(f"error queue not empty after {policy.max_entries} reads")
        return entries

    def _cap(self, text: str) -> str:
        return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."

    # -- writing -------------------------------------------------------------------------------

    def _before_write(self) -> None:
        """A fresh session if the last exchange was cut off; stale errors drained, so the error
        queue read after the write speaks of the write alone."""
        if self.needs_reopen:
            self.reopen()
        # A write (a *RST in a safe state, a function change) may undo what the last
        # measurement's setup assumed: the next read sends its setup again.
        self.last_setup = None
        self._drain_stale("errors queued before a write")

    def _drain_stale(self, message: str) -> None:
        """Empty the error queue of what came before us, logged once under ``message``."""
        stale = self.drain_errors()
        if stale:
            log.info(message, extra={"instrument": self.name, "errors": stale})

    def _send_and_confirm(self, command: str, target: str | None, trace: WriteTrace) -> None:
        """Send one command; ``*OPC?`` if the profile says so; the error queue must be empty."""
        trace.sent.append(command)
        self.write(command)
        if self.profile.write_sync == "opc":
            reply = self.query("*OPC?").strip()
            trace.confirmed.append(f"*OPC? → {reply}")
        policy = self.profile.errors
        if policy is None:
            trace.confirmed.append("no error queue to check")
            return
        errors = self.drain_errors()
        if errors:
            said = "; ".join(errors)
            trace.confirmed.append(f"{policy.query} → {said}")
            raise WriteRejected(
                self.name,
                self._cap(f"{command!r} refused by the instrument: {said}"),
                target,
                instrument_message=said,
            )
        trace.confirmed.append(f"{policy.query} → no error")

    def apply_setpoint(
        self, target: str, setpoint: Setpoint, value: SetValue, trace: WriteTrace
    ) -> None:
        """Set one set-point (its value checked already), confirm it, read it back if the
        profile can. Raises WriteRejected, or a DriverError when the exchange fails."""
        self._before_write()
        self._send_and_confirm(setpoint.render(value), target, trace)
        if setpoint.query is None:
            return
        reply = self.query(setpoint.query).strip()
        trace.confirmed.append(f"{setpoint.query} → {reply}")
        read_back = setpoint.parse_read_back(reply)
        trace.read_back = read_back
        if read_back is None or not setpoint.matches(value, read_back):
            raise WriteRejected(
                self.name,
                self._cap(
                    f"read back {reply!r} after setting {setpoint.shown(value)}"
                    f"{' ' + setpoint.unit if setpoint.unit else ''}"
                ),
                target,
                instrument_message=reply,
            )

    def apply_command(self, command: str, trace: WriteTrace) -> None:
        """Send one raw command of a safe state and confirm it."""
        self._before_write()
        self._send_and_confirm(command, None, trace)

    # -- reading -------------------------------------------------------------------------------

    def read(self, channels: Sequence[VisaChannel]) -> list[Reading]:
        """One reading per channel; each distinct query is sent once per tick."""
        if self.needs_reopen:
            self.reopen()
        policy = self.profile.errors
        by_measurement: dict[str, list[VisaChannel]] = {}
        for channel in channels:
            by_measurement.setdefault(channel.measurement, []).append(channel)
        replies: dict[str, tuple[int, str | ProtocolError]] = {}
        errors: dict[str, list[str]] = {}
        for name in by_measurement:
            measurement = self.profile.measurements[name]
            if measurement.setup and self.last_setup != name:
                for command in measurement.setup:
                    self.write(command)
            self.last_setup = name
            start = self.clock.now_ns()
            reply: str | ProtocolError
            try:
                reply = self.query(measurement.query)
            except ProtocolError as exc:  # this reply is garbage; the others may be fine
                reply = exc
            replies[name] = (midpoint_ns(start, self.clock.now_ns()), reply)
            if policy is not None and policy.check == "after_each_query":
                errors[name] = self.drain_errors()
        tick_errors: list[str] = []
        if policy is not None and policy.check in ("after_each_read", "periodic"):
            now_s = self.clock.now_ns() / 1e9
            if policy.check == "after_each_read" or now_s - self.last_error_check_s >= (
                policy.interval_s
            ):
                self.last_error_check_s = now_s
                tick_errors = self.drain_errors()
        reported = [e for entries in errors.values() for e in entries] + tick_errors
        if reported or self.last_errors:
            self._report(sorted(set(reported)))
        readings = []
        for channel in channels:
            ts, reply = replies[channel.measurement]
            found = errors.get(channel.measurement, []) + tick_errors
            readings.append(
                self._reading(
                    channel, self.profile.measurements[channel.measurement], ts, reply, found
                )
            )
        return readings

    def _reading(
        self,
        channel: VisaChannel,
        measurement: Measurement,
        ts: int,
        reply: str | ProtocolError,
        errors: list[str],
    ) -> Reading:
        if errors:
            return Reading.bad(
                self.name,
                channel.name,
                ts,
                measurement.unit,
                self._cap(f"instrument error: {'; '.join(errors)}"),
            )
        if isinstance(reply, ProtocolError):
            return Reading.bad(self.name, channel.name, ts, measurement.unit, reply.reason)
        parsed = parse_reply(reply, measurement, channel.index)
        if parsed.value is None:
            return Reading.bad(
                self.name, channel.name, ts, measurement.unit, parsed.problem or "no value"
            )
        return Reading(
            self.name, channel.name, ts, parsed.value, measurement.unit, Quality.GOOD, u=parsed.u
        )

    def _report(self, errors: list[str]) -> None:
        """Log the instrument's errors when they change (not on every tick they repeat)."""
        if errors == self.last_errors:
            return
        self.last_errors = errors
        if errors:
            log.warning(
                "instrument reported errors", extra={"instrument": self.name, "errors": errors}
            )
        else:
            log.info("instrument error queue clear", extra={"instrument": self.name})
