"""What the corrector holds and what it hands out, beside :mod:`gateway.corrections.corrector`.

A linked channel's spans in time order (:class:`Span`, :class:`ChannelState`); an agent's
linked channels as arrays for the batch path (:class:`_AgentTable`); and what correcting adds to
readings: a :class:`Fix` per reading taken one by one, :class:`BatchFixes` for a batch (the
readings corrected in full as columns).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt

from edge_agent.wire_batches import ChannelOrder
from edge_agent.wire_marks import mark, put_corrected
from gateway.corrections.apply import Gathers
from metrology.conformity import ConformityCheck
from metrology.correction import ApplyFunction

_LATEST = 2**63 - 1
_convert = msgspec.convert


@dataclass(eq=False, slots=True)
class Span:
    """One link, precomputed: its interval, the correction, the certificate's numbers."""

    from_ns: int
    until_ns: int
    apply: ApplyFunction
    certificate_id: int
    number: str
    due_ns: int
    due_text: str
    low: float
    high: float
    serial: str
    check: ConformityCheck | None
    on_error: bool
    coverage_factor: float
    link_id: int
    kernel: int = -1
    """Its id in the corrector's :class:`gateway.corrections.apply.Kernels` (-1: readings
    are corrected one by one)."""


@dataclass(eq=False, slots=True)
class ChannelState:
    """A linked channel's spans in time order, the last one used, and whether its
    instrument's reported serial is the one the links were made for."""

    spans: list[Span] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    last: Span | None = None
    instrument: tuple[str, str, str] = ("", "", "")
    serial: str | None = None
    """The serial the instrument's agent reports now (None: not known, nothing to compare)."""
    slot: int = 0
    """Its index in its agent's :class:`_AgentTable`."""

    def find(self, ts: int) -> Span | None:
        """The span in force at ``ts``, or None."""
        index = bisect_right(self.starts, ts) - 1
        if index < 0:
            return None
        span = self.spans[index]
        return span if ts < span.until_ns else None


@dataclass(eq=False, slots=True)
class _AgentTable:
    """An agent's linked channels for the batch path: (instrument, channel) → slot, and per
    slot the span last used, as arrays (its interval, cut at the certificate's due date, and
    its kernel). A reading outside that interval, or of a slot the batch path cannot take
    (serial mismatch, no kernel: an empty interval), goes the per-reading way. The last slot
    is a sentinel for unlinked channels."""

    slots: dict[tuple[str, str], int]
    states: list[ChannelState]
    start: npt.NDArray[np.int64]
    until: npt.NDArray[np.int64]
    kernel: npt.NDArray[np.intp]
    eligible: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(1, np.bool_))
    """Whether a slot's readings may take the batch path (the sentinel's may not)."""
    latest: int = 0
    """The latest start of a slot's interval, and ..."""
    earliest: int = 0
    """... the earliest end: a batch whose readings all fall between is in every slot's."""
    in_force: type[msgspec.Struct] = msgspec.Struct
    """A struct whose ``stamps`` are timestamps between the two (what :meth:`within`
    checks)."""
    last_order: tuple[ChannelOrder, npt.NDArray[np.intp], npt.NDArray[np.bool_] | None] | None = (
        None
    )
    """The last batch's order of channels, its slots and which are linked (agents send the
    same order batch after batch: recognised, not looked up again)."""
    version: int = 0
    """Counts the changes :meth:`sync` made: a :class:`Plan` holds for the version it was made
    in."""
    plan: tuple[npt.NDArray[np.intp], int, Plan] | None = None
    """The plan of the last slots whose readings all took the batch path, and its version."""

    @classmethod
    def of(cls, channels: dict[str, dict[str, ChannelState]]) -> _AgentTable:
        """The table of an agent's channels (instrument → channel → state)."""
        keys = [(i, c) for i, per_instrument in channels.items() for c in per_instrument]
        size = len(keys) + 1
        table = cls(
            {key: slot for slot, key in enumerate(keys)},
            [channels[i][c] for i, c in keys],
            np.full(size, _LATEST, dtype=np.int64),
            np.zeros(size, dtype=np.int64),
            np.zeros(size, dtype=np.intp),
        )
        for slot, state in enumerate(table.states):
            state.slot = slot
            table.start[slot], table.until[slot], table.kernel[slot] = _interval_of(state)
        table._derive()
        return table

    def slots_of(
        self, order: ChannelOrder
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_] | None]:
        """Each reading's slot (the sentinel for an unlinked channel) and which are linked
        (None: none is), for a batch of channels in ``order``."""
        last = self.last_order
        if last is not None and (
            last[0] is order
            or (last[0].channels == order.channels and last[0].instruments == order.instruments)
        ):
            return last[1], last[2]
        keys = zip(order.instruments, order.channels, strict=True)
        slots = np.fromiter(
            map(self.slots.get, keys, repeat(self.sentinel)),
            dtype=np.intp,
            count=len(order.channels),
        )
        linked = slots != self.sentinel
        self.last_order = (order, slots, linked if linked.any() else None)
        return self.last_order[1], self.last_order[2]

    @property
    def sentinel(self) -> int:
        """The slot of an unlinked channel."""
        return len(self.states)

    def plan_of(self, slots: npt.NDArray[np.intp]) -> Plan | None:
        """The plan kept for these very ``slots`` (see :meth:`slots_of`), if still good."""
        plan = self.plan
        if plan is not None and plan[0] is slots and plan[1] == self.version:
            return plan[2]
        return None

    def keep(self, slots: npt.NDArray[np.intp], plan: Plan) -> None:
        """Keep ``plan`` for the next batch of these ``slots``."""
        self.plan = (slots, self.version, plan)

    def sync(self, state: ChannelState) -> None:
        """Take the state's span in use (after it changed, or its serial did)."""
        slot = state.slot
        interval = _interval_of(state)
        if (int(self.start[slot]), int(self.until[slot]), int(self.kernel[slot])) == interval:
            return  # nothing changed (a reading taken one by one in the span in use)
        self.version += 1
        self.start[slot], self.until[slot], self.kernel[slot] = interval
        self._derive()

    def within(self, stamps: list[int]) -> bool:
        """Whether every timestamp is in every slot's interval (``latest`` ≤ ts <
        ``earliest``), checked in one C pass (bounding timestamps in order by their first and
        last, after sorting them to know they are, takes as long)."""
        try:
            _convert({"stamps": stamps}, self.in_force)
        except msgspec.ValidationError:
            return False
        return True

    def _derive(self) -> None:
        eligible = self.start < self.until
        self.eligible = eligible
        self.latest = int(self.start[eligible].max(initial=0))
        self.earliest = int(self.until[eligible].min(initial=_LATEST))
        self.in_force = _stamps_between(self.latest, self.earliest)


