"""The blocking side of the VISA driver: one pyvisa session, used only from its worker thread.

pyvisa blocks. Each instrument gets one worker thread of its own
(:class:`~drivers.visa.worker.SessionWorker`), so a hung query holds up nobody else. Each job on
that thread runs under a :class:`~drivers.visa.worker.Budget`: before every query the session
checks the job's deadline and whether it was given up, and cuts the query's VISA timeout to what
is left, so the thread is free again by the deadline however many queries hang. Every pyvisa (and
pyvisa-py) exception is mapped here, once, to the :mod:`core.errors` tree.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

import pyvisa
import pyvisa.constants
import pyvisa.errors
from pyvisa.resources import MessageBasedResource

from core.clock import Clock
from core.errors import DriverTimeout, NotConnected, ProtocolError, WriteRejected
from drivers.reading import Reading, midpoint_ns
from drivers.setpoints import SetValue, WriteTrace
from drivers.visa.config import VisaChannel, VisaInstrument
from drivers.visa.due_set import DueSets, capped, make_reading
from drivers.visa.profiles import Profile, Setpoint
from drivers.visa.worker import Budget

log = logging.getLogger("etalon.drivers.visa")

T = TypeVar("T")

CLIP_SLACK = 0.05
"""A query's VISA timeout is cut to what is left of its job's budget once that is shorter by more
than this share of the budget: a job overruns its deadline by at most that much, and a fast
instrument's queries do not each pay for setting the VISA timeout attribute."""


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
        self._due_sets = DueSets(profile)
        self.budget = Budget(config.connect_timeout_s + config.timeout_s, "connect")
        self.budget.start()
        """The budget of the job in progress (set by :meth:`run`)."""
        self._timeout_s = config.io_timeout_s
        """The VISA timeout in force: the configured one, or less near a job's deadline."""
        self._clipped = False

    def successor(self) -> VisaSession:
        """A fresh session for the same instrument (not open yet: its first exchange opens it,
        without the init sequence), knowing what this one knew. For a new worker thread when
        this session's thread is stuck inside the VISA library."""
        fresh = VisaSession(self.config, self.profile, self.clock)
        fresh.identity = dict(self.identity)
        fresh.last_error_check_s = self.last_error_check_s
        fresh.last_errors = list(self.last_errors)
        fresh.needs_reopen = True
        return fresh

    def run(self, budget: Budget, job: Callable[[VisaSession], T]) -> T:
        """Run ``job`` under ``budget`` (on the worker thread)."""
        self.budget = budget
        if self._clipped and self.resource is not None:  # the last job ran close to its deadline
            self._set_timeout(self.config.io_timeout_s, clipped=False)
        return job(self)

    # -- pyvisa calls, mapped ----------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> Exception:
        """The etalon error for a pyvisa/OS exception raised while doing ``what``."""
        if isinstance(exc, pyvisa.errors.VisaIOError):
            if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
                self.needs_reopen = True
                if self._clipped:  # cut short by the job's deadline, not the VISA timeout
                    budget = self.budget
                    return DriverTimeout(
                        self.name,
                        f"{what}: no reply within {budget.seconds:g} s (the whole {budget.label})",
                    )
                return DriverTimeout(self.name, f"{what}: no reply within {self._timeout_s:g} s")
            self.needs_reopen = True
            return NotConnected(self.name, f"{what}: {exc.abbreviation}: {exc.description}")
        if isinstance(exc, pyvisa.errors.InvalidSession):
            self.needs_reopen = True
            return NotConnected(self.name, f"{what}: session closed")
        self.needs_reopen = True
        return NotConnected(self.name, f"{what}: {type(exc).__name__}: {exc}")

    def _within_budget(self, verb: str, command: str) -> None:
        """Refuse to send ``command`` past the job's deadline or once the job was given up; cut
        the VISA timeout to what is left of the budget when that is shorter. (The message is
        made only on failure: this runs before every query.)"""
        budget = self.budget
        left = budget.deadline - time.monotonic()
        if budget.cancelled or left <= 0:
            why = (
                f"the {budget.label} was cancelled"
                if budget.cancelled
                else f"the {budget.label}'s {budget.seconds:g} s ran out"
            )
            raise DriverTimeout(self.name, f"{verb} {command!r}: not sent, {why}")
        if left < self._timeout_s - CLIP_SLACK * budget.seconds:
            self._set_timeout(left, clipped=True)

    def _set_timeout(self, seconds: float, *, clipped: bool) -> None:
        resource = self._require()
        try:
            resource.timeout = max(1, round(seconds * 1000))
        except (pyvisa.errors.Error, OSError) as exc:
            raise self._fail("set the VISA timeout", exc) from exc
        self._timeout_s = seconds
        self._clipped = clipped

    def write(self, command: str) -> None:
        """Send a command."""
        resource = self._require()
        self._within_budget("write", command)
        try:
            resource.write(command)
        except (pyvisa.errors.Error, OSError) as exc:
            raise self._fail(f"write {command!r}", exc) from exc

    def query(self, command: str) -> str:
        """Send a query and read its reply; an undecodable reply raises ProtocolError."""
        resource = self.resource
        if resource is None:
            raise NotConnected(self.name, "session is not open")
        self._within_budget("query", command)
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
            # Opening is bounded by the job's budget too (a re-open happens inside a read).
            "open_timeout": max(1, round(min(config.connect_timeout_s, self.budget.left()) * 1000)),
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
        self._timeout_s, self._clipped = config.io_timeout_s, False
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
                capped(f"init sequence refused: {'; '.join(refused)}"),
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
                capped(f"{command!r} refused by the instrument: {said}"),
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
                capped(
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
        """One reading per channel; each distinct query is sent once per tick. A query that
        goes unanswered ends the read: DriverTimeout, saying how far the read got."""
        due = self._due_sets.of(channels)
        if self.needs_reopen:
            self.reopen()
        policy = self.profile.errors
        each_query = policy is not None and policy.check == "after_each_query"
        now_ns = self.clock.now_ns
        replies: list[tuple[int, str | ProtocolError]] = []
        errors: list[list[str]] = []
        # A query's end is the next one's start, unless setup commands or an error-queue drain
        # come between them (one clock read per query instead of two).
        start = now_ns()
        for planned in due.queries:
            measurement = planned.measurement
            if measurement.setup and self.last_setup != planned.name:
                for command in measurement.setup:
                    self.write(command)
                start = now_ns()
            self.last_setup = planned.name
            reply: str | ProtocolError
            try:
                reply = self.query(measurement.query)
            except ProtocolError as exc:  # this reply is garbage; the others may be fine
                reply = exc
            except DriverTimeout as exc:
                if len(due.queries) == 1:
                    raise
                raise DriverTimeout(
                    self.name,
                    f"{exc.reason} ({len(replies)} of {len(due.queries)} queries of the read "
                    "answered)",
                ) from exc
            end = now_ns()
            replies.append((midpoint_ns(start, end), reply))
            start = end
            if each_query:
                errors.append(self.drain_errors())
                start = now_ns()
        tick_errors: list[str] = []
        if policy is not None and policy.check in ("after_each_read", "periodic"):
            now_s = start / 1e9  # the last query's end (or later): now, near enough
            if policy.check == "after_each_read" or now_s - self.last_error_check_s >= (
                policy.interval_s
            ):
                self.last_error_check_s = now_s
                tick_errors = self.drain_errors()
        if tick_errors or self.last_errors or any(errors):
            self._report(sorted({e for entries in errors for e in entries} | set(tick_errors)))
        name = self.name
        readings = []
        for planned_channel in due.channels:
            ts, reply = replies[planned_channel.query]
            found = errors[planned_channel.query] + tick_errors if each_query else tick_errors
            readings.append(make_reading(name, planned_channel, ts, reply, found))
        return readings

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
