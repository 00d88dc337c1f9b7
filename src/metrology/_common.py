"""What the metrology modules share: the frozen base model (and building a model from another
object's same-named attributes), degrees of freedom, the error."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)
from pydantic.config import JsonDict

from core.errors import InvalidInputError


class MetrologyError(InvalidInputError, ValueError):
    """An input the metrology library refuses, with the reason (a ``ValueError``, so that
    pydantic validators raising it report the field and the reason)."""


class MetrologyModel(BaseModel):
    """A frozen result or input model; unknown fields are refused so the JSON stays stable."""

    model_config = ConfigDict(frozen=True, extra="forbid")


ModelT = TypeVar("ModelT")


def from_attributes(model: type[ModelT], source: object, /, **values: Any) -> ModelT:
    """``model`` (a pydantic model or a dataclass) built from ``source``: each of its fields that
    ``source`` has an attribute of the same name for takes that attribute's value, ``values``
    give the others (or replace one); checked as the constructor checks."""
    names = (
        model.model_fields
        if isinstance(model, type) and issubclass(model, BaseModel)
        else [field.name for field in dataclasses.fields(model)]  # type: ignore[arg-type]
    )
    taken = {
        name: getattr(source, name)
        for name in names
        if name not in values and hasattr(source, name)
    }
    return model(**taken, **values)


def _dof_from_json(value: object) -> object:
    # JSON has no infinity: null stands for infinitely many degrees of freedom.
    return math.inf if value is None else value


def _dof_to_json(value: float) -> float | None:
    return None if math.isinf(value) else value


Dof = Annotated[
    float,
    BeforeValidator(_dof_from_json),
    PlainSerializer(_dof_to_json, return_type=float | None, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number", "minimum": 1}, {"type": "null"}],
            "description": "degrees of freedom; null means infinitely many",
        },
        mode="validation",
    ),
]
"""Degrees of freedom; ``math.inf`` in Python, ``null`` in JSON (an uncertainty taken as known)."""


def finite(value: float, what: str) -> float:
    """``value`` as a float, refused when NaN or infinite."""
    number = float(value)
    if not math.isfinite(number):
        raise MetrologyError(f"{what} must be a finite number, got {value!r}")
    return number


def check_text(text: str, what: str, max_length: int = 200) -> str:
    """A name or unit: printable, single-line, bounded (it ends up in reports and DCCs)."""
    if len(text) > max_length:
        raise MetrologyError(f"{what} is longer than {max_length} characters")
    if not text.isprintable():
        raise MetrologyError(f"{what} holds a control character")
    return text


INFINITE_DOF_DEFAULT: JsonDict = {"default": None}
"""``json_schema_extra`` of a ``Dof`` field defaulting to ``math.inf``: JSON writes it null."""


def finite_fields(*fields: str, what: str = "the value") -> Any:
    """A field validator refusing NaN and infinities in ``fields`` (an optional field left at
    None passes), the message naming the value as ``what``; assign it in the model's body:
    ``_finite = finite_fields("lower", "upper", what="a tolerance limit")``."""

    def check(cls: type[BaseModel], value: float | None) -> float | None:
        return None if value is None else finite(value, what)

    return field_validator(*fields)(check)


def shorthand(
    data: object, key: str, kind: type | tuple[type, ...]
) -> tuple[dict[str, Any], Any] | None:
    """A model's raw input and its value of ``key``, when that value is a ``kind``: the shorthand
    a ``mode="before"`` validator derives other fields from. None when the input is not a
    mapping or has no such value, and when the value is of another type (the field's own
    validator then reports it)."""
    if not isinstance(data, dict):
        return None
    value = data.get(key)
    return (data, value) if isinstance(value, kind) else None
