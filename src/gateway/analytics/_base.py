"""Base of every analytics result: frozen, strict, JSON-serialisable pydantic models."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer


class AnalyticsModel(BaseModel):
    """A frozen result model; unknown fields are refused so the JSON stays stable."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _dof_from_json(value: object) -> object:
    # JSON has no infinity: null stands for infinitely many degrees of freedom.
    return math.inf if value is None else value


def _dof_to_json(value: float) -> float | None:
    return None if math.isinf(value) else value


Dof = Annotated[
    float,
    BeforeValidator(_dof_from_json),
    PlainSerializer(_dof_to_json, return_type=float | None, when_used="json"),
]
"""Degrees of freedom; ``math.inf`` in Python, ``null`` in JSON (known uncertainties)."""
