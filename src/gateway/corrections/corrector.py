"""Corrections at the gateway: each reading of a linked channel gets its corrected value, its
standard uncertainty and the certificate that vouches for it, beside the raw value.

The links and certificates are loaded from the record store and each (certificate table,
channel method) is precomputed once into a :class:`metrology.correction.Correction`, and every
span's numbers are stacked into the tables of :class:`gateway.corrections.apply.Kernels`.
Ingest corrects a batch at a time (:meth:`Corrector.batch`): the readings corrected in full
come out as columns, in a few whole-array steps; a reading out of range, out of date, of a
mismatched serial or failing its tolerance is taken one by one (:meth:`Corrector.fixes`, the
correction's closure and :class:`metrology.conformity.ConformityCheck`), with the same results
bit for bit. Nothing is parsed per reading. The spans it holds and the fixes it hands out are
in :mod:`gateway.corrections.spans`.

A reading is corrected by the link in force **at its own timestamp** (``from_ns <= ts <
until_ns``): a reading the agent spooled for an hour is corrected by the certificate that was
in force when it was taken, and a certificate replaced mid-stream switches exactly at the
link's instant, whatever order readings arrive in.

What a corrected reading carries (every store writes the first four beside the raw ``value``):

- ``corrected``, ``u_corrected`` (standard uncertainty, k = 1), ``certificate`` (the DCC's
  unique identifier), ``certificate_id`` (the record store's id, a number every backend keeps);
- ``conformity``: 0 pass, 1 conditional pass, 2 conditional fail, 3 fail (when the channel
  declares a tolerance), and ``verdict`` (the numbers behind a failing decision) for alerts;
- ``calibration``: a bit set — 1 outside the calibrated range, 2 after the certificate's due
  date, 4 the instrument's reported serial is not the certificate's. With any of them the
  reading is marked ``uncertain`` (a bad one stays bad) and the reason is appended to its own.
  A serial mismatch leaves the reading uncorrected: that certificate is not this instrument's.

The module stays over 500 lines because :class:`Corrector` is one state: the spans it installs
from the record store, the kernels stacked from them and the batches it corrects read and swap
the same per-channel tables (the spans and fixes are already :mod:`gateway.corrections.spans`,
the whole-array steps :mod:`gateway.corrections.apply`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import struct
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from core.logs import log_event
from edge_agent.wire_batches import ChannelOrder
from gateway.corrections.apply import Kernels
from gateway.corrections.config import ChannelCorrection, CorrectionsConfig
from gateway.corrections.instruments import (
    InstrumentCertificate,
    Link,
    load_certificates,
    load_links,
    reported_serial,
)
from gateway.corrections.spans import BatchFixes, ChannelState, Fix, Plan, Span, _AgentTable
from gateway.records.store import RecordStore
from metrology.conformity import (
    CONDITIONAL_FAIL,
    CONDITIONAL_PASS,
    FAIL,
    PASS,
    ConformityCheck,
)
from metrology.correction import ChannelCalibration, Correction, build_correction

log = logging.getLogger("etalon.gateway.corrections")

NEVER = 2**63
RANGE, EXPIRED, SERIAL = 1, 2, 4
CONFORMITY_CODE = {PASS: 0, CONDITIONAL_PASS: 1, CONDITIONAL_FAIL: 2, FAIL: 3}
CONFORMITY_NAME = {code: name for name, code in CONFORMITY_CODE.items()}


_as_floats = msgspec.convert


class _Numbers(msgspec.Struct, gc=False):
    """Values as floats: ints converted, a boolean, a text or None refused (as ``_one`` does).
    Converted as a struct's field, not as ``list[float]``: a struct's type is looked at once,
    a bare type at every call."""

    values: list[float]


Batch = tuple[str, str, Sequence[Any], ChannelOrder | None]
"""A batch of one agent's readings to correct: site, agent, rows, their order (if known)."""


