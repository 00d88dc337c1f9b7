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

from gateway.line_protocol import FieldValue, line, series_key

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


def reading_fields(reading: Mapping[str, Any]) -> dict[str, FieldValue]:
    """The fields of one reading point."""
    fields: dict[str, FieldValue] = {}
    value = reading.get("value")
    if isinstance(value, bool):
        fields["value"] = 1.0 if value else 0.0
    elif isinstance(value, int | float):
        fields["value"] = float(value)
    elif isinstance(value, str):
        fields["text"] = value
    fields["quality"] = QUALITY_CODE[reading["quality"]]
    if reading.get("u") is not None:
        fields["u"] = float(reading["u"])
    if reading.get("reason"):
        fields["reason"] = reading["reason"]
    return fields


class LineBuilder:
    """Builds line protocol, caching each series' escaped key (the costly part)."""

    def __init__(self, max_cached: int = 200_000) -> None:
        self._keys: dict[tuple[Any, ...], str] = {}
        self._max = max_cached

    def _key(self, site: str, agent: str, reading: Mapping[str, Any]) -> str:
        extra = reading.get("tags") or {}
        cache_key = (
            site,
            agent,
            reading["instrument"],
            reading["channel"],
            reading["unit"],
            tuple(sorted(extra.items())),
        )
        key = self._keys.get(cache_key)
        if key is None:
            if len(self._keys) >= self._max:
                self._keys.clear()
            tags = {
                **extra,
                "site": site,
                "agent": agent,
                "instrument": reading["instrument"],
                "channel": reading["channel"],
                "unit": reading["unit"],
            }
            key = self._keys[cache_key] = series_key(READING, tags)
        return key

    def lines(self, item: Writable) -> list[str]:
        """Line protocol of a batch or a metrics sample."""
        if isinstance(item, MetricsSample):
            return [line(series_key(item.measurement, item.tags), dict(item.values), item.ts_ns)]
        return [
            line(self._key(item.site, item.agent, r), reading_fields(r), r["ts"])
            for r in item.readings
        ]
