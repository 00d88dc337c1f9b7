"""Values and quantities of the DCC model: a D-SI value with its uncertainty, quantities and
their lists, influence conditions, results, methods, equipment, measurement results and
statements.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import Field, model_validator

from metrology import units
from metrology.dcc.model.administrative import Identification
from metrology.dcc.model.fields import (
    ConditionStatus,
    Conformity,
    Country,
    CoverageFactorText,
    DecimalText,
    FrozenModel,
    ProbabilityText,
    RefTypes,
    Str,
    UncertaintyText,
)
from metrology.dcc.model.text import Text


class ExpandedUncertainty(FrozenModel):
    """``si:expandedUnc``: U, its coverage factor k and coverage probability p."""

    value: UncertaintyText
    coverage_factor: CoverageFactorText
    coverage_probability: ProbabilityText
    distribution: Str | None = None

    @property
    def standard(self) -> Decimal:
        """u = U / k."""
        return Decimal(self.value) / Decimal(self.coverage_factor)


class CoverageInterval(FrozenModel):
    """``si:coverageInterval``: a standard uncertainty with an (asymmetric) interval."""

    standard_uncertainty: UncertaintyText
    minimum: DecimalText
    maximum: DecimalText
    coverage_probability: ProbabilityText
    distribution: Str | None = None


class Value(FrozenModel):
    r"""One number: its exact decimal text, its D-SI unit string (``\volt``), and where given
    its label, time and uncertainty."""

    value: DecimalText
    unit: Str = Field(..., description=r"The D-SI unit as written, e.g. '\milli\volt'.")
    label: Str | None = None
    date_time: dt.datetime | None = None
    uncertainty: ExpandedUncertainty | None = None
    coverage_interval: CoverageInterval | None = None

    @model_validator(mode="after")
    def _one_uncertainty(self) -> Value:
        if self.uncertainty is not None and self.coverage_interval is not None:
            raise ValueError("a value has an expanded uncertainty or a coverage interval, not both")
        return self

    @classmethod
    def of(
        cls,
        value: str | Decimal | int | float,
        symbol: str,
        *,
        uncertainty: str | Decimal | int | float | None = None,
        k: str | Decimal | int | float | None = None,
        probability: str | Decimal | float | None = None,
        distribution: str | None = None,
        label: str | None = None,
    ) -> Value:
        """A value from a unit symbol (``"V"``, ``"µV/V"``): ``Value.of("10.000012", "V",
        uncertainty="8E-7", k="2", probability="0.95")``. U, k and p go together."""
        expanded = None
        given = [x is not None for x in (uncertainty, k, probability)]
        if any(given) and not all(given):
            raise ValueError("an expanded uncertainty needs its value, k and probability")
        if uncertainty is not None:
            expanded = ExpandedUncertainty(
                value=uncertainty,
                coverage_factor=k,
                coverage_probability=probability,
                distribution=distribution,
            )
        return cls(
            value=value,
            unit=units.symbol_to_dsi(symbol),
            label=label,
            uncertainty=expanded,
        )

    def symbol(self) -> str:
        """The unit as a symbol (``mV``); raises UnsupportedUnit for a unit not known."""
        return units.dsi_to_symbol(self.unit)

    def decimal(self) -> Decimal:
        """The value as an exact Decimal."""
        return Decimal(self.value)


class Described(FrozenModel):
    """What most DCC elements open with: a name, a description, ``refType`` attributes."""

    name: Text | None = None
    description: Text | None = None
    ref_types: RefTypes = ()


class Named(Described):
    """A DCC element whose name the schema requires."""

    name: Text


class InfluenceCondition(Named):
    """A condition the results hold under (``dcc:influenceCondition``): ambient temperature,
    a measuring current, an immersion depth."""

    status: ConditionStatus | None = None
    quantities: tuple[Quantity, ...] = ()
    texts: tuple[Text, ...] = ()

    @model_validator(mode="after")
    def _has_data(self) -> InfluenceCondition:
        if not self.quantities and not self.texts:
            raise ValueError("an influence condition needs a quantity or a text")
        return self


class Quantity(Described):
    """A measured quantity (``dcc:quantity``): one value (``si:real``) or a column of values
    (``si:realListXMLList``, ``si:list``), and the same values in other units
    (``si:hybrid``)."""

    values: tuple[Value, ...] = Field(..., min_length=1)
    hybrid: tuple[tuple[Value, ...], ...] = Field(
        (), description="The same values in other units (si:hybrid), each as long as values."
    )
    influence_conditions: tuple[InfluenceCondition, ...] = ()
    metadata: tuple[Statement, ...] = Field(
        (), description="dcc:measurementMetaData: conformity statements and the like."
    )

    @model_validator(mode="after")
    def _hybrid_lengths(self) -> Quantity:
        for representation in self.hybrid:
            if len(representation) != len(self.values):
                raise ValueError(
                    "each hybrid representation must have as many values as the quantity "
                    f"({len(representation)} instead of {len(self.values)})"
                )
        return self

    def in_unit(self, unit: str) -> tuple[Value, ...] | None:
        r"""The values in a D-SI unit (``\degreecelsius``), among the quantity's
        representations; None when none is in that unit."""
        for representation in (self.values, *self.hybrid):
            if all(value.unit == unit for value in representation):
                return representation
        return None


class QuantityList(Described):
    """A ``dcc:list``: a table whose columns are quantities, or a list of lists (rows)."""

    quantities: tuple[Quantity, ...] = ()
    lists: tuple[QuantityList, ...] = ()
    influence_conditions: tuple[InfluenceCondition, ...] = ()

    @model_validator(mode="after")
    def _quantities_or_lists(self) -> QuantityList:
        if bool(self.quantities) == bool(self.lists):
            raise ValueError("a list holds either quantities (columns) or lists (rows)")
        return self


class Result(Named):
    """One result of a measurement (``dcc:result``)."""

    quantities: tuple[Quantity, ...] = ()
    lists: tuple[QuantityList, ...] = ()
    texts: tuple[Text, ...] = ()

    @model_validator(mode="after")
    def _has_data(self) -> Result:
        if not (self.quantities or self.lists or self.texts):
            raise ValueError("a result needs a quantity, a list or a text")
        return self


class UsedMethod(Named):
    """A method used (``dcc:usedMethod``), e.g. the GUM for the uncertainty."""

    norms: tuple[Str, ...] = ()
    references: tuple[Str, ...] = ()


class CertificateReference(FrozenModel):
    """A certificate referred to by hash (``dcc:hashType``): the traceability of a piece of
    equipment."""

    referral: Text
    referral_id: Str
    procedure: Str
    value: Str


class MeasuringEquipment(Named):
    """Equipment used for the calibration (``dcc:measuringEquipment``): the reference
    standards the results are traceable to."""

    certificate: CertificateReference | None = None
    manufacturer: Text | None = None
    model: Str | None = None
    identifications: tuple[Identification, ...] = ()


class MeasurementResult(Named):
    """A ``dcc:measurementResult``: methods, equipment, conditions and results."""

    used_methods: tuple[UsedMethod, ...] = ()
    measuring_equipments: tuple[MeasuringEquipment, ...] = ()
    influence_conditions: tuple[InfluenceCondition, ...] = ()
    results: tuple[Result, ...] = Field(..., min_length=1)
    metadata: tuple[Statement, ...] = ()


class Statement(FrozenModel):
    """A statement (``dcc:statement``, ``dcc:metaData``): a declaration, a norm, a conformity
    verdict, a recalibration date, a validity range."""

    ref_types: RefTypes = ()
    countries: tuple[Country, ...] = ()
    convention: Str | None = None
    traceable: bool | None = None
    norms: tuple[Str, ...] = ()
    references: tuple[Str, ...] = ()
    declaration: Text | None = None
    valid: bool | None = None
    date: dt.date | None = None
    period: Str | None = Field(None, description="An xs:duration, e.g. 'P2Y'.")
    conformity: tuple[Conformity, ...] = Field(
        (), description="One verdict, or one per value of a column (dcc:conformityXMLList)."
    )
    quantities: tuple[Quantity, ...] = ()
    texts: tuple[Text, ...] = ()
