"""One instrument's session: identify, drain the error queue, run a due set, write and confirm —
written once, as coroutines over a :class:`~drivers.visa.link.Link`.

Over a :class:`~drivers.visa.pyvisa_link.PyvisaLink` the coroutines never suspend, and the
session's worker thread (:class:`~drivers.visa.worker.SessionWorker`) runs each job to its end
(:func:`~drivers.visa.link.drive`); over a :class:`~drivers.visa.socket_link.SocketLink`, a
:class:`~drivers.visa.hislip_link.HislipLink`, a :class:`~drivers.visa.vxi11_link.Vxi11Link` or a
:class:`~drivers.visa.serial_link.SerialLink` they run on the event loop. Either way each job runs
under a :class:`~drivers.visa.worker.Budget`: before every query the session checks the job's
deadline and whether it was given up, and cuts the query's timeout to what is left, so the job ends
by its deadline however many queries hang.
What a link raises is worded here, once, in the :mod:`core.errors` tree.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from time import monotonic
from typing import Any, TypeVar

from core.clock import Clock
from core.errors import DriverTimeout, NotConnected, ProtocolError, WriteRejected
from drivers.reading import Reading, midpoint_ns
from drivers.setpoints import SetValue, WriteTrace
from drivers.visa.config import VisaChannel, VisaInstrument
from drivers.visa.due_set import DueSets, capped, make_reading
from drivers.visa.hislip_link import HislipLink
from drivers.visa.link import Link, LinkError
from drivers.visa.profiles import Profile, Setpoint
from drivers.visa.pyvisa_link import PyvisaLink
from drivers.visa.serial_link import SerialLink
from drivers.visa.socket_link import SocketLink
from drivers.visa.vxi11_link import Vxi11Link
from drivers.visa.worker import Budget

log = logging.getLogger("etalon.drivers.visa")

T = TypeVar("T")

CLIP_SLACK = 0.05
"""A query's VISA timeout is cut to what is left of its job's budget once that is shorter by more
than this share of the budget: a job overruns its deadline by at most that much, and a fast
instrument's queries do not each pay for setting the VISA timeout attribute."""


def parse_idn(reply: str) -> dict[str, str]:
    """``*IDN?`` (IEEE 488.2: manufacturer, model, serial, firmware) as a dict."""
    fields = [part.strip() for part in reply.split(",")]
    keys = ("manufacturer", "model", "serial", "firmware")
    identity = {key: value for key, value in zip(keys, fields, strict=False) if value}
    if len(fields) > len(keys):  # firmware strings with commas
        identity["firmware"] = ",".join(fields[3:])
    identity["idn"] = reply.strip()
    return identity


def _loop_opener(config: VisaInstrument) -> Callable[[float], Awaitable[Link]] | None:
    """How a link to the resource is opened on the event loop, given the seconds it may take
    (a serial port opens at once, or not at all); None: through pyvisa (see ``socket_io``)."""
    if (address := config.socket_address()) is not None:
        return functools.partial(SocketLink.open, config, address)
    if (hislip := config.hislip_address()) is not None:
        return functools.partial(HislipLink.open, config, hislip)
    if (vxi11 := config.vxi11_address()) is not None:
        return functools.partial(Vxi11Link.open, config, vxi11)
    if (port := config.serial_port()) is not None:
        return lambda _open_s: SerialLink.open(config, port)
    return None


