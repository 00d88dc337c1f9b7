"""A working instrument's calibration tables, read from its DCC.

A calibration table is what a certificate says of one range of one quantity: at each point the
**indication** (``basic_measuredValue``) and how wrong it was — its **error**
(``basic_measurementError``, indication − reference), a **correction** (``basic_correction``,
reference − indication), or the **reference value** itself (``basic_referenceValue`` carrying
the uncertainty) — with the expanded uncertainty U and its coverage factor k. Every table of
the document (each ``dcc:list`` or result whose points have an indication) becomes one
:class:`CalibrationTable`; numbers stay the document's exact decimal text, scaled exactly to
the indication's unit when the error is given in a multiple of it (mK errors of °C
indications, µV errors of V indications).

Points without an indication, and results of other kinds (a reference standard's certified
value), are not tables: a certificate without any is refused when it is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from metrology import units
from metrology.correction import CalibrationPoint
from metrology.errors import DccError

if TYPE_CHECKING:
    from metrology.dcc import Dcc, Point

TableKind = Literal["error", "correction", "reference"]

ERROR_REF_TYPE = "basic_measurementError"
CORRECTION_REF_TYPE = "basic_correction"
REFERENCE_REF_TYPE = "basic_referenceValue"
INDICATION_REF_TYPE = "basic_measuredValue"

_KIND_OF = (
    (ERROR_REF_TYPE, "error"),
    (CORRECTION_REF_TYPE, "correction"),
    (REFERENCE_REF_TYPE, "reference"),
)


class TableError(ValueError):
    """A table the certificate cannot give (no indication, no uncertainty, units that do not
    convert); ``reason`` says which and where."""


class TablePoint(BaseModel):
    """One row: the indication, the error/correction/reference value, U and k (exact text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indication: str
    value: str
    expanded_uncertainty: str
    coverage_factor: str

    def calibration_point(self, kind: TableKind) -> CalibrationPoint:
        """The row as :mod:`metrology.correction` takes it."""
        number = float(self.value)
        return CalibrationPoint(
            indication=float(self.indication),
            correction=number if kind == "correction" else None,
            error=number if kind == "error" else None,
            reference=number if kind == "reference" else None,
            expanded_uncertainty=float(self.expanded_uncertainty),
            coverage_factor=float(self.coverage_factor),
        )


class CalibrationTable(BaseModel):
    """One calibration table of a certificate (see the module doc)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    name: str
    name_vi: str
    path: str
    kind: TableKind
    unit: str
    """The indication's unit (registry symbol); every number of the table is in it."""
    points: tuple[TablePoint, ...] = Field(min_length=2)

    @property
    def low(self) -> float:
        """The lowest indication."""
        return min(float(p.indication) for p in self.points)

    @property
    def high(self) -> float:
        """The highest indication."""
        return max(float(p.indication) for p in self.points)

    def calibration_points(self) -> tuple[CalibrationPoint, ...]:
        """The rows as :mod:`metrology.correction` takes them."""
        return tuple(p.calibration_point(self.kind) for p in self.points)


def _kind(point: Point) -> TableKind | None:
    for ref_type, kind in _KIND_OF:
        if ref_type in point.ref_types:
            return kind  # type: ignore[return-value]
    return None


def _factor(value_unit: str, indication_unit: str, kind: TableKind) -> Decimal:
    """The exact factor that puts a value of ``value_unit`` into ``indication_unit``."""
    if units.same_unit(value_unit, indication_unit):
        return Decimal(1)
    try:
        return units.scale_factor(value_unit, indication_unit)
    except DccError:
        if kind == "reference":
            raise
    # An error or correction is a difference: a kelvin of difference is a degree Celsius.
    if indication_unit == "\\degreecelsius" and "\\kelvin" in value_unit:
        return units.scale_factor(value_unit, "\\kelvin")
    if value_unit == "\\degreecelsius" and "\\kelvin" in indication_unit:
        return units.scale_factor("\\kelvin", indication_unit)
    raise DccError(f"{value_unit} is not {indication_unit} or a multiple of it")


def _scaled(text: str, factor: Decimal) -> str:
    if factor == 1:
        return text
    return format(Decimal(text) * factor, "f").rstrip("0").rstrip(".") or "0"


def _table_path(point: Point) -> str:
    return point.path.split("/quantity[", 1)[0]


def tables_from_points(points: Sequence[Point]) -> list[CalibrationTable]:
    """The calibration tables among ``points`` (see the module doc); raises TableError for a
    table that has indications but cannot be used as it is."""
    groups: dict[tuple[str, TableKind], list[Point]] = {}
    for point in points:
        kind = _kind(point)
        if kind is None or point.condition(INDICATION_REF_TYPE) is None:
            continue
        groups.setdefault((_table_path(point), kind), []).append(point)
    tables: list[CalibrationTable] = []
    for (path, kind), members in groups.items():
        rows: list[TablePoint] = []
        unit: str | None = None
        for point in members:
            indication = point.condition(INDICATION_REF_TYPE)
            assert indication is not None
            uncertainty = point.value.uncertainty
            if uncertainty is None:
                raise TableError(
                    f"{point.path}: a calibration point without an expanded uncertainty"
                )
            if unit is None:
                unit = indication.unit
            elif not units.same_unit(unit, indication.unit):
                raise TableError(
                    f"{point.path}: indications in {indication.unit} and {unit} in one table"
                )
            try:
                factor = _factor(point.value.unit, indication.unit, kind)
            except DccError as exc:
                raise TableError(
                    f"{point.path}: the {kind} in {point.value.unit} cannot be put in the "
                    f"indication's unit {indication.unit}: {exc}"
                ) from None
            rows.append(
                TablePoint(
                    indication=indication.value,
                    value=_scaled(point.value.value, factor),
                    expanded_uncertainty=_scaled(uncertainty.value, factor),
                    coverage_factor=uncertainty.coverage_factor,
                )
            )
        if len(rows) < 2:
            raise TableError(f"{path}: a calibration table needs at least two points")
        assert unit is not None
        try:
            symbol = units.dsi_to_symbol(unit)
        except DccError as exc:
            raise TableError(f"{path}: {exc}") from None
        first = members[0]
        name_parts = [t for t in (first.measurement_result, first.result) if t is not None]
        tables.append(
            CalibrationTable(
                index=len(tables),
                name=" / ".join(t.get("en") for t in name_parts) or path,
                name_vi=" / ".join(t.get("vi") for t in name_parts) or path,
                path=path,
                kind=kind,
                unit=symbol,
                points=tuple(rows),
            )
        )
    return tables


def tables_from_dcc(document: Dcc) -> list[CalibrationTable]:
    """Every calibration table of a DCC (see the module doc)."""
    return tables_from_points(document.points())
