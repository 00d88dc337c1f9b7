"""The field types of the DCC model: the D-SI lexical forms of numbers (kept as their decimal
text), XML-safe strings, languages, countries, refTypes and the schema's enumerations, and the
frozen base model (:mod:`metrology.dcc.model`).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

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


NumberText = Annotated[str, BeforeValidator(_number_text)]
"""A number kept as its exact decimal text (see :func:`_number_text`); the aliases below add
each D-SI lexical form's pattern."""
DecimalText = Annotated[
    NumberText,
    Field(pattern=DECIMAL, description="A D-SI decimal, exactly as written: '10.000012', '8E-7'."),
]
UncertaintyText = Annotated[
    NumberText, Field(pattern=UNCERTAINTY, description="A non-negative D-SI decimal.")
]
CoverageFactorText = Annotated[
    NumberText, Field(pattern=COVERAGE_FACTOR, description="k ≥ 1 without exponent: '2', '1.96'.")
]
ProbabilityText = Annotated[
    NumberText, Field(pattern=PROBABILITY, description="p in [0, 1] without exponent: '0.95'.")
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
