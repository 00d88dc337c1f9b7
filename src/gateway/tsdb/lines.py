"""The line protocol of what the gateway writes: a reading's line (:func:`reading_line`, over a
wire-format dict) and the :class:`LineBuilder` that writes whole batches and self-metric samples
(rows decoded from the spool, fixes as columns), caching each series' escaped key.

The schema of the lines is in :mod:`gateway.tsdb.points` (and docs/storage.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

import msgspec
import orjson

from edge_agent.wire_marks import marked_quality, marked_reason
from gateway.tsdb.line_protocol import LineError, format_field, format_fields, series_key
from gateway.tsdb.plain_lines import QUALITY_FIELD, plain_lines
from gateway.tsdb.points import (
    QUALITY_CODE,
    READING,
    FixedColumns,
    Lines,
    MetricsSample,
    ReadingsBatch,
    Row,
    StoredFix,
    Writable,
)

_finite = math.isfinite


Rejected = list[tuple[str, str]]
"""Points that could not be built: (what the point was, why)."""


_CERTIFICATE_FIELDS: dict[int, tuple[str, str]] = {}
"""certificate id → (its identifier, the escaped ``certificate`` and ``certificate_id`` fields):
the same few certificates correct every reading, so their text is built once."""


def _certificate_fields(certificate_id: int, number: str) -> tuple[str, str]:
    if len(_CERTIFICATE_FIELDS) >= 10_000:
        _CERTIFICATE_FIELDS.clear()
    text = f",certificate={format_field(number)},certificate_id={int(certificate_id)}i"
    _CERTIFICATE_FIELDS[certificate_id] = (number, text)
    return number, text


def _value_field(value: Any, text: str | None) -> str:
    """The line's value field and its comma (``value=`` for numbers and booleans, ``text=`` for
    strings, nothing for a bad reading without a value); ``text`` is a float already formatted
    (a batch's column formatted at once). Raises LineError for what cannot be written."""
    kind = value.__class__
    if kind is float:
        if not _finite(value):
            raise LineError(f"float {value!r} is not finite")
        return f"value={text or repr(value)},"
    if kind is int:
        return f"value={float(value)!r},"
    if kind is bool:
        return "value=1.0," if value else "value=0.0,"
    if kind is str:
        return f"text={format_field(value)},"
    if value is None:
        return ""
    raise LineError(f"value of type {kind.__name__} cannot be written")


def reading_line(key: str, reading: Mapping[str, Any]) -> str:
    """One reading's line, fields built directly (the hot path of the gateway).

    Ingest validated the reading; what would still make the line invalid (a non-finite float,
    a timestamp that is no integer, a newline in a string) raises, so the caller refuses this
    point alone. Only string fields need escaping.
    """
    ts = reading["ts"]
    if ts.__class__ is not int:
        raise LineError(f"timestamp {ts!r} is not an integer of nanoseconds")
    head = _value_field(reading["value"], None)
    tail = ""
    u = reading.get("u")
    if u is not None:
        u = float(u)
        if not _finite(u):
            raise LineError(f"uncertainty {u!r} is not finite")
        tail = f",u={u!r}"
    reason = reading.get("reason")
    if reason:
        tail += f",reason={format_field(reason)}"
    corrected = reading.get("corrected")
    if corrected is not None:
        certificate_id = reading["certificate_id"]
        fields = _CERTIFICATE_FIELDS.get(certificate_id)
        if fields is None or fields[0] != reading["certificate"]:
            fields = _certificate_fields(certificate_id, reading["certificate"])
        # 12 significant digits for the value, 3 for its u: more than any certificate carries,
        # and much cheaper than the shortest repr of a computed double (17 digits).
        tail += f",corrected={corrected:.12g},u_corrected={reading['u_corrected']:.3g}{fields[1]}"
    conformity = reading.get("conformity")
    if conformity is not None:
        tail += f",conformity={conformity}i"
    return f"{key} {head}quality={QUALITY_CODE[reading['quality']]}i{tail} {ts}"


def _null(_: object) -> None:
    return None  # UNSET (an absent u), or what cannot be shown: the caller formats it itself


def _float_texts(values: list[Any], count: int) -> Iterable[str | None]:
    """The text of each float of a column, formatted in one call (orjson's shortest round-trip
    digits, as ``repr`` but for the exponent's padding: ``1e-7``); ``None`` where the caller
    formats the value itself. Formatting floats one by one is the costliest part of a line."""
    try:
        texts = orjson.dumps(values, default=_null).decode()[1:-1].split(",")
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return repeat(None, count)
    # A comma inside a string value splits it further: then the columns do not line up.
    return texts if len(texts) == count else repeat(None, count)


def _column(text: str | list[str], count: int) -> Iterable[str]:
    """A column of ``count`` texts, given as one shared by all or each one's, each followed by
    the space before the line's timestamp (a line's text is one piece shorter)."""
    if isinstance(text, str):
        return repeat(f"{text} ", count)
    return [f"{each} " for each in text]


def _as_mapping(row: Row) -> dict[str, Any]:
    """A row as the dict :func:`reading_line` reads (absent fields left out)."""
    out: dict[str, Any] = msgspec.to_builtins(row)
    for name in ("corrected", "u_corrected", "certificate", "certificate_id", "conformity"):
        value = getattr(row, name, None)
        if value is not None:
            out[name] = value
    return out


def _shown(site: str, agent: str, reading: Mapping[str, Any]) -> str:
    """A refused reading, as its dead letter shows it."""
    return repr({"site": site, "agent": agent, **reading})[:500]


class LineBuilder:
    """Builds line protocol, caching each series' escaped key (the costly part)."""

    def __init__(self, max_cached: int = 200_000) -> None:
        self._keys: dict[tuple[str, str, str, str], tuple[str, dict[str, str], str]] = {}
        self._rows: dict[tuple[str, str], dict[str, dict[str, tuple[str, Any, str]]]] = {}
        """(site, agent) → instrument → channel → (unit, tags or None, key), for rows."""
        self._max = max_cached
        self._orders: dict[tuple[str, str], tuple[tuple[list[Any], ...], list[str]]] = {}
        """(site, agent) → its latest batch's instruments, channels, units and tags (lists, in
        the batch's order) and the rows' keys (see :meth:`_row_keys`)."""
        self._orders_held = 0
        """Keys ``_orders`` holds, bounded as the caches are."""

    def _key(self, site: str, agent: str, reading: Mapping[str, Any]) -> str:
        # A channel keeps its unit and tags, so (site, agent, instrument, channel) finds its key;
        # unit and tags are compared rather than hashed into the lookup (cheaper per reading).
        cache_key = (site, agent, reading["instrument"], reading["channel"])
        unit = reading["unit"]
        extra = reading.get("tags") or {}
        cached = self._keys.get(cache_key)
        if cached is not None and cached[0] == unit and cached[1] == extra:
            return cached[2]
        if len(self._keys) >= self._max:
            self._keys.clear()
        tags = {
            **extra,
            "site": site,
            "agent": agent,
            "instrument": reading["instrument"],
            "channel": reading["channel"],
            "unit": unit,
        }
        key = series_key(READING, tags)
        self._keys[cache_key] = (unit, dict(extra), key)
        return key

    def lines(self, item: Writable, rejected: Rejected | None = None) -> list[str]:
        """Line protocol of a batch or a metrics sample. A point (a reading, a metric) that
        cannot be written is left out and added to ``rejected`` with the reason; the others
        are built (without ``rejected``, the first such point raises LineError)."""
        if isinstance(item, MetricsSample):
            return self._metrics_lines(item, rejected)
        if isinstance(item, Lines):  # built already
            return item.text.split("\n")
        site, agent = item.site, item.agent
        if item.rows is not None:
            try:
                return self._row_lines(
                    site, agent, item.rows, item.fixes, item.certificates, item.columns
                )
            except Exception as exc:
                if rejected is None:
                    raise _as_line_error(exc) from exc
            # find the points that cannot be written, keep the others (the general way)
            return self.lines(ReadingsBatch(site, agent, item.readings), rejected)
        try:
            return [reading_line(self._key(site, agent, r), r) for r in item.readings]
        except Exception as exc:
            if rejected is None:
                raise _as_line_error(exc) from exc
        out = []  # find the points that cannot be written, keep the others
        for reading in item.readings:
            try:
                out.append(reading_line(self._key(site, agent, reading), reading))
            except Exception as exc:  # noqa: BLE001 - one bad point is refused alone
                rejected.append((_shown(site, agent, reading), _reason(exc)))
        return out

    def _series(self, site: str, agent: str, row: Row) -> str:
        """A row's series key (the slow path of :meth:`_row_lines`: a new channel, or one whose
        unit or tags changed)."""
        tags = row.tags or {}
        key = self._key(
            site,
            agent,
            {"instrument": row.instrument, "channel": row.channel, "unit": row.unit, "tags": tags},
        )
        per_agent = self._rows.setdefault((site, agent), {})
        if sum(len(c) for c in per_agent.values()) >= self._max:
            per_agent.clear()
        per_agent.setdefault(row.instrument, {})[row.channel] = (row.unit, tags or None, key)
        return key

    def _row_lines(
        self,
        site: str,
        agent: str,
        rows: Sequence[Row],
        fixes: Sequence[StoredFix] = (),
        certificates: Mapping[int, str] | None = None,
        columns: FixedColumns | None = None,
    ) -> list[str]:
        """:func:`reading_line` of every row (with its correction, if any): the same fields and
        values (tested), the series key looked up by instrument and channel, a column of floats
        formatted at once. The gateway's hot path.

        A row corrected in full (``columns``) takes its corrected value and u as the spool
        entry spells them, and its certificate's and conformity's fields made once per
        certificate; a marked one (``fixes``) is written by :meth:`_fixed_line`. In a batch
        whose every row is corrected in full (the common case) the columns' texts are taken as
        they are, nothing gathered per row."""
        count = len(rows)
        # Per row: the corrected value's text ('' if none, the StoredFix of a marked row), u's,
        # the fields after them and the space before the timestamp.
        corrected: Iterable[Any] = repeat("", count)
        u_corrected: Iterable[str] = repeat("", count)
        ends: Iterable[str] = repeat("", count)
        full: tuple[list[str], list[str], Iterable[str]] | None = None
        """The texts of a batch corrected in full."""
        if columns is not None or fixes:
            numbers = certificates or {}
            fields = {i: self._certificate(i, numbers) for i in numbers}
            if columns is not None and columns.index is None and not fixes:
                full = (*columns.texts(), _column(columns.tails(fields, count), count))
                corrected, u_corrected, ends = full
            else:
                by_row: list[Any] = [""] * count
                u_by_row = [""] * count
                ends_by_row = [""] * count
                if columns is not None:
                    values, us = columns.texts()
                    index = range(count) if columns.index is None else columns.index
                    tails = _column(columns.tails(fields, len(values)), len(values))
                    for i, value, spread, end in zip(index, values, us, tails, strict=False):
                        by_row[i], u_by_row[i], ends_by_row[i] = value, spread, end
                for each in fixes:
                    by_row[each.index] = each
                corrected, u_corrected, ends = by_row, u_by_row, ends_by_row
        keys = self._row_keys(site, agent, rows)
        if not fixes and (columns is None or full is not None):
            plain = plain_lines(rows, keys, full)
            if plain is not None:
                return plain
        finite = _finite
        codes = QUALITY_FIELD
        out: list[str] = []
        append = out.append
        for row, key, value_text, u_text, fixed, u_fixed, end in zip(
            rows,
            keys,
            # Comprehensions: on a struct's field, about half the cost of a map of an attrgetter.
            _float_texts([row.value for row in rows], count),
            _float_texts([row.u for row in rows], count),
            corrected,
            u_corrected,
            ends,
            strict=True,
        ):
            ts = row.ts
            if ts.__class__ is not int:
                raise LineError(f"timestamp {ts!r} is not an integer of nanoseconds")
            head = _value_field(row.value, value_text)
            u = row.u
            if u is None or u is msgspec.UNSET:
                tail = ""
            else:
                if u.__class__ is not float:
                    u, u_text = float(u), None
                if not finite(u):
                    raise LineError(f"uncertainty {u!r} is not finite")
                tail = f",u={u_text or repr(u)}"
            if fixed.__class__ is not str:  # a marked row (StoredFix)
                append(self._fixed_line(key, head, tail, ts, row, fixed, certificates or {}))
                continue
            reason = row.reason
            if reason:
                tail += f",reason={format_field(reason)}"
            if fixed:
                append(
                    f"{key} {head}{codes[row.quality]}{tail},corrected={fixed},"
                    f"u_corrected={u_fixed}{end}{ts}"
                )
            elif row.corrected is not None or row.conformity is not None:
                append(reading_line(key, _as_mapping(row)))  # a spool entry of an older gateway
            else:
                append(f"{key} {head}{codes[row.quality]}{tail} {ts}")
        return out

    def _row_keys(self, site: str, agent: str, rows: Sequence[Row]) -> list[str]:
        """Each row's series key. An agent sends the same channels in the same order batch
        after batch: when the rows name the channels, units and tags of the agent's previous
        batch, in its order, its keys are taken as they are (four list comparisons, no lookup
        per row); else each is looked up by instrument and channel."""
        order = (
            [row.instrument for row in rows],
            [row.channel for row in rows],
            [row.unit for row in rows],
            [row.tags for row in rows],
        )
        last = self._orders.get((site, agent))
        if last is not None and last[0] == order:
            return last[1]
        instruments = self._rows.setdefault((site, agent), {}).get
        keys = []
        for row in rows:
            channels = instruments(row.instrument)
            cached = channels.get(row.channel) if channels is not None else None
            if cached is None or cached[0] != row.unit or cached[1] != (row.tags or None):
                keys.append(self._series(site, agent, row))
            else:
                keys.append(cached[2])
        held = self._orders_held + len(keys) - (0 if last is None else len(last[1]))
        if held > self._max:  # a flood of agents or of channels: start again
            self._orders.clear()
            held = len(keys)
        self._orders[(site, agent)] = (order, keys)
        self._orders_held = held
        return keys

    @staticmethod
    def _certificate(certificate_id: int | None, certificates: Mapping[int, str]) -> str:
        """The ``certificate`` and ``certificate_id`` fields of a certificate ('' if none)."""
        if certificate_id is None or certificate_id not in certificates:
            return ""
        number = certificates[certificate_id]
        fields = _CERTIFICATE_FIELDS.get(certificate_id)
        if fields is None or fields[0] != number:
            fields = _certificate_fields(certificate_id, number)
        return fields[1]

    def _fixed_line(
        self,
        key: str,
        head: str,
        tail: str,
        ts: int,
        row: Row,
        fix: StoredFix,
        certificates: Mapping[int, str],
    ) -> str:
        """The line of a corrected (or marked) row: its fields and the correction's."""
        quality, reason = row.quality, row.reason or None
        if fix.calibration:
            quality, reason = marked_quality(quality), marked_reason(reason, fix.reason)
        if reason:
            tail += f",reason={format_field(reason)}"
        certificate_id = fix.certificate_id
        if fix.corrected is not None and certificate_id is not None:
            number = certificates[certificate_id]
            fields = _CERTIFICATE_FIELDS.get(certificate_id)
            if fields is None or fields[0] != number:
                fields = _certificate_fields(certificate_id, number)
            tail += f",corrected={fix.corrected:.12g},u_corrected={fix.u_corrected:.3g}{fields[1]}"
        if fix.conformity is not None:
            tail += f",conformity={fix.conformity}i"
        return f"{key} {head}quality={QUALITY_CODE[quality]}i{tail} {ts}"

    def _metrics_lines(self, item: MetricsSample, rejected: Rejected | None) -> list[str]:
        try:
            key = series_key(item.measurement, item.tags)
            if item.ts_ns.__class__ is not int:
                raise LineError(f"timestamp {item.ts_ns!r} is not an integer of nanoseconds")
        except Exception as exc:
            if rejected is None:
                raise _as_line_error(exc) from exc
            rejected.append((repr(item)[:500], _reason(exc)))
            return []
        fields = {}
        for name, value in item.values.items():
            try:
                format_fields({name: value})
            except Exception as exc:
                if rejected is None:
                    raise _as_line_error(exc) from exc
                rejected.append((f"{key} {name}={value!r} {item.ts_ns}"[:500], _reason(exc)))
                continue
            fields[name] = value
        return [f"{key} {format_fields(fields)} {item.ts_ns}"] if fields else []


def _reason(exc: Exception) -> str:
    what = "" if isinstance(exc, LineError) else f"{type(exc).__name__}: "
    return f"cannot build line protocol: {what}{exc}"


def _as_line_error(exc: Exception) -> LineError:
    return exc if isinstance(exc, LineError) else LineError(f"{type(exc).__name__}: {exc}")
