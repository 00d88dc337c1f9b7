"""What the gateway writes: reading batches and self-metric samples, and their line protocol.

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.tsdb.line_protocol import LineError, format_field, format_fields, series_key

QUALITY_CODE = {"good": 0, "uncertain": 1, "bad": 2}
READING = "reading"


@dataclass(frozen=True, slots=True)
class ReadingsBatch:
    """Validated readings of one agent, as wire-format dicts."""

    site: str
    agent: str
    readings: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class MetricsSample:
    """One sample of a process's self-metrics."""

    measurement: str
    tags: Mapping[str, str]
    ts_ns: int
    values: Mapping[str, int | float]


Writable = ReadingsBatch | MetricsSample


Rejected = list[tuple[str, str]]
"""Points that could not be built: (what the point was, why)."""

_finite = math.isfinite


_CERTIFICATE_FIELDS: dict[int, tuple[str, str]] = {}
"""certificate id → (its identifier, the escaped ``certificate`` and ``certificate_id`` fields):
the same few certificates correct every reading, so their text is built once."""


def _certificate_fields(certificate_id: int, number: str) -> tuple[str, str]:
    if len(_CERTIFICATE_FIELDS) >= 10_000:
        _CERTIFICATE_FIELDS.clear()
    text = f",certificate={format_field(number)},certificate_id={int(certificate_id)}i"
    _CERTIFICATE_FIELDS[certificate_id] = (number, text)
    return number, text


def reading_line(key: str, reading: Mapping[str, Any]) -> str:
    """One reading's line, fields built directly (the hot path of the gateway).

    Ingest validated the reading; what would still make the line invalid (a non-finite float,
    a timestamp that is no integer, a newline in a string) raises, so the caller refuses this
    point alone. Only string fields need escaping.
    """
    value = reading["value"]
    kind = value.__class__
    ts = reading["ts"]
    if ts.__class__ is not int:
        raise LineError(f"timestamp {ts!r} is not an integer of nanoseconds")
    if kind is float:
        if not _finite(value):
            raise LineError(f"float {value!r} is not finite")
        head = f"value={value!r},"
    elif kind is int:
        head = f"value={float(value)!r},"
    elif kind is bool:
        head = "value=1.0," if value else "value=0.0,"
    elif kind is str:
        head = f"text={format_field(value)},"
    elif value is None:
        head = ""
    else:
        raise LineError(f"value of type {kind.__name__} cannot be written")
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


def _shown(site: str, agent: str, reading: Mapping[str, Any]) -> str:
    """A refused reading, as its dead letter shows it."""
    return repr({"site": site, "agent": agent, **reading})[:500]


class LineBuilder:
    """Builds line protocol, caching each series' escaped key (the costly part)."""

    def __init__(self, max_cached: int = 200_000) -> None:
        self._keys: dict[tuple[str, str, str, str], tuple[str, dict[str, str], str]] = {}
        self._max = max_cached

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
        site, agent = item.site, item.agent
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
