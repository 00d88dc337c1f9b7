"""Every measured value of a DCC as a point with the conditions it was measured at.

The rule, for each table (the quantities of a ``dcc:result``, of a ``dcc:list``, or of one row
of a list of lists):

- a column is a *result* when one of its values carries an uncertainty; when no column does,
  every column is a result;
- each value of a result column is a :class:`Point`; the values of the same row in the other
  (non-result) columns are its ``column`` conditions — the reference value, the indication, the
  nominal current it was measured at;
- the influence conditions of the enclosing measurement result, list and quantity are its
  ``influence`` conditions (ambient temperature, immersion depth);
- a column of one value applies to every row; a column whose length is neither 1 nor the
  table's gives points without column conditions.
"""

from __future__ import annotations

from metrology.dcc.model import (
    Condition,
    Dcc,
    InfluenceCondition,
    Point,
    Quantity,
    QuantityList,
    Text,
    Value,
)


def _has_uncertainty(value: Value) -> bool:
    return value.uncertainty is not None or value.coverage_interval is not None


def influence(conditions: tuple[InfluenceCondition, ...]) -> tuple[Condition, ...]:
    """The values of influence conditions as point conditions."""
    found: list[Condition] = []
    for condition in conditions:
        for quantity in condition.quantities:
            for value in quantity.values:
                found.append(
                    Condition(
                        source="influence",
                        name=quantity.name or condition.name,
                        ref_types=(*condition.ref_types, *quantity.ref_types),
                        value=value,
                    )
                )
    return tuple(found)


def _table(
    columns: tuple[Quantity, ...],
    path: str,
    names: tuple[Text, Text],
    around: tuple[Condition, ...],
    row_index: int | None,
) -> list[Point]:
    rows = max(len(column.values) for column in columns)
    results = [any(_has_uncertainty(v) for v in column.values) for column in columns]
    if not any(results):
        results = [True] * len(columns)
    found: list[Point] = []
    for index, column in enumerate(columns):
        if not results[index]:
            continue
        own = around + influence(column.influence_conditions)
        aligned = len(column.values) in (1, rows)
        for row, value in enumerate(column.values):
            conditions: list[Condition] = []
            if aligned:
                for other_index, other in enumerate(columns):
                    if results[other_index] or len(other.values) not in (1, rows):
                        continue
                    cell = other.values[0] if len(other.values) == 1 else other.values[row]
                    conditions.append(
                        Condition(
                            source="column", name=other.name, ref_types=other.ref_types, value=cell
                        )
                    )
            many = len(column.values) > 1
            found.append(
                Point(
                    path=f"{path}/quantity[{index + 1}]" + (f"/value[{row + 1}]" if many else ""),
                    measurement_result=names[0],
                    result=names[1],
                    quantity=column.name,
                    ref_types=column.ref_types,
                    row=row if many else row_index,
                    value=value,
                    conditions=(*conditions, *own),
                )
            )
    return found


def _list(
    table: QuantityList,
    path: str,
    names: tuple[Text, Text],
    around: tuple[Condition, ...],
    row_index: int | None,
) -> list[Point]:
    inside = around + influence(table.influence_conditions)
    if table.quantities:
        return _table(table.quantities, path, names, inside, row_index)
    found: list[Point] = []
    for index, row in enumerate(table.lists):
        found += _list(row, f"{path}/list[{index + 1}]", names, inside, index)
    return found


def points(dcc: Dcc) -> tuple[Point, ...]:
    """Every measured value of ``dcc`` with its conditions, in document order."""
    found: list[Point] = []
    for m, measurement in enumerate(dcc.measurement_results, start=1):
        around = influence(measurement.influence_conditions)
        for r, result in enumerate(measurement.results, start=1):
            path = f"measurementResult[{m}]/result[{r}]"
            names = (measurement.name, result.name)
            if result.quantities:
                found += _table(result.quantities, path, names, around, None)
            for index, table in enumerate(result.lists, start=1):
                found += _list(table, f"{path}/list[{index}]", names, around, None)
    return tuple(found)
