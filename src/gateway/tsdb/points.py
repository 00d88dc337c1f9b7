"""What the gateway writes: reading batches and self-metric samples (their line protocol is
built by :mod:`gateway.tsdb.lines`).

Schema (see docs/storage.md):

- ``reading`` — tags ``site, agent, instrument, channel, unit`` plus the channel's own tags;
  fields ``value`` (float; booleans as 0/1), ``text`` (string values), ``quality`` (integer:
  0 good, 1 uncertain, 2 bad), ``u`` (standard uncertainty), ``reason`` (why not good);
  for a channel corrected from its certificate (docs/corrections.md) also ``corrected``,
  ``u_corrected`` (its standard uncertainty), ``certificate`` (the DCC's identifier, string),
  ``certificate_id`` (the record store's id, integer) and, with a tolerance, ``conformity``
  (integer: 0 pass, 1 conditional pass, 2 conditional fail, 3 fail).
- ``etalon_agent`` / ``etalon_gateway`` — self-metrics, tags ``site`` and ``agent``/``gateway``,
  one integer or float field per counter.

Only constant identifiers are tags, so a series is one channel and cardinality equals the number
of channels; quality and reason vary per reading and are fields, never tags.

Just over 500 lines: the spooled batch's format (its structs, their decoding into columns, the
memo of entries read back) is written and read here together, so that one change of the format
is one change of this module.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from core.spool import RECENT_MAX_BYTES
from edge_agent.wire_batches import WireRow
from edge_agent.wire_marks import mark, put_corrected

QUALITY_CODE = {"good": 0, "uncertain": 1, "bad": 2}
FloatArray = npt.NDArray[np.float64]
_LITTLE_F8 = np.dtype("<f8")
"""A little-endian float64 (on a little-endian machine, the very dtype of float64 arrays)."""
READING = "reading"


class StoredRow(msgspec.Struct, gc=False, omit_defaults=True):
    """A reading as the writer reads it back from the gateway's spool (what ingest validated,
    with the fields corrections add; other keys are not stored and not read)."""

    instrument: str
    channel: str
    ts: int
    value: float | int | bool | str | None
    unit: str
    quality: str
    reason: str | None = None
    u: float | None = None
    tags: dict[str, str] | None = None
    corrected: float | None = None
    u_corrected: float | None = None
    certificate: str | None = None
    certificate_id: int | None = None
    conformity: int | None = None


Row = StoredRow | WireRow
"""A row of a :class:`ReadingsBatch`: as the writer reads it back from the spool, or as ingest
decoded it (absent fields ``UNSET``, no corrections)."""


class ReadingsBatch:
    """Validated readings of one agent: wire-format dicts (``readings``), or rows as ingest or
    the writer decoded them (``rows``), whose dicts are made only if something asks for them
    (a store that writes dicts, a refused point's dead letter)."""

    __slots__ = ("_readings", "agent", "certificates", "columns", "fixes", "rows", "site")

    def __init__(
        self,
        site: str,
        agent: str,
        readings: list[dict[str, Any]] | None = None,
        rows: Sequence[Any] | None = None,
        fixes: Sequence[StoredFix] = (),
        certificates: Mapping[int, str] | None = None,
        columns: FixedColumns | None = None,
    ) -> None:
        self.site = site
        self.agent = agent
        self._readings = readings
        self.rows: Sequence[Row] | None = None if readings is not None else (rows or [])
        self.fixes = fixes
        """Corrections of rows, by index (:class:`StoredFix`)."""
        self.certificates: Mapping[int, str] = certificates or {}
        """The fixes' certificates: id → identifier."""
        self.columns = columns
        """The rows corrected in full, as columns (:class:`FixedColumns`)."""

    @property
    def readings(self) -> list[dict[str, Any]]:
        """The readings as wire-format dicts (with their corrections)."""
        if self._readings is None:
            readings: list[dict[str, Any]] = msgspec.to_builtins(self.rows)
            if self.columns is not None:
                self.columns.apply(readings, self.certificates)
            for fix in self.fixes:
                apply_fix(readings[fix.index], fix, self.certificates)
            self._readings = readings
        return self._readings

    @property
    def count(self) -> int:
        """How many readings."""
        return len(self.rows) if self.rows is not None else len(self.readings)

    def split(self) -> tuple[ReadingsBatch, ReadingsBatch]:
        """The first and the second half."""
        if self.rows is not None and not self.fixes and self.columns is None:
            middle = len(self.rows) // 2
            return (
                ReadingsBatch(self.site, self.agent, rows=self.rows[:middle]),
                ReadingsBatch(self.site, self.agent, rows=self.rows[middle:]),
            )
        middle = len(self.readings) // 2
        return (
            ReadingsBatch(self.site, self.agent, self.readings[:middle]),
            ReadingsBatch(self.site, self.agent, self.readings[middle:]),
        )

    def __repr__(self) -> str:
        return f"ReadingsBatch({self.site!r}, {self.agent!r}, {self.readings!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReadingsBatch):
            return NotImplemented
        return (self.site, self.agent, self.readings) == (other.site, other.agent, other.readings)

    __hash__ = None  # type: ignore[assignment]


class StoredFix(msgspec.Struct, array_like=True, gc=False):
    """A reading's correction as a spool entry carries it, beside the raw readings (written by
    ``gateway.corrections.spans.Fix.spooled``): the corrected value, its u and the
    certificate's id, or none; the conformity code; the ``calibration`` bits that mark the
    reading, and the reason they add."""

    index: int
    corrected: float | None
    u_corrected: float | None
    certificate_id: int | None
    conformity: int | None
    calibration: int
    reason: str | None


def apply_fix(reading: dict[str, Any], fix: StoredFix, certificates: Mapping[int, str]) -> None:
    """The stored fields of a correction, on a wire-format dict."""
    if fix.corrected is not None and fix.certificate_id is not None:
        reading["corrected"] = fix.corrected
        reading["u_corrected"] = fix.u_corrected
        reading["certificate"] = certificates[fix.certificate_id]
        reading["certificate_id"] = fix.certificate_id
    if fix.calibration:
        mark(reading, fix.calibration, fix.reason)
    if fix.conformity is not None:
        reading["conformity"] = fix.conformity


_CODES = frozenset((-1, 0, 1, 2, 3))
"""What a spooled conformity code may be (-1: no tolerance)."""
_CONFORMITY_FIELD = ("", ",conformity=0i", ",conformity=1i", ",conformity=2i", ",conformity=3i")
"""A conformity code's field, by code + 1 (-1: no tolerance, no field)."""


class FixedColumns(msgspec.Struct, frozen=True, gc=False):
    """The readings of a batch corrected in full (in range, in date, not failing a tolerance),
    as columns: their ``index`` in the batch (None: every reading, in order), the corrected
    values and their u (float64 arrays; a spool entry carries their bytes, and the lines their
    shortest round-trip text, every column formatted at once), the certificates' ids (one for
    every reading, the common case, or each reading's) and the conformity codes (-1: no
    tolerance; None: none in the batch has one). A struct, not a dataclass: made once per
    batch on each side of the spool, where a frozen dataclass's construction costs a
    microsecond."""

    index: list[int] | None
    corrected: FloatArray
    u: FloatArray
    certificate_id: int | list[int]
    conformity: list[int] | None
    joined: FloatArray | None = None
    """``corrected`` and ``u`` end to end, when they are views of it (read back from a spool
    entry): formatted as it is."""

    def texts(self) -> tuple[list[str], list[str]]:
        """Each corrected value's text and each u's, both columns formatted in one call."""
        joined = self.joined
        texts = _texts(np.concatenate((self.corrected, self.u)) if joined is None else joined)
        count = len(self.corrected)
        return texts[:count], texts[count:]

    def spooled(self) -> dict[str, Any]:
        """The columns as a spool entry's ``fixed`` key carries them (the floats as the base64
        of their little-endian bytes: written and read back without formatting or parsing a
        number, and bit for bit)."""
        corrected, u = self.corrected, self.u
        if corrected.dtype is not _LITTLE_F8 or u.dtype is not _LITTLE_F8:
            corrected, u = corrected.astype("<f8"), u.astype("<f8")  # (no call when they are)
        return {
            "index": self.index,
            "value_f64": corrected.tobytes(),
            "u_f64": u.tobytes(),
            "certificate_id": self.certificate_id,
            "conformity": self.conformity,
        }

    def certificate_ids(self, count: int) -> Iterable[int]:
        """Each reading's certificate id (``count`` readings)."""
        ids = self.certificate_id
        return repeat(ids, count) if isinstance(ids, int) else ids

    def apply(self, readings: list[dict[str, Any]], certificates: Mapping[int, str]) -> None:
        """The stored fields, on wire-format dicts (as :func:`apply_fix` writes them)."""
        values = self.corrected.tolist()
        index = range(len(values)) if self.index is None else self.index
        codes: Iterable[int] = repeat(-1) if self.conformity is None else self.conformity
        put_corrected(
            readings, index, values, self.u.tolist(), self.certificate_ids(len(values)), codes,
            certificates,
        )  # fmt: skip

    def tails(self, fields: Mapping[int, str], count: int) -> str | list[str]:
        """The fields after ``u_corrected`` of the ``count`` corrected readings: their
        certificate's (``fields``, by id) and their conformity's — one text for all of them
        when they share it (one certificate, and no tolerance or one code), else each
        reading's."""
        ids = self.certificate_id
        codes = self.conformity
        if codes is None:
            if isinstance(ids, int):
                return fields[ids]
            return list(map(fields.__getitem__, ids))
        if isinstance(ids, int) and _one_value(codes) and codes[0] in _CODES:
            # one certificate, one code (the common case): one text for them all
            return fields[ids] + _CONFORMITY_FIELD[codes[0] + 1]
        combined = {
            (i, code): fields[i] + _CONFORMITY_FIELD[code + 1]
            for i in fields
            for code in range(-1, 4)
        }
        pairs = zip(self.certificate_ids(count), codes, strict=False)
        return list(map(combined.__getitem__, pairs))


def _one_value(items: list[int]) -> bool:
    """Whether a non-empty list holds one value throughout (counted in C, identity first:
    cheaper than a set of them)."""
    return bool(items) and items.count(items[0]) == len(items)


def _texts(column: FloatArray) -> list[str]:
    """Each float's shortest round-trip text (orjson's digits, as ``repr`` but for the
    exponent's padding: ``1e-7``), the column (contiguous) formatted in one call."""
    data = orjson.dumps(column, option=orjson.OPT_SERIALIZE_NUMPY)
    return data.decode()[1:-1].split(",")


class _Fixed(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """:class:`FixedColumns` as a spool entry carries them: the floats' bytes (``value_f64``,
    ``u_f64``), or — as gateways before it wrote them — JSON lists of numbers (``value``,
    ``u``); one certificate id for all, or a list (earlier gateways always wrote a list)."""

    index: list[int] | None
    certificate_id: int | list[int]
    conformity: list[int] | None
    value_f64: bytes | None = None
    u_f64: bytes | None = None
    value: msgspec.Raw = msgspec.Raw()
    u: msgspec.Raw = msgspec.Raw()


_FLOATS = msgspec.json.Decoder(list[float])


def _binary_columns(values: bytes, us: bytes, count: int) -> FloatArray:
    """Two spooled columns of floats (their bytes), checked: ``count`` finite numbers each;
    both end to end in one array (checked at once: numpy's cost per call is most of it at a
    few hundred readings)."""
    if len(values) != 8 * count or len(us) != 8 * count or not count:
        raise ValueError("a spooled column of corrections is not its batch's length")
    both: FloatArray = np.frombuffer(values + us, _LITTLE_F8)
    if np.count_nonzero(np.isfinite(both)) != 2 * count:
        raise ValueError("a spooled column of corrections holds a non-finite number")
    return both


def _float_column(raw: msgspec.Raw, count: int) -> FloatArray:
    """A column of floats as earlier gateways spooled it (a JSON list), checked: finite
    numbers only, ``count`` of them."""
    numbers = _FLOATS.decode(bytes(raw))  # raises on anything but a list of numbers
    if len(numbers) != count or not count:
        raise ValueError("a spooled column of corrections is not its batch's length")
    if not all(map(_finite, numbers)):
        raise ValueError("a spooled column of corrections holds a non-finite number")
    return np.array(numbers, dtype=np.float64)


def _columns(fixed: _Fixed, rows: int, certificates: Mapping[int, str]) -> FixedColumns:
    """Spooled columns, checked against their batch (an entry is read back from disk)."""
    count = rows if fixed.index is None else len(fixed.index)
    if (
        fixed.index is not None
        and fixed.index
        and not (min(fixed.index) >= 0 and max(fixed.index) < rows)
    ):
        raise ValueError("a spooled correction's index is outside its batch")
    ids = fixed.certificate_id
    if isinstance(ids, int):
        if ids not in certificates:
            raise ValueError("a spooled correction names no certificate of its entry")
    elif len(ids) != count or not set(ids) <= certificates.keys():
        raise ValueError("a spooled correction names no certificate of its entry")
    codes = fixed.conformity
    if codes is not None and (
        len(codes) != count
        or not (codes[0] in _CODES if _one_value(codes) else set(codes) <= _CODES)
    ):
        raise ValueError("a spooled correction's conformity is not a code")
    texts = bool(fixed.value) or bool(fixed.u)
    if fixed.value_f64 is not None and fixed.u_f64 is not None and not texts:
        both = _binary_columns(fixed.value_f64, fixed.u_f64, count)
        return FixedColumns(
            fixed.index, both[:count], both[count:], ids, fixed.conformity, joined=both
        )
    if fixed.value_f64 is None and fixed.u_f64 is None and fixed.value and fixed.u:
        corrected, u = _float_column(fixed.value, count), _float_column(fixed.u, count)
    else:
        raise ValueError("a spooled batch's corrections are not two columns of one form")
    return FixedColumns(fixed.index, corrected, u, ids, fixed.conformity)


class _StoredBatch(msgspec.Struct, gc=False):
    site: str
    agent: str
    readings: list[StoredRow]
    corrections: list[StoredFix] = msgspec.field(default_factory=list)
    certificates: dict[int, str] = msgspec.field(default_factory=dict)
    fixed: _Fixed | None = None


_STORED = msgspec.json.Decoder(_StoredBatch)


def decode_stored(data: bytes) -> ReadingsBatch | None:
    """A spooled batch of readings as rows, or None when it is not one (metrics, or an entry
    of unexpected shape: the caller reads it the general way)."""
    try:
        batch = _STORED.decode(data)
    except msgspec.MsgspecError:
        return None
    columns = None
    if batch.fixed is not None:
        try:
            columns = _columns(batch.fixed, len(batch.readings), batch.certificates)
        except msgspec.MsgspecError as exc:
            raise ValueError(f"spooled corrections: {exc}") from None
    return ReadingsBatch(
        batch.site, batch.agent, rows=batch.readings, fixes=batch.corrections,
        certificates=batch.certificates, columns=columns,
    )  # fmt: skip


class Lines:
    """A spooled batch's readings as line protocol already (``text``: ``count`` lines joined by
    newlines), built while it waited for the writer (see :class:`EntryMemo`): a line store
    writes it as it is."""

    __slots__ = ("count", "text")

    def __init__(self, text: str, count: int) -> None:
        self.text = text
        self.count = count

    def split(self) -> tuple[Lines, Lines]:
        """The first and the second half of the lines."""
        lines = self.text.split("\n")
        middle = len(lines) // 2
        return (
            Lines("\n".join(lines[:middle]), middle),
            Lines("\n".join(lines[middle:]), len(lines) - middle),
        )

    def __repr__(self) -> str:
        return f"Lines({self.text[:400]!r}, {self.count})"


ROWS_WEIGHT = 4
"""Memory a batch's decoded rows take, per byte of its payload (measured: 4.0 for the chain
benchmark's batches of 500 readings; its line protocol takes 0.94)."""

ITEM_WEIGHT = 200
"""Memory a memo item takes beside its rows or text (its dict slot, tuple and objects): what
keeps a memo of one-reading messages within its bound."""


class EntryMemo:
    """What the writer would otherwise make again from a spool entry, by the entry's id: the
    batch ingest decoded (its rows, or with a line store their line protocol: :meth:`held`), so
    a writer that keeps up never parses what ingest parsed.

    Bounded by the memory it holds (rows weigh :data:`ROWS_WEIGHT` times their payload's
    bytes, every item :data:`ITEM_WEIGHT` more). Given the store's line builder (``lines``), a
    memo over its bound builds the oldest batches' line protocol — what the writer would build
    from them anyway — in place of their rows, a quarter of their memory: a writer that fell
    behind a burst (it reads the entries back from disk) still parses none of it again, while
    the memo holds no more memory than rows alone did. Still over its bound, it forgets the
    newest entries, not the oldest: the writer takes entries in id order, so the oldest are the
    ones it needs first, and nothing is built to be thrown away. Taking an entry forgets every
    older one still held (the writer has passed them: an item put after its entry was read from
    disk would never be taken). What is forgotten (or never put) is parsed again from the
    entry."""

    def __init__(
        self,
        max_bytes: int = ROWS_WEIGHT * RECENT_MAX_BYTES,
        lines: Callable[[ReadingsBatch], list[str]] | None = None,
    ) -> None:
        self._items: dict[int, tuple[int, Writable]] = {}
        """entry id → (memory it weighs, what the writer takes), oldest first."""
        self._rows: collections.deque[int] = collections.deque()
        """Ids of the entries held as rows, oldest first (some may be gone already)."""
        self._bytes = 0
        self._max = max_bytes
        self._lines = lines

    def held(self, batch: ReadingsBatch) -> ReadingsBatch | Lines:
        """What to hand over for ``batch``: given a line builder, its line protocol, built now
        (what the writer would build from it anyway) while the rows just parsed are in the
        cache, so that the rows die at once instead of waiting in memory: a quarter of their
        memory, and a burst no longer grows the process by its rows (each page of that growth
        is a page fault: in the chain benchmark half the gateway's 50,000 went, the peak fell
        from 290 to 190 MB). A batch whose lines cannot be built stays rows: the writer refuses
        its points itself."""
        if self._lines is None:
            return batch
        lines = self._built(batch)
        return batch if lines is None else lines

    def _built(self, batch: ReadingsBatch) -> Lines | None:
        """``batch``'s line protocol by the store's builder; None when its lines cannot be
        built (left to the writer, which refuses the point alone)."""
        assert self._lines is not None
        try:
            return Lines("\n".join(self._lines(batch)), batch.count)
        except Exception:  # noqa: BLE001 - any point the builder chokes on, see above
            return None

    def put(self, entry_id: int, item: Writable, size: int) -> None:
        """Remember ``item`` as what entry ``entry_id`` (``size`` bytes) decodes to."""
        weight = ITEM_WEIGHT + (len(item.text) if isinstance(item, Lines) else ROWS_WEIGHT * size)
        items = self._items
        old = items.pop(entry_id, None)
        if old is not None:
            self._bytes -= old[0]
        items[entry_id] = (weight, item)
        self._bytes += weight
        if isinstance(item, ReadingsBatch):
            rows = self._rows
            rows.append(entry_id)
            if len(rows) > 2 * len(items) + 64:  # ids taken since: the deque must not grow
                self._rows = collections.deque(
                    key for key, (_, held) in items.items() if isinstance(held, ReadingsBatch)
                )
        if self._bytes > self._max and self._lines is not None:
            self._compact(entry_id)
        while self._bytes > self._max and len(items) > 1:
            dropped, _ = items.pop(next(reversed(items)))
            self._bytes -= dropped

    def _compact(self, newest: int) -> None:
        """The oldest rows as line protocol, until within the bound or none is left but the
        newest (forgotten rather than built, if still over); a batch whose lines cannot be
        built is forgotten: the writer refuses its points itself."""
        assert self._lines is not None
        items, rows = self._items, self._rows
        while self._bytes > self._max and rows and rows[0] != newest:
            entry_id = rows.popleft()
            weight, batch = items.get(entry_id, (0, None))
            if not isinstance(batch, ReadingsBatch):
                continue  # taken (or put again as lines) since
            self._bytes -= weight
            lines = self._built(batch)
            if lines is None:
                del items[entry_id]
                continue
            weight = ITEM_WEIGHT + len(lines.text)
            items[entry_id] = (weight, lines)  # keeps its place: oldest first
            self._bytes += weight

    def take(self, entry_id: int) -> Writable | None:
        """What entry ``entry_id`` decodes to, if remembered (and forgotten now, with every
        older entry still held)."""
        items = self._items
        while items:
            first = next(iter(items))
            if first >= entry_id:
                break
            self._bytes -= items.pop(first)[0]
        found = items.pop(entry_id, None)
        if found is None:
            return None
        self._bytes -= found[0]
        return found[1]


@dataclass(frozen=True, slots=True)
class MetricsSample:
    """One sample of a process's self-metrics."""

    measurement: str
    tags: Mapping[str, str]
    ts_ns: int
    values: Mapping[str, int | float]


Writable = ReadingsBatch | MetricsSample | Lines

_finite = math.isfinite
