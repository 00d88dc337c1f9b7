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

_MEASUREMENT = re.compile(r"([,\s\\])")
_KEY = re.compile(r"([,=\s\\])")


class LineError(ValueError):
    """A value that cannot be written as line protocol."""


def _no_newline(text: str, what: str) -> str:
    if not text:
        raise LineError(f"{what} is empty")
    if "\n" in text or "\r" in text:
        raise LineError(f"{what} {text!r} contains a newline")
    return text


def escape_measurement(name: str) -> str:
    """Escape commas, spaces and backslashes of a measurement name."""
    return _MEASUREMENT.sub(r"\\\1", _no_newline(name, "measurement")).replace("\t", "\\ ")


def escape_key(text: str, what: str = "key") -> str:
    """Escape commas, equals signs, spaces and backslashes of a tag key/value or field key."""
    escaped = _KEY.sub(r"\\\1", _no_newline(text, what))
    return escaped


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


def _split(text: str, sep: str) -> list[str]:
    """Split on unescaped ``sep`` outside double quotes."""
    out, current, quoted, i = [], [], False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    if quoted:
        raise LineError("unterminated string field")
    out.append("".join(current))
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _parse_value(raw: str) -> FieldValue:
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
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
    sections = _split(text, " ")
    if len(sections) != 3:
        raise LineError(f"expected 3 space-separated sections, got {len(sections)}")
    head, fields_text, ts_text = sections
    head_parts = _split(head, ",")
    measurement = _unescape(head_parts[0])
    tags: dict[str, str] = {}
    for part in head_parts[1:]:
        kv = _split(part, "=")
        if len(kv) != 2 or not kv[0] or not kv[1]:
            raise LineError(f"bad tag {part!r}")
        tags[_unescape(kv[0])] = _unescape(kv[1])
    fields: dict[str, FieldValue] = {}
    for part in _split(fields_text, ","):
        kv = _split(part, "=")
        if len(kv) != 2 or not kv[0]:
            raise LineError(f"bad field {part!r}")
        try:
            fields[_unescape(kv[0])] = _parse_value(kv[1])
        except ValueError as exc:
            raise LineError(f"bad field value {kv[1]!r}: {exc}") from None
    if not measurement:
        raise LineError("empty measurement")
    try:
        ts = int(ts_text)
    except ValueError:
        raise LineError(f"bad timestamp {ts_text!r}") from None
    return measurement, tags, fields, ts