@lru_cache(maxsize=64)
def _stamps_between(latest: int, earliest: int) -> type[msgspec.Struct]:
    """A struct of ``stamps``, a list of timestamps ``latest`` <= ts < ``earliest`` (a
    struct's types are looked at once, when first converted to, not at every call)."""
    stamps = list[Annotated[int, msgspec.Meta(ge=latest, lt=earliest)]]
    return msgspec.defstruct("InForce", [("stamps", stamps)], gc=False)


def _interval_of(state: ChannelState) -> tuple[int, int, int]:
    """A slot's (start, until, kernel) for the state's span in use: an empty interval when
    the batch path cannot take it (no span, no kernel, a serial that does not match)."""
    span = state.last
    if (
        span is None
        or span.kernel < 0
        or (state.serial is not None and state.serial != span.serial)
    ):
        return _LATEST, 0, 0
    return span.from_ns, min(span.until_ns, span.due_ns, _LATEST), span.kernel


@dataclass(eq=False, slots=True)
class Plan:
    """What a batch of an agent's usual order of channels needs from the tables when every
    reading is in its slot's interval: each reading's kernel and certificate id, the
    certificates, and what the kernels gathered for them (:class:`Gathers`). Made once per
    order and table version, read-only after."""

    kernel: npt.NDArray[np.intp]
    certificate_id: npt.NDArray[np.int64]
    certificates: dict[int, str]
    gathers: Gathers = field(default_factory=Gathers)


