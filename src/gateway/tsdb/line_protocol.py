"""InfluxDB line protocol, built and checked here before anything is sent.

Some servers accept malformed lines with a 2xx and drop them (VictoriaMetrics answers 204 and
only logs it, NOTES.md), so validity is guaranteed by construction: every component goes through
an escaping function that refuses what cannot be written (newlines, empty names, non-finite
floats). :func:`parse_line` reads a line back; the tests round-trip every kind of field through
it and through a real influxd.

Reference: https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

FieldValue = float | int | bool | str

# Line protocol separates on ASCII space only; other whitespace is an ordinary character.
_MEASUREMENT = re.compile(r"([, ])")
_KEY = re.compile(r"([,= ])")


class LineError(ValueError):
    """A value that cannot be written as line protocol."""


def _no_newline(text: str, what: str) -> str:
    if not text:
        raise LineError(f"{what} is empty")
    if "\n" in text or "\r" in text:
        raise LineError(f"{what} {text!r} contains a newline")
    if "\\" in text:
        # influxd 1.x keeps an escaped backslash doubled in names: it cannot round-trip.
        raise LineError(f"{what} {text!r} contains a backslash")
    return text


def escape_measurement(name: str) -> str:
    """Escape commas and spaces of a measurement name."""
    return _MEASUREMENT.sub(r"\\\1", _no_newline(name, "measurement"))


def escape_key(text: str, what: str = "key") -> str:
    """Escape commas, equals signs and spaces of a tag key/value or field key."""
    return _KEY.sub(r"\\\1", _no_newline(text, what))


def format_field(value: FieldValue) -> str:
    """One field value: float, integer (``i``), boolean, or double-quoted string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise LineError(f"integer {value} does not fit 64 bits")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineError(f"float {value!r} is not finite")
        return repr(value)
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise LineError("string field contains a newline")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise LineError(f"unsupported field type {type(value).__name__}")


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,tag=value,...`` with tags sorted by key (InfluxDB's own order, so the same
    series is always spelled the same). Empty tag values are omitted (they are not allowed)."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value == "":
            continue
        parts.append(f"{escape_key(key, 'tag key')}={escape_key(value, 'tag value')}")
    return ",".join(parts)


def format_fields(fields: Mapping[str, FieldValue]) -> str:
    """``key=value,...``; at least one field is required."""
    if not fields:
        raise LineError("a point needs at least one field")
    return ",".join(f"{escape_key(k, 'field key')}={format_field(v)}" for k, v in fields.items())


def line(key: str, fields: Mapping[str, FieldValue], ts_ns: int) -> str:
    """One point from a series key (see :func:`series_key`), fields and a ns timestamp."""
    if not isinstance(ts_ns, int) or isinstance(ts_ns, bool):
        raise LineError("timestamp must be an integer of nanoseconds")
    return f"{key} {format_fields(fields)} {ts_ns}"


def _scan(text: str, i: int, stops: str) -> tuple[str, int]:
    """Read from ``i`` up to an unescaped character of ``stops``; return (unescaped, index)."""
    out = []
    while i < len(text) and text[i] not in stops:
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in stops + "\\=, ":
            out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out), i


def _scan_string(text: str, i: int) -> tuple[str, int]:
    """Read a double-quoted string field starting at ``i``; return (value, index after it)."""
    out = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise LineError("unterminated string field")


def _parse_value(raw: str) -> FieldValue:
    if raw.endswith("i"):
        return int(raw[:-1])
    if raw in ("true", "t", "T", "True", "TRUE"):
        return True
    if raw in ("false", "f", "F", "False", "FALSE"):
        return False
    value = float(raw)
    if not math.isfinite(value):
        raise LineError(f"non-finite float {raw}")
    return value


def parse_line(text: str) -> tuple[str, dict[str, str], dict[str, FieldValue], int]:
    """(measurement, tags, fields, timestamp) of one line; raises LineError if malformed."""
    measurement, i = _scan(text, 0, ", ")
    if not measurement:
        raise LineError("empty measurement")
    tags: dict[str, str] = {}
    while i < len(text) and text[i] == ",":
        key, i = _scan(text, i + 1, "=, ")
        if i >= len(text) or text[i] != "=":
            raise LineError(f"tag {key!r} has no value")
        value, i = _scan(text, i + 1, ", ")
        if not key or not value:
            raise LineError("empty tag key or value")
        tags[key] = value
    if i >= len(text) or text[i] != " ":
        raise LineError("no fields")
    fields: dict[str, FieldValue] = {}
    sep = " "
    while sep in (" ", ","):
        key, i = _scan(text, i + 1, "=, ")
        if not key or i >= len(text) or text[i] != "=":
            raise LineError(f"bad field {key!r}")
        if i + 1 < len(text) and text[i + 1] == '"':
            fields[key], i = _scan_string(text, i + 1)
        else:
            raw, i = _scan(text, i + 1, ", ")
            try:
                fields[key] = _parse_value(raw)
            except ValueError as exc:
                raise LineError(f"bad field value {raw!r}: {exc}") from None
        sep = text[i] if i < len(text) else ""
        if sep == " ":
            break
    if sep != " ":
        raise LineError("no timestamp")
    try:
        ts = int(text[i + 1 :])
    except ValueError:
        raise LineError(f"bad timestamp {text[i + 1 :]!r}") from None
    return measurement, tags, fields, ts
