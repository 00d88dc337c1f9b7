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

The models are one tree mirroring the schema, by part: :mod:`.fields` (the field types and the
base model), :mod:`.text`, :mod:`.administrative`, :mod:`.quantities` and :mod:`.certificate`;
this package exports them all.
"""

from __future__ import annotations

from metrology.dcc.model.administrative import (
    Contact,
    ContactSource,
    Identification,
    Item,
    Laboratory,
    Location,
    ResponsiblePerson,
    Software,
)
from metrology.dcc.model.certificate import (
    ISSUE_DATE_REF_TYPE,
    RECALIBRATION_REF_TYPE,
    Condition,
    Dcc,
    Point,
)
from metrology.dcc.model.fields import (
    COVERAGE_FACTOR,
    DECIMAL,
    PROBABILITY,
    SCHEMA_VERSION,
    UNCERTAINTY,
    XML_TEXT,
    ConditionStatus,
    Conformity,
    Country,
    CoverageFactorText,
    DecimalText,
    FrozenModel,
    IdentificationIssuer,
    Lang,
    PerformanceLocation,
    ProbabilityText,
    RefTypes,
    SoftwareType,
    Str,
    UncertaintyText,
)
from metrology.dcc.model.quantities import (
    CertificateReference,
    CoverageInterval,
    Described,
    ExpandedUncertainty,
    InfluenceCondition,
    MeasurementResult,
    MeasuringEquipment,
    Named,
    Quantity,
    QuantityList,
    Result,
    Statement,
    UsedMethod,
    Value,
)
from metrology.dcc.model.text import LocalizedText, Text

__all__ = [
    "COVERAGE_FACTOR",
    "DECIMAL",
    "ISSUE_DATE_REF_TYPE",
    "PROBABILITY",
    "RECALIBRATION_REF_TYPE",
    "SCHEMA_VERSION",
    "UNCERTAINTY",
    "XML_TEXT",
    "CertificateReference",
    "Condition",
    "ConditionStatus",
    "Conformity",
    "Contact",
    "ContactSource",
    "Country",
    "CoverageFactorText",
    "CoverageInterval",
    "Dcc",
    "DecimalText",
    "Described",
    "ExpandedUncertainty",
    "FrozenModel",
    "Identification",
    "IdentificationIssuer",
    "InfluenceCondition",
    "Item",
    "Laboratory",
    "Lang",
    "LocalizedText",
    "Location",
    "MeasurementResult",
    "MeasuringEquipment",
    "Named",
    "PerformanceLocation",
    "Point",
    "ProbabilityText",
    "Quantity",
    "QuantityList",
    "RefTypes",
    "ResponsiblePerson",
    "Result",
    "Software",
    "SoftwareType",
    "Statement",
    "Str",
    "Text",
    "UncertaintyText",
    "UsedMethod",
    "Value",
]
