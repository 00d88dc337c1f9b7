"""What the gateway writes: reading batches and self-metric samples, and their line protocol.

Schema (see docs/storage.md):

- ``reading`` — tags ``site, agent, instrument, channel, unit`` plus the channel's own tags;
  fields ``value`` (float; booleans as 0/1), ``text`` (string values), ``quality`` (integer:
  0 good, 1 uncertain, 2 bad), ``u`` (standard uncertainty), ``reason`` (why not good).
- ``etalon_agent`` / ``etalon_gateway`` — self-metrics, tags ``site`` and ``agent``/``gateway``,
  one integer or float field per counter.

Only constant identifiers are tags, so a series is one channel and cardinality equals the number
of channels; quality and reason vary per reading and are fields, never tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.tsdb.line_protocol import format_field, line, series_key

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


def reading_line(key: str, reading: Mapping[str, Any]) -> str:
    """One reading's line, fields built directly (the hot path of the gateway).

    Relies on what ingest validated: floats are finite, integers fit 64 bits, names and units
    are plain text. Only string fields need escaping.
    """
    value = reading["value"]
    kind = value.__class__
    if kind is float:
        head = f"value={value!r},"
    elif kind is int:
        head = f"value={float(value)!r},"
    elif kind is bool:
        head = "value=1.0," if value else "value=0.0,"
    elif kind is str:
        head = f"text={format_field(value)},"
    else:
        head = ""
    tail = ""
    u = reading.get("u")
    if u is not None:
        tail = f",u={float(u)!r}"
    reason = reading.get("reason")
    if reason:
        tail += f",reason={format_field(reason)}"
    return f"{key} {head}quality={QUALITY_CODE[reading['quality']]}i{tail} {reading['ts']}"


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

    def lines(self, item: Writable) -> list[str]:
        """Line protocol of a batch or a metrics sample."""
        if isinstance(item, MetricsSample):
            return [line(series_key(item.measurement, item.tags), dict(item.values), item.ts_ns)]
        site, agent = item.site, item.agent
        return [reading_line(self._key(site, agent, r), r) for r in item.readings]
