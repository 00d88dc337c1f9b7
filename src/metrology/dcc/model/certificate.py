r"""The certificate of the DCC model (:class:`Dcc`) and its flattened view, one :class:`Point` per
value with its :class:`Condition`\ s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from metrology.dcc.model.administrative import (
    Contact,
    Identification,
    Item,
    Laboratory,
    ResponsiblePerson,
    Software,
    etalon_software,
)
from metrology.dcc.model.fields import (
    Country,
    FrozenModel,
    Lang,
    PerformanceLocation,
    RefTypes,
    Str,
)
from metrology.dcc.model.quantities import (
    InfluenceCondition,
    MeasurementResult,
    Quantity,
    QuantityList,
    Statement,
    Value,
)
from metrology.dcc.model.text import Text

ISSUE_DATE_REF_TYPE = "etalon_issueDate"
"""DCC 3.1.2 has no issue-date element: etalon writes it as a statement with this refType and a
``dcc:date``, and reads it back into :attr:`Dcc.issue_date`."""
RECALIBRATION_REF_TYPE = "basic_recalibration"


class Condition(FrozenModel):
    """What a point was measured at: another value of its table row (``column``) or an
    influence condition around it (``influence``)."""

    source: Literal["column", "influence"]
    name: Text | None = None
    ref_types: RefTypes = ()
    value: Value


class Point(FrozenModel):
    """One measured value of a DCC with its context: where it is, what it is, and the
    conditions it was measured at. A multi-result DCC gives several points."""

    path: str = Field(..., description="Where in the document, e.g. 'measurementResult[1]/…'.")
    measurement_result: Text
    result: Text
    quantity: Text | None = None
    ref_types: RefTypes = ()
    row: int | None = Field(
        None, description="Row of its table (0-based); None for a single value."
    )
    value: Value
    conditions: tuple[Condition, ...] = ()

    def condition(self, ref_type: str) -> Value | None:
        """The value of the first condition with this refType (``basic_measuredValue``: the
        indication of the row), or None."""
        for condition in self.conditions:
            if ref_type in condition.ref_types:
                return condition.value
        return None


class Dcc(FrozenModel):
    """A Digital Calibration Certificate (DCC 3.1.2), as far as etalon reads and writes it."""

    schema_version: Literal["3.1.2"] = "3.1.2"
    unique_identifier: Str
    country_code: Country = Field(..., description="Where the DCC was issued (ISO 3166-1).")
    used_languages: tuple[Lang, ...] = Field(("en", "vi"), min_length=1)
    mandatory_languages: tuple[Lang, ...] = Field(("en", "vi"), min_length=1)
    identifications: tuple[Identification, ...] = Field(
        (), description="Of the certificate itself: an order number, the lab's file number."
    )
    receipt_date: dt.date | None = None
    begin_performance_date: dt.date
    end_performance_date: dt.date
    performance_location: PerformanceLocation = "laboratory"
    issue_date: dt.date | None = None
    software: tuple[Software, ...] = Field(default_factory=etalon_software, min_length=1)
    items: tuple[Item, ...] = Field(..., min_length=1)
    laboratory: Laboratory
    responsible_persons: tuple[ResponsiblePerson, ...] = Field(..., min_length=1)
    customer: Contact
    statements: tuple[Statement, ...] = ()
    measurement_results: tuple[MeasurementResult, ...] = Field(..., min_length=1)
    not_extracted: tuple[str, ...] = Field(
        (),
        description="Parts of the document the model does not hold (set by parse; build ignores "
        "it), e.g. 'measurementResult[1]/result[2]/quantity[1]: si:complex'.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Dcc:
        if self.end_performance_date < self.begin_performance_date:
            raise ValueError("end_performance_date is before begin_performance_date")
        missing = [lang for lang in self.mandatory_languages if lang not in self.used_languages]
        if missing:
            raise ValueError(f"mandatory languages {missing} are not among the used languages")
        return self

    @property
    def item(self) -> Item:
        """The (first) calibrated item."""
        return self.items[0]

    @property
    def recalibration_date(self) -> dt.date | None:
        """The date of the first statement with refType ``basic_recalibration``."""
        for statement in self.statements:
            if RECALIBRATION_REF_TYPE in statement.ref_types and statement.date is not None:
                return statement.date
        return None

    def points(self) -> tuple[Point, ...]:
        """Every measured value as a point with its conditions (see :func:`points`)."""
        from metrology.dcc.points import points

        return points(self)

    def texts(self) -> Iterator[tuple[str, Text]]:
        """Every text of the certificate with its path (to check languages)."""
        for path, node in _walk(self, ""):
            if isinstance(node, Text):
                yield path, node

    def values(self) -> Iterator[tuple[str, Value]]:
        """Every value of the certificate (results, conditions, statements, hybrid forms) with
        its path in the model."""
        for path, node in _walk(self, ""):
            if isinstance(node, Value):
                yield path, node


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Text | Value):
        yield path, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _walk(getattr(node, name), f"{path}.{name}" if path else name)
    elif isinstance(node, tuple):
        for index, child in enumerate(node):
            yield from _walk(child, f"{path}[{index}]")


for _model in (InfluenceCondition, Quantity, QuantityList, MeasurementResult, Statement):
    _model.model_rebuild()
