r"""A Digital Calibration Certificate (PTB DCC 3.1.2) as typed, frozen data.

The model holds what a registry, a calibration bench and a correction engine need from a DCC —
administrative data, the item, the laboratory, statements, and every measured value with its
unit, expanded uncertainty, coverage factor and probability — and nothing is re-rounded:
numbers are the decimal strings written in the document (``"10.000012"``, ``"8E-7"``).
:func:`metrology.dcc.parse` reads a document into it, :func:`metrology.dcc.build` writes it.

Tables: a result may be a ``dcc:list`` of quantities, each a column of values (the D-SI
``si:realListXMLList`` form PTB's examples use), or a list of lists (one per row). The
:meth:`Dcc.points` view flattens every value into a :class:`Point` with the other values of its
row and the influence conditions around it as its :class:`Condition`\ s — an instrument's
calibration table (indication → error with U) and a resistor measured at several currents both
come out as one point per row with what it was measured at.

Longer than 500 lines on purpose: the models are one tree mirroring the schema, with references
back and forth between its types.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from metrology import units
from metrology._common import from_attributes

SCHEMA_VERSION = "3.1.2"

XML_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*$"
"""Characters XML 1.0 can carry (no NUL or other C0 controls but tab, CR, LF)."""
DECIMAL = r"^[-+]?((\d*\.\d+)|(\d+\.\d*)|(\d+\.?))([Ee][-+]?\d+)?$"
UNCERTAINTY = r"^\+?((\d*\.\d+)|(\d+\.\d*)|(\d+\.?))([Ee][-+]?\d+)?$"
COVERAGE_FACTOR = r"^\+?(([1-9]\d*\.\d*)|([1-9]\d*))$"
PROBABILITY = r"^\+?((0(\.\d*)?)|(1(\.0*)?))$"
"""The D-SI 2.1.0 lexical forms (decimalType, uncertaintyValueType, kValueType,
probabilityValueType)."""


class FrozenModel(BaseModel):
    """Immutable, unknown keys refused (the project's convention; the integrator may swap in
    core's base)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _number_text(value: Any) -> Any:
    """A number as its exact decimal text: strings are kept (surrounding blanks dropped, as
    XML's xs:double does), Decimals and ints written out, a float by its shortest repr (the
    exact float, never re-rounded to fewer digits)."""
    if isinstance(value, bool):
        raise ValueError("a truth value is not a number")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite number")
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return repr(value)
    return value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


DecimalText = Annotated[
    str,
    BeforeValidator(_number_text),
    Field(pattern=DECIMAL, description="A D-SI decimal, exactly as written: '10.000012', '8E-7'."),
]
UncertaintyText = Annotated[
    str,
    BeforeValidator(_number_text),
    Field(pattern=UNCERTAINTY, description="A non-negative D-SI decimal."),
]
CoverageFactorText = Annotated[
    str,
    BeforeValidator(_number_text),
    Field(pattern=COVERAGE_FACTOR, description="k ≥ 1 without exponent: '2', '1.96'."),
]
ProbabilityText = Annotated[
    str,
    BeforeValidator(_number_text),
    Field(pattern=PROBABILITY, description="p in [0, 1] without exponent: '0.95'."),
]
Str = Annotated[str, BeforeValidator(_strip), Field(min_length=1, pattern=XML_TEXT)]
"""A non-empty string XML can carry, surrounding blanks dropped."""
Lang = Annotated[str, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1, e.g. 'en', 'vi'.")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1, e.g. 'VN'.")]
RefTypes = tuple[Annotated[str, Field(pattern=r"^\S+$")], ...]
"""``refType`` tokens (``basic_measurementError``), the DCC's machine-readable roles."""
Conformity = Literal["pass", "fail", "conditionalPass", "conditionalFail", "noPass", "noFail"]
IdentificationIssuer = Literal[
    "manufacturer", "calibrationLaboratory", "customer", "owner", "other"
]
PerformanceLocation = Literal[
    "laboratory", "customer", "laboratoryBranch", "customerBranch", "other"
]
SoftwareType = Literal[
    "application", "bios", "driver", "editor", "firmware", "library", "os", "other"
]
ConditionStatus = Literal["beforeAdjustment", "afterAdjustment", "beforeRepair", "afterRepair"]


# -- text --------------------------------------------------------------------------------------


class LocalizedText(FrozenModel):
    """One ``dcc:content``: a text and its language (none for a language-neutral text such as
    a company name)."""

    lang: Lang | None = None
    text: Str