class VisaSession:
    """One instrument's session and what it knows (see the module doc)."""

    def __init__(self, config: VisaInstrument, profile: Profile, clock: Clock) -> None:
        self.config = config
        self.profile = profile
        self.clock = clock
        self.name = config.name
        self.link: Link | None = None
        self.identity: dict[str, str] = {}
        self.needs_reopen = False
        """Set when an exchange was cut off (timeout, cancellation) or its link failed: a late
        reply may still be on its way, or the link is spent, so the next exchange starts on a
        fresh session."""
        self.last_setup: str | None = None
        self.last_error_check_s = 0.0
        self.last_errors: list[str] = []
        self._no_error = re.compile(profile.errors.no_error) if profile.errors else None
        self._entry = (
            re.compile(profile.errors.entry) if profile.errors and profile.errors.entry else None
        )
        self._due_sets = DueSets(profile)
        policy = profile.errors
        self._each_query = policy is not None and policy.check == "after_each_query"
        """Whether the error queue is drained after each query of a read."""
        self._drain_interval_s: float | None = None
        """Seconds between the drains after a read (-inf: after every read, whatever the clock
        does); None: none."""
        if policy is not None and policy.check == "after_each_read":
            self._drain_interval_s = -math.inf
        elif policy is not None and policy.check == "periodic":
            self._drain_interval_s = policy.interval_s
        self._opener = _loop_opener(config)
        """How the session opens its link on the event loop; None: pyvisa on a worker thread."""
        self.budget = Budget(config.connect_timeout_s + config.timeout_s, "connect")
        self.budget.start()
        """The budget of the job in progress (set by :meth:`start`)."""
        self._timeout_s = config.io_timeout_s
        """The I/O timeout in force: the configured one, or less near a job's deadline."""
        self._clipped = False
        self._read_budget = Budget(config.timeout_s)
        self.on_loop = self._opener is not None
        """Whether the session talks asyncio on the event loop (a SOCKET, HiSLIP, VXI-11 or serial
        resource), rather than pyvisa on a worker thread."""

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

    def start(
        self, budget: Budget, job: Callable[[VisaSession], Coroutine[Any, Any, T]]
    ) -> Coroutine[Any, Any, T]:
        """``job`` under ``budget`` (its clock started): the coroutine to run."""
        self.begin(budget)
        return job(self)

    def begin_read(self) -> None:
        """The next job is a read on the event loop: its budget (``timeout_s``) starts now.
        (One budget object serves every such read: on the loop one job runs at a time, and
        nothing gives it up from another thread.)"""
        budget = self._read_budget
        budget.deadline = monotonic() + budget.seconds
        self.begin(budget)

    def begin(self, budget: Budget) -> None:
        """The next job runs under ``budget`` (its clock started)."""
        self.budget = budget
        if self._clipped and self.link is not None:  # the last job ran close to its deadline
            self._set_timeout(self.config.io_timeout_s, clipped=False)

    # -- the link's calls, worded ------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> Exception:
        """The etalon error for what a link raised while doing ``what``; the session is spent."""
        self.needs_reopen = True
        if isinstance(exc, TimeoutError):
            if self._clipped:  # cut short by the job's deadline, not the I/O timeout
                budget = self.budget
                return DriverTimeout(
                    self.name,
                    f"{what}: no reply within {budget.seconds:g} s (the whole {budget.label})",
                )
            return DriverTimeout(self.name, f"{what}: no reply within {self._timeout_s:g} s")
        return NotConnected(self.name, f"{what}: {exc}")

    def _within_budget(self, verb: str, command: str) -> None:
        """Refuse to send ``command`` past the job's deadline or once the job was given up; cut
        the I/O timeout to what is left of the budget when that is shorter. (The message is
        made only on failure: this runs before every query.)"""
        budget = self.budget
        left = budget.deadline - monotonic()
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
        try:
            self._require().set_timeout(seconds)
        except LinkError as exc:
            raise self._fail("set the I/O timeout", exc) from exc
        self._timeout_s = seconds
        self._clipped = clipped

    async def write(self, command: str) -> None:
        """Send a command."""
        link = self._require()
        self._within_budget("write", command)
        try:
            await link.write(command)
        except (TimeoutError, LinkError) as exc:
            raise self._fail(f"write {command!r}", exc) from exc

    async def query(self, command: str) -> str:
        """Send a query and read its reply; an undecodable reply raises ProtocolError."""
        link = self.link
        if link is None:
            raise NotConnected(self.name, "session is not open")
        budget = self.budget  # _within_budget's test, written out: the usual passes it
        left = budget.deadline - monotonic()
        if left <= 0 or budget.cancelled or left < self._timeout_s - CLIP_SLACK * budget.seconds:
            self._within_budget("query", command)
        try:
            return await link.query(command)
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                self.name, f"{command!r}: reply is not {self.config.encoding}: {exc.object[:40]!r}"
            ) from exc
        except (TimeoutError, LinkError) as exc:
            raise self._fail(f"query {command!r}", exc) from exc

    def _require(self) -> Link:
        if self.link is None:
            raise NotConnected(self.name, "session is not open")
        return self.link

    # -- open / close ------------------------------------------------------------------------

    async def _open_link(self) -> None:
        config = self.config
        # Opening is bounded by the job's budget too.
        open_s = max(0.001, min(config.connect_timeout_s, self.budget.left()))
        opener = self._opener
        self.link = await opener(open_s) if opener is not None else PyvisaLink.open(config, open_s)
        self.needs_reopen = False
        self.last_setup = None
        self._timeout_s, self._clipped = config.io_timeout_s, False
        try:
            await self.link.clear()
        except (TimeoutError, LinkError) as exc:
            raise self._fail("device clear", exc) from exc

    async def open(self) -> dict[str, str]:
        """Open, identify, drain stale errors, run the init sequence, check it took.

        Returns the identification; raises NotConnected, DriverTimeout or ProtocolError (init
        refused by the instrument: the reason names the errors it reported).
        """
        await self._open_link()
        identity: dict[str, str] = {}
        if self.profile.identify:
            identity = parse_idn(await self.query(self.profile.identify))
        identity |= {"resource": self.config.resource, "profile": self.profile.name}
        self.identity = identity
        await self._drain_stale("instrument had errors queued before init")
        for command in self.profile.init:
            await self.write(command)
        refused = await self.drain_errors()
        if refused:
            raise ProtocolError(
                self.name,
                capped(f"init sequence refused: {'; '.join(refused)}"),
            )
        self.last_error_check_s = self.clock.now_ns() / 1e9
        return identity

    async def reopen(self) -> None:
        """A fresh session after a cut-off exchange (no init: the instrument kept its state)."""
        self.close()
        await self._open_link()
        leftover = await self.drain_errors()
        if leftover:
            log.info(
                "errors queued by an interrupted exchange",
                extra={"instrument": self.name, "errors": leftover},
            )

    async def identify(self) -> dict[str, str]:
        """Ask the instrument who it is now (``*IDN?``); the identification, also kept."""
        if self.needs_reopen:
            await self.reopen()
        if self.profile.identify:
            identity = parse_idn(await self.query(self.profile.identify))
            self.identity = identity | {
                "resource": self.config.resource,
                "profile": self.profile.name,
            }
        return dict(self.identity)

    def close(self) -> None:
        """Close the link. Never raises."""
        link, self.link = self.link, None
        if link is not None:
            link.close()

    # -- the error queue -------------------------------------------------------------------------

    async def drain_errors(self) -> list[str]:
        """Read the error queue until it says empty; the entries, oldest first."""
        policy = self.profile.errors
        if policy is None or self._no_error is None:
            return []
        entries: list[str] = []
        for _ in range(policy.max_entries):
            reply = (await self.query(policy.query)).strip()
            if self._no_error.match(reply):
                return entries
            if self._entry is not None and not self._entry.match(reply):
                # The error query got another query's reply (an instrument's line nobody asked
                # for, a reply doubled on the way): every reply from here on would be the one
                # before it. Whichever values this exchange read are suspect; a fresh session
                # (a new connection, or the port's input flushed) starts in step.
                self.needs_reopen = True
                raise ProtocolError(
                    self.name,
                    f"{policy.query!r} answered {reply[:60]!r}, no error-queue entry: the "
                    "replies are out of step; the session re-opens",
                )
            entries.append(reply)
        entries.append(f"error queue not empty after {policy.max_entries} reads")
        return entries

    # -- writing -------------------------------------------------------------------------------

    async def _before_write(self) -> None:
        """A fresh session if the last exchange was cut off; stale errors drained, so the error
        queue read after the write speaks of the write alone."""
        if self.needs_reopen:
            await self.reopen()
        # A write (a *RST in a safe state, a function change) may undo what the last
        # measurement's setup assumed: the next read sends its setup again.
        self.last_setup = None
        await self._drain_stale("errors queued before a write")

    async def _drain_stale(self, message: str) -> None:
        """Empty the error queue of what came before us, logged once under ``message``."""
        stale = await self.drain_errors()
        if stale:
            log.info(message, extra={"instrument": self.name, "errors": stale})

    async def _send_and_confirm(self, command: str, target: str | None, trace: WriteTrace) -> None:
        """Send one command; ``*OPC?`` if the profile says so; the error queue must be empty."""
        trace.sent.append(command)
        await self.write(command)
        if self.profile.write_sync == "opc":
            reply = (await self.query("*OPC?")).strip()
            trace.confirmed.append(f"*OPC? → {reply}")
        policy = self.profile.errors
        if policy is None:
            trace.confirmed.append("no error queue to check")
            return
        errors = await self.drain_errors()
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

    async def apply_setpoint(
        self, target: str, setpoint: Setpoint, value: SetValue, trace: WriteTrace
    ) -> None:
        """Set one set-point (its value checked already), confirm it, read it back if the
        profile can. Raises WriteRejected, or a DriverError when the exchange fails."""
        await self._before_write()
        await self._send_and_confirm(setpoint.render(value), target, trace)
        if setpoint.query is None:
            return
        reply = (await self.query(setpoint.query)).strip()
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

    async def apply_command(self, command: str, trace: WriteTrace) -> None:
        """Send one raw command of a safe state and confirm it."""
        await self._before_write()
        await self._send_and_confirm(command, None, trace)

    # -- reading -------------------------------------------------------------------------------

    async def read(self, channels: Sequence[VisaChannel]) -> list[Reading]:
        """One reading per channel; each distinct query is sent once per tick. A query that
        goes unanswered ends the read: DriverTimeout, saying how far the read got."""
        sets = self._due_sets
        due = sets.last if channels is sets.last_channels else sets.of(channels)
        if self.needs_reopen:
            await self.reopen()
        each_query = self._each_query
        now_ns = self.clock.now_ns
        replies: list[tuple[int, str | ProtocolError]] = []
        errors: list[list[str]] = []
        # A query's end is the next one's start, unless setup commands or an error-queue drain
        # come between them (one clock read per query instead of two).
        start = now_ns()
        for planned in due.queries:
            if planned.setup and self.last_setup != planned.name:
                for command in planned.setup:
                    await self.write(command)
                start = now_ns()
            self.last_setup = planned.name
            reply: str | ProtocolError
            try:
                reply = await self.query(planned.query)
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
                errors.append(await self.drain_errors())
                start = now_ns()
        tick_errors: list[str] = []
        interval_s = self._drain_interval_s
        if interval_s is not None:
            now_s = start / 1e9  # the last query's end (or later): now, near enough
            if now_s - self.last_error_check_s >= interval_s:
                self.last_error_check_s = now_s
                tick_errors = await self.drain_errors()
        if tick_errors or self.last_errors or (each_query and any(errors)):
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
