"""Base models and names every floor shares: frozen models that refuse unknown keys, and the
patterns of names and plain text that become MQTT topic levels and InfluxDB tags."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="Letters, digits, '_', '.', '-'; starts with a letter or digit; ≤ 64 chars. "
        "Names are MQTT topic levels and InfluxDB tag values, so no '/', '+', '#' or spaces.",
    ),
]
PLAIN_TEXT = r"^[^\\\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
"""No backslash and no control characters: InfluxDB cannot round-trip a backslash in a tag."""
FREE_TEXT = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
"""No control characters (C0, DEL, C1) and no line or paragraph separators: text that is one line
wherever it goes (line protocol, a log line, an e-mail header)."""


class FrozenModel(BaseModel):
    """Base of every config model: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def repeated(names: Iterable[str]) -> list[str]:
    """Every name that was already given before, in the order met (a name given three times is
    listed twice): what a config that needs unique names refuses."""
    seen: set[str] = set()
    again = []
    for name in names:
        if name in seen:
            again.append(name)
        seen.add(name)
    return again


def plain_fields(instance: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """A dataclass instance's fields as plain data, in declaration order: tuples become lists
    (what JSON and the API carry); the fields named in ``exclude`` are left out."""
    left_out = set(exclude)
    return {
        field.name: list(value)
        if isinstance(value := getattr(instance, field.name), tuple)
        else value
        for field in dataclasses.fields(instance)
        if field.name not in left_out
    }