class BatchFixes(msgspec.Struct, eq=False, gc=False):
    """What correcting a batch adds: the readings corrected in full (in range, in date, their
    decision a pass or conditional pass) as columns by index — ``index`` None when that is
    every reading of the batch, in order — and a :class:`Fix` for each other reading touched
    (marked, failing its tolerance, or taken one by one). ``certificates``: id → identifier
    of every certificate used. A struct (made for every batch: a fifth of a dataclass's
    cost)."""

    index: npt.NDArray[np.intp] | None
    corrected: npt.NDArray[np.float64]
    u: npt.NDArray[np.float64]
    certificate_id: npt.NDArray[np.int64]
    conformity: npt.NDArray[np.intp] | None
    marked: list[Fix]
    certificates: dict[int, str]

    def __len__(self) -> int:
        return len(self.corrected) + len(self.marked)

    def parts(self, bounds: Sequence[tuple[int, int]]) -> list[BatchFixes | None]:
        """The fixes of each batch of readings ``[start, end)`` that were corrected together
        (in order, end to end), each as correcting that batch alone gives them: indexes from
        its first reading, its own certificates, None when none of its readings was touched."""
        starts = [start for start, _ in bounds]
        marked: list[list[Fix]] = [[] for _ in bounds]
        for fix in self.marked:
            at = bisect_right(starts, fix.index) - 1
            fix.index -= starts[at]
            marked[at].append(fix)
        if self.index is None:
            cuts = [(start, end, start, end) for start, end in bounds]
        else:
            edges = np.searchsorted(self.index, [*starts, bounds[-1][1]]).tolist()
            cuts = [
                (start, end, low, high)
                for (start, end), low, high in zip(bounds, edges, edges[1:], strict=False)
            ]
        one = self.certificates if len(self.certificates) == 1 else None
        out: list[BatchFixes | None] = []
        for (start, end, low, high), fixes in zip(cuts, marked, strict=True):
            if low == high and not fixes:
                out.append(None)
                continue
            index = None
            if self.index is not None and high - low != end - start:
                index = self.index[low:high] - start
            ids = self.certificate_id[low:high]
            conformity = None if self.conformity is None else self.conformity[low:high]
            if conformity is not None and (not len(conformity) or conformity.max() < 0):
                conformity = None  # no tolerance among its readings'
            numbers = dict(one) if one is not None and high > low else self._numbers(ids, fixes)
            part = BatchFixes(
                index, self.corrected[low:high], self.u[low:high], ids, conformity, fixes,
                numbers,
            )  # fmt: skip
            out.append(part)
        return out

    def _numbers(self, ids: npt.NDArray[np.int64], fixes: list[Fix]) -> dict[int, str]:
        """The certificates of a part: its columns' and its fixes'."""
        used = set(ids.tolist())
        used.update(fix.span.certificate_id for fix in fixes if fix.corrected is not None)
        return {i: self.certificates[i] for i in sorted(used)}

    def apply(self, readings: Sequence[dict[str, Any]]) -> None:
        """The fields of corrected wire-format readings (what alerts read): as
        :meth:`Fix.apply` gives them."""
        index = range(len(self.corrected)) if self.index is None else self.index.tolist()
        conformity = repeat(-1) if self.conformity is None else self.conformity.tolist()
        put_corrected(
            readings, index, self.corrected.tolist(), self.u.tolist(),
            self.certificate_id.tolist(), conformity, self.certificates,
        )  # fmt: skip
        for fix in self.marked:
            fix.apply(readings[fix.index])


class Fix(msgspec.Struct, gc=False):
    """What a correction adds to one reading (by its index in its batch): the corrected value
    and its u from ``span``'s certificate, or none (a reading that could not be corrected); the
    conformity code and verdict; the ``calibration`` bits and the reason they add (the
    reading is then ``uncertain``, a bad one stays bad). The writer reads it as a
    :class:`gateway.tsdb.points.StoredFix` (the same first fields)."""

    index: int
    span: Span
    corrected: float | None = None
    u_corrected: float | None = None
    certificate_id: int | None = None
    conformity: int | None = None
    calibration: int = 0
    reason: str | None = None
    verdict: dict[str, Any] | None = None
    out: bool = False
    """Out of calibration (range or date): the range and due date go with it."""

    def apply(self, reading: dict[str, Any]) -> None:
        """The fields of a corrected wire-format reading (what alerts read, and what the
        stores wrote before spool entries carried fixes)."""
        span = self.span
        if self.corrected is not None:
            reading["corrected"] = self.corrected
            reading["u_corrected"] = self.u_corrected
            reading["certificate"] = span.number
            reading["certificate_id"] = span.certificate_id
        if self.out:
            reading["calibration_range"] = (span.low, span.high)
            reading["calibration_due"] = span.due_text
        if self.calibration:
            mark(reading, self.calibration, self.reason)
        if self.conformity is not None:
            reading["conformity"] = self.conformity
        if self.verdict is not None:
            reading["verdict"] = self.verdict

    def spooled(self) -> tuple[Any, ...]:
        """The compact form a spool entry carries (see :func:`gateway.tsdb.points.StoredFix`)."""
        return (
            self.index, self.corrected, self.u_corrected, self.certificate_id, self.conformity,
            self.calibration, self.reason,
        )  # fmt: skip