@lru_cache(maxsize=256)
def _packer(count: int) -> Callable[..., bytes]:
    """The packing of ``count`` floats into their native bytes."""
    return struct.Struct(f"{count}d").pack


def _float_array(values: list[Any]) -> npt.NDArray[np.float64]:
    """Values as an array of floats: ints converted, a boolean, a text or None refused
    (msgspec.ValidationError), as ``_one`` takes them. Converted and checked in one C pass,
    packed in another (several times cheaper than numpy's conversion of a list)."""
    numbers = _as_floats({"values": values}, _Numbers).values
    return np.frombuffer(_packer(len(numbers))(*numbers), dtype=np.float64)


def _every(flags: npt.NDArray[np.bool_]) -> bool:
    """``flags.all()``, at a quarter of a reduction's cost per call (most of it at a few
    hundred readings)."""
    return int(np.count_nonzero(flags)) == flags.size


def _distinct(ids: npt.NDArray[np.int64]) -> list[int]:
    """The distinct values of a column (most batches use one certificate: two reductions
    instead of a set of every row's)."""
    if not len(ids):
        return []
    low = int(ids.min())
    return [low] if low == int(ids.max()) else list(set(ids.tolist()))


class Corrector:
    """See the module doc. ``correct`` is the hot path (ingest calls it on the event loop)."""

    def __init__(
        self,
        config: CorrectionsConfig,
        records: RecordStore,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.records = records
        self.on_change = on_change
        self._channels: dict[tuple[str, str], dict[str, dict[str, ChannelState]]] = {}
        self._serials: dict[tuple[str, str, str], str | None] = {}
        self._built: dict[tuple[int, int, ChannelCorrection], Correction] = {}
        self._tables: dict[tuple[str, str], _AgentTable] = {}
        self.kernels = Kernels()
        self.kernels.freeze()
        self._kernel_certificates = np.zeros(1, dtype=np.int64)
        """Kernel id → its certificate's id."""
        self._numbers: dict[int, str] = {}
        """Certificate id → identifier, of every span."""
        self._version: tuple[Any, ...] | None = None
        self.corrected = 0
        """Readings corrected since start (a self-metric)."""
        self.flagged = 0
        """Readings marked uncertain by a correction since start (a self-metric)."""

    # -- loading ---------------------------------------------------------------------------

    @staticmethod
    def _version_of(db: sqlite3.Connection) -> tuple[Any, ...]:
        row = db.execute(
            "SELECT COUNT(*), MAX(id), TOTAL(COALESCE(until_ns, 0)) FROM calibration_links"
        ).fetchone()
        return tuple(row)

    async def load(self) -> None:
        """(Re)load every link and certificate and precompute their corrections."""

        def read(
            db: sqlite3.Connection,
        ) -> tuple[tuple[Any, ...], list[Link], list[InstrumentCertificate], dict[Any, Any]]:
            links = load_links(db)
            serials = {
                key: reported_serial(db, *key)
                for key in {(x.site, x.agent, x.instrument) for x in links}
            }
            return self._version_of(db), links, load_certificates(db), serials

        version, links, certificates, serials = await self.records.run(read)
        self.install(links, certificates, serials)
        self._version = version

    def install(
        self,
        links: list[Link],
        certificates: list[InstrumentCertificate],
        serials: dict[tuple[str, str, str], str | None],
    ) -> None:
        """Build the channels' spans from links and certificates (synchronous: call it on the
        event loop, between two batches of readings)."""
        by_id = {c.id: c for c in certificates}
        channels: dict[tuple[str, str], dict[str, dict[str, ChannelState]]] = {}
        kernels = Kernels()
        kernel_certificates: list[int] = []
        for item in sorted(links, key=lambda x: (x.from_ns, x.id)):
            certificate = by_id.get(item.certificate_id)
            if certificate is None or item.table_index >= len(certificate.tables):
                continue
            until = NEVER if item.until_ns is None else item.until_ns
            if until <= item.from_ns:
                continue  # replaced at the instant it started: never in force
            made = self._span(item, certificate, until)
            if made is None:
                continue
            span, correction = made
            span.kernel = kernels.add(correction, span.check, span.on_error, span.coverage_factor)
            if span.kernel >= 0:
                kernel_certificates.append(span.certificate_id)
            state = (
                channels.setdefault((item.site, item.agent), {})
                .setdefault(item.instrument, {})
                .setdefault(item.channel, ChannelState())
            )
            state.instrument = (item.site, item.agent, item.instrument)
            state.spans.append(span)
            state.starts.append(span.from_ns)
        kernels.freeze()
        self._serials = dict(serials)
        for per_agent in channels.values():
            for per_instrument in per_agent.values():
                for state in per_instrument.values():
                    state.serial = self._serials.get(state.instrument)
                    # The latest link is the likeliest in force for live readings.
                    state.last = state.spans[-1]
        self._numbers = {c.id: c.number for c in certificates}
        self.kernels = kernels
        self._kernel_certificates = np.array(kernel_certificates or [0], dtype=np.int64)
        self._tables = {key: _AgentTable.of(per_agent) for key, per_agent in channels.items()}
        self._channels = channels
        if self.on_change is not None:
            self.on_change()

    def _span(
        self, item: Link, certificate: InstrumentCertificate, until: int
    ) -> tuple[Span, Correction] | None:
        entry = self.config.for_channel(item.path)
        key = (item.certificate_id, item.table_index, entry)
        table = certificate.tables[item.table_index]
        correction = self._built.get(key)
        if correction is None:
            try:
                correction = build_correction(
                    ChannelCalibration.model_validate(
                        {
                            "channel": item.channel,
                            "unit": table.unit,
                            "certificate": certificate.number,
                            "points": table.calibration_points(),
                            **entry.options(),
                        }
                    )
                )
            except ValueError as exc:  # the config changed since the link was checked
                log_event(
                    log,
                    logging.ERROR,
                    "calibration cannot be applied",
                    channel=item.path,
                    certificate=certificate.number,
                    reason=str(exc),
                )
                return None
            self._built[key] = correction
        check = None
        if entry.tolerance is not None:
            check = ConformityCheck(entry.tolerance.tolerance(), entry.decision_rule.rule())
        due = NEVER if certificate.due_ns is None else certificate.due_ns
        span = Span(
            from_ns=item.from_ns,
            until_ns=until,
            apply=correction.apply,
            certificate_id=certificate.id,
            number=certificate.number,
            due_ns=due,
            due_text=certificate.due_date or "-",
            low=table.low,
            high=table.high,
            serial=item.serial,
            check=check,
            on_error=entry.tolerance is not None and entry.tolerance.on_error,
            coverage_factor=entry.coverage_factor,
            link_id=item.id,
        )
        return span, correction

    async def refresh(self) -> bool:
        """Reload when the links changed (another process linked or unlinked); True if so."""
        version = await self.records.run(self._version_of)
        if version == self._version:
            return False
        await self.load()
        log_event(log, logging.INFO, "calibration links reloaded", links=version[0])
        return True

    async def run(self) -> None:
        """Look for links made by other processes every ``reload_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.config.reload_s)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - a busy record store is retried next time
                log_event(log, logging.WARNING, "calibration links not reloaded", reason=str(exc))

    def serial_reported(self, site: str, agent: str, instrument: str, serial: str | None) -> None:
        """An agent's birth message told the instrument's serial (called by ingest)."""
        key = (site, agent, instrument)
        if key in self._serials:  # only linked instruments are watched
            self._serials[key] = serial
            table = self._tables.get((site, agent))
            for state in self._channels.get((site, agent), {}).get(instrument, {}).values():
                state.serial = serial
                if table is not None:
                    table.sync(state)

    def covers(self, site: str, agent: str) -> bool:
        """Whether any channel of the agent is linked (its readings are worth a look)."""
        return (site, agent) in self._channels

    def linked(self, site: str, agent: str, instrument: str, channel: str) -> bool:
        """Whether the channel has any link (in force or past)."""
        return channel in self._channels.get((site, agent), {}).get(instrument, {})

    # -- the hot path ----------------------------------------------------------------------

    def fixes(
        self,
        site: str,
        agent: str,
        instruments: Iterable[str],
        channels: Iterable[str],
        values: Iterable[Any],
        stamps: Iterable[int],
    ) -> list[Fix]:
        """What correcting a batch's readings (given as columns) adds to each one of a linked
        channel, by its index: the per-reading work of the gateway (nothing parsed, nothing
        copied; the readings themselves are not touched)."""
        per_agent = self._channels.get((site, agent))
        if per_agent is None:
            return []
        out: list[Fix] = []
        for index, (instrument, channel, value, ts) in enumerate(
            zip(instruments, channels, values, stamps, strict=True)
        ):
            per_instrument = per_agent.get(instrument)
            if per_instrument is None:
                continue
            state = per_instrument.get(channel)
            if state is None:
                continue
            fix = self._one(index, state, value, ts)
            if fix is not None:
                out.append(fix)
        return out

    def _one(self, index: int, state: ChannelState, value: Any, ts: int) -> Fix | None:
        """What correcting one reading of a linked channel adds (None: nothing)."""
        kind = value.__class__
        if kind is not float and kind is not int:
            return None  # text, a boolean, or no value (bad): nothing to correct
        span = state.last
        if span is None or not span.from_ns <= ts < span.until_ns:
            span = state.find(ts)
            if span is None:
                return None
            state.last = span
        if state.serial is not None and state.serial != span.serial:
            return self._flagged(index, span, SERIAL, self._serial_reason(state, span))
        corrected, u, in_range = span.apply(value)
        if not in_range and not (math.isfinite(corrected) and math.isfinite(u)):
            reason = f"calibration_range: {value!r} cannot be corrected"
            return self._flagged(index, span, RANGE, reason)
        fix = Fix(index, span, corrected, u, span.certificate_id)
        self.corrected += 1
        if not in_range or ts >= span.due_ns:
            self._out_of_calibration(fix, span, value, in_range, ts)
        check = span.check
        if check is not None:
            measured = value - corrected if span.on_error else corrected
            expanded = span.coverage_factor * u
            decision = check.decide(measured, expanded)
            fix.conformity = CONFORMITY_CODE[decision]
            if decision in (FAIL, CONDITIONAL_FAIL):
                fix.verdict = self._verdict(check, measured, expanded, span)
        return fix

    def batch(
        self, site: str, agent: str, rows: Sequence[Any], order: ChannelOrder | None = None
    ) -> BatchFixes | None:
        """What correcting a batch's readings (rows with ``instrument``, ``channel``,
        ``value`` and ``ts``; ``order`` their :class:`ChannelOrder` if known) adds, the readings
        corrected in full as columns (:class:`BatchFixes`); None when no reading is of a linked
        channel. The same results as :meth:`fixes`, bit for bit (tested), a batch at a time:
        the gateway's hot path. The channels' slots come with the order (see
        :meth:`_AgentTable.slots_of`)."""
        table = self._tables.get((site, agent))
        if table is None or not rows:
            return None
        slots, linked = table.slots_of(order or ChannelOrder.of(rows))
        if linked is None:
            return None
        return self._batch(table, rows, slots, linked, keep=True)

    def batches(self, items: Sequence[Batch]) -> list[BatchFixes | None]:
        """:meth:`batch` of each ``(site, agent, rows, order)``, the batches of one agent
        corrected together (what ingest takes in one wake-up: numpy's cost per call, most of a
        batch's at a hundred readings, is paid once for them all); the same results as
        :meth:`batch` of each, bit for bit (tested)."""
        if len(items) == 1:  # a wake-up that took one batch: nothing to join
            site, agent, rows, order = items[0]
            return [self.batch(site, agent, rows, order)]
        out: list[BatchFixes | None] = [None] * len(items)
        agents: dict[tuple[str, str], list[int]] = {}
        for at, (site, agent, rows, _) in enumerate(items):
            if rows and (site, agent) in self._tables:
                agents.setdefault((site, agent), []).append(at)
        for key, members in agents.items():
            table = self._tables[key]
            taken = []
            for at in members:
                rows, order = items[at][2], items[at][3]
                slots, linked = table.slots_of(order or ChannelOrder.of(rows))
                if linked is not None:
                    taken.append((at, rows, slots, linked))
            if len(taken) == 1:
                at, rows, slots, linked = taken[0]
                out[at] = self._batch(table, rows, slots, linked, keep=True)
            elif taken:
                joined: list[Any] = []
                bounds = []
                for _, rows, _, _ in taken:
                    bounds.append((len(joined), len(joined) + len(rows)))
                    joined += rows
                fixes = self._batch(
                    table,
                    joined,
                    np.concatenate([slots for _, _, slots, _ in taken]),
                    np.concatenate([linked for _, _, _, linked in taken]),
                    keep=False,
                )
                if fixes is not None:
                    for (at, *_), part in zip(taken, fixes.parts(bounds), strict=True):
                        out[at] = part
        return out

    def _batch(
        self,
        table: _AgentTable,
        rows: Sequence[Any],
        slots: npt.NDArray[np.intp],
        linked: npt.NDArray[np.bool_],
        keep: bool,
    ) -> BatchFixes | None:
        """:meth:`batch` of rows whose slots are known (``keep``: the plan of these very
        ``slots`` may be kept for the next batch, see :meth:`_AgentTable.keep`). One pass over
        the rows per column it reads (value, ts)."""
        count = len(rows)
        values = [row.value for row in rows]
        numeric: npt.NDArray[np.bool_] | None = None
        try:  # numbers only (the common case): checked and converted in one C pass
            x = _float_array(values)
        except msgspec.ValidationError:  # a boolean, a text, no value: not corrected
            numeric = np.fromiter(
                (v.__class__ is float or v.__class__ is int for v in values), np.bool_, count
            )
            x = np.array([v if ok else 0.0 for v, ok in zip(values, numeric, strict=True)])
        stamps = [row.ts for row in rows]
        # Every reading in its slot's interval (the common case): the order's plan, if kept.
        within = table.within(stamps)
        in_time = numeric is None and within
        plan = table.plan_of(slots) if in_time and keep else None
        if plan is not None:
            chosen, kernel, one_by_one = None, plan.kernel, None
            corrected, u, done, conformity = self.kernels.evaluate(kernel, x, plan.gathers)
        else:
            if within:
                fast = table.eligible.take(slots)  # every reading in its slot's interval
            else:
                ts = np.array(stamps, dtype=np.int64)
                fast = (table.start.take(slots) <= ts) & (ts < table.until.take(slots))
            if numeric is not None:
                fast &= numeric
            if _every(fast):  # the common case: no selection to make
                chosen, kernel, one_by_one = None, table.kernel.take(slots), None
                if in_time and keep:  # kept for the agent's next batch of this order
                    plan = self._plan(kernel)
                    table.keep(slots, plan)
                gathers = None if plan is None else plan.gathers
                corrected, u, done, conformity = self.kernels.evaluate(kernel, x, gathers)
            else:
                chosen = np.flatnonzero(fast)
                kernel = table.kernel.take(slots.take(chosen))
                corrected, u, done, conformity = self.kernels.evaluate(kernel, x.take(chosen))
                one_by_one = linked & ~fast
        if done is not None and not _every(done):  # left to the per-reading path
            if chosen is None or one_by_one is None:
                chosen, one_by_one = np.arange(count), np.zeros(count, dtype=np.bool_)
            one_by_one[chosen[~done]] = True
            chosen, kernel = chosen[done], kernel[done]
            corrected, u = corrected[done], u[done]
            conformity = None if conformity is None else conformity[done]
        if plan is not None and chosen is None:
            certificate_id, certificates = plan.certificate_id, dict(plan.certificates)
        else:
            certificate_id = self._kernel_certificates.take(kernel)
            numbers = self._numbers
            certificates = {i: numbers[i] for i in _distinct(certificate_id)}
        marked: list[Fix] = []
        if one_by_one is not None and one_by_one.any():
            states = table.states
            touched = set()
            for index in np.flatnonzero(one_by_one).tolist():
                row = rows[index]
                state = states[slots[index]]
                fix = self._one(index, state, row.value, row.ts)
                touched.add(state)
                if fix is not None:
                    marked.append(fix)
                    if fix.corrected is not None:
                        certificates[fix.span.certificate_id] = fix.span.number
            for state in touched:
                table.sync(state)
        done_count = count if chosen is None else len(chosen)
        self.corrected += done_count
        if not done_count and not marked:
            return None
        return BatchFixes(
            None if done_count == count else chosen, corrected, u, certificate_id,
            conformity, marked, certificates,
        )  # fmt: skip

    def _plan(self, kernel: npt.NDArray[np.intp]) -> Plan:
        """The plan of a batch whose readings take ``kernel`` (see :class:`Plan`)."""
        certificate_id = self._kernel_certificates.take(kernel)
        numbers = self._numbers
        plan = Plan(kernel, certificate_id, {i: numbers[i] for i in _distinct(certificate_id)})
        kernel.flags.writeable = certificate_id.flags.writeable = False
        return plan

    def correct(self, site: str, agent: str, readings: list[Any]) -> bool:
        """Correct the readings (wire-format dicts) of linked channels in place; True if any
        was (see :meth:`Fix.apply`)."""
        fixes = self.fixes(
            site,
            agent,
            map(itemgetter("instrument"), readings),
            map(itemgetter("channel"), readings),
            map(itemgetter("value"), readings),
            map(itemgetter("ts"), readings),
        )
        for fix in fixes:
            fix.apply(readings[fix.index])
        return bool(fixes)

    def _serial_reason(self, state: ChannelState, span: Span) -> str:
        reported = self._serials.get(state.instrument)
        return (
            f"calibration_serial: instrument reports serial {reported}, certificate "
            f"{span.number} is for serial {span.serial}"
        )

    def _flagged(self, index: int, span: Span, bit: int, reason: str) -> Fix:
        """A reading left uncorrected, marked."""
        fix = Fix(index, span)
        self._flag(fix, bit, reason)
        return fix

    def _out_of_calibration(
        self, fix: Fix, span: Span, value: float, in_range: bool, ts: int
    ) -> None:
        fix.out = True
        if not in_range:
            self._flag(
                fix,
                RANGE,
                f"calibration_range: indication {value!r} outside the calibrated range "
                f"[{span.low!r}, {span.high!r}] of certificate {span.number}",
            )
        if ts >= span.due_ns:
            self._flag(
                fix,
                EXPIRED,
                f"calibration_expired: certificate {span.number} was due on {span.due_text}",
            )

    def _flag(self, fix: Fix, bit: int, reason: str) -> None:
        self.flagged += 1
        fix.calibration |= bit
        fix.reason = reason if fix.reason is None else f"{fix.reason}; {reason}"

    @staticmethod
    def _verdict(
        check: ConformityCheck, measured: float, expanded: float, span: Span
    ) -> dict[str, Any]:
        if not (math.isfinite(measured) and math.isfinite(expanded)):
            return {"decision": "fail", "measured": None, "certificate": span.number}
        verdict = check.verdict(measured, expanded, span.coverage_factor)
        numbers = verdict.model_dump(mode="json")
        numbers["rule"] = check.rule.describe()
        numbers["judged"] = "error" if span.on_error else "value"
        numbers["certificate"] = span.number
        return numbers