class Text(FrozenModel):
    """A DCC text in one or more languages (``dcc:textType``)."""

    content: tuple[LocalizedText, ...] = Field(..., min_length=1)

    @classmethod
    def of(cls, neutral: str | None = None, /, **by_lang: str) -> Text:
        """``Text.of(en="Zener reference", vi="Chuẩn điện áp Zener")`` or ``Text.of("PTB")``."""
        content = [LocalizedText(text=neutral)] if neutral is not None else []
        content += [LocalizedText(lang=lang, text=text) for lang, text in by_lang.items()]
        return cls(content=tuple(content))

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages present (a language-neutral content has none)."""
        return tuple(c.lang for c in self.content if c.lang)

    def get(self, lang: str = "en") -> str:
        """The text in ``lang``, else the language-neutral one, else the English one, else the
        first."""
        for wanted in (lang, None, "en"):
            for content in self.content:
                if content.lang == wanted:
                    return content.text
        return self.content[0].text

    def __str__(self) -> str:
        return self.get("en")


# -- administrative data -----------------------------------------------------------------------


class Identification(FrozenModel):
    """An identifier of an item, an order, a piece of equipment (``dcc:identification``)."""

    issuer: IdentificationIssuer
    value: Str
    name: Text | None = None


class Location(FrozenModel):
    """An address (``dcc:location``); at least one part is given."""

    street: Str | None = None
    street_no: Str | None = None
    post_office_box: Str | None = None
    post_code: Str | None = None
    city: Str | None = None
    state: Str | None = None
    country_code: Country | None = None
    further: Text | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Location:
        if all(value is None for value in self.__dict__.values()):
            raise ValueError("a location needs at least one part (city, country_code, …)")
        return self

    @classmethod
    def of(cls, party: object) -> Location:
        """The address of a party (a lab's config, a certificate's party): its attributes named
        as this model's fields (``street``, ``city``, ``country_code``, …); those it lacks are
        left out."""
        return cls.model_validate(party, from_attributes=True)


class ContactSource(Protocol):
    """What a contact is built from: a ``name``, and attributes named as the contact's other
    fields (``email``, ``phone``, a laboratory's ``code``) and as :class:`Location`'s."""

    @property
    def name(self) -> str: ...


class Contact(FrozenModel):
    """A customer or a laboratory's contact (``dcc:contactType``: name, e-mail and location
    are required by the schema)."""

    name: Text
    email: Str
    phone: Str | None = None
    fax: Str | None = None
    location: Location

    @classmethod
    def of(cls, party: ContactSource) -> Self:
        """A party's name (language-neutral), its address, and its attributes named as this
        model's other fields (e-mail, phone, a laboratory's code)."""
        return from_attributes(cls, party, name=Text.of(party.name), location=Location.of(party))


class Laboratory(Contact):
    """The calibration laboratory: its contact and its code (an accreditation number,
    ``dcc:calibrationLaboratoryCode``)."""

    code: Str | None = None


class ResponsiblePerson(FrozenModel):
    """A person responsible for the certificate (``dcc:respPerson``)."""

    name: Text
    email: Str | None = None
    role: Str | None = None
    description: Text | None = None
    main_signer: bool | None = None


class Software(FrozenModel):
    """Software that produced the DCC (``dcc:software``)."""

    name: Text
    release: Str
    type: SoftwareType | None = None


def _etalon_software() -> tuple[Software, ...]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("etalon-edge")
    except PackageNotFoundError:  # running from a source tree without an install
        release = "0"
    return (Software(name=Text.of("etalon"), release=release, type="application"),)


class Item(FrozenModel):
    """A calibrated item (``dcc:item``)."""

    name: Text
    description: Text | None = None
    manufacturer: Text
    model: Str | None = None
    identifications: tuple[Identification, ...] = Field(..., min_length=1)

    @property
    def serial_number(self) -> str | None:
        """The manufacturer's identification named as a serial number (any language), else
        the first identification the manufacturer issued."""
        by_manufacturer = [i for i in self.identifications if i.issuer == "manufacturer"]
        for identification in by_manufacturer:
            names = identification.name.content if identification.name else ()
            if any(word in n.text.lower() for n in names for word in ("serial", "seri", "s/n")):
                return identification.value
        return by_manufacturer[0].value if by_manufacturer else None


# -- values and quantities ---------------------------------------------------------------------


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


# -- the certificate ---------------------------------------------------------------------------

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
    software: tuple[Software, ...] = Field(default_factory=_etalon_software, min_length=1)
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
