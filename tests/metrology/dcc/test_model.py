"""The model refuses what a DCC cannot hold, before anything is written."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from metrology import dcc
from metrology.dcc.messages import LANGUAGES, MESSAGES
from tests.metrology.dcc import samples


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("10.000012", "10.000012"),
        (" 1.0180 ", "1.0180"),
        (Decimal("1.0180"), "1.0180"),
        (Decimal("1E-7"), "1E-7"),
        (7, "7"),
        (1e-07, "1e-07"),
        (0.1, "0.1"),
    ],
)
def test_numbers_are_kept_as_exact_text(given: object, kept: str) -> None:
    assert dcc.Value(value=given, unit="\\volt").value == kept  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", ["ten", "1,5", "", "0x10", float("nan"), float("inf"), Decimal("NaN"), True, "1e"]
)
def test_a_value_that_is_not_a_d_si_decimal_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError):
        dcc.Value(value=bad, unit="\\volt")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("value", "-0.1"),  # an uncertainty is not negative
        ("coverage_factor", "0.5"),  # k ≥ 1
        ("coverage_factor", "2E0"),  # no exponent in k
        ("coverage_probability", "1.5"),  # p ≤ 1
        ("coverage_probability", "95"),
    ],
)
def test_uncertainty_fields_follow_d_si(field: str, bad: str) -> None:
    good = {"value": "0.1", "coverage_factor": "2", "coverage_probability": "0.95"}
    with pytest.raises(ValidationError):
        dcc.ExpandedUncertainty(**{**good, field: bad})


def test_value_of_needs_u_k_and_p_together() -> None:
    with pytest.raises(ValueError, match="needs its value, k and probability"):
        dcc.Value.of("1", "V", uncertainty="0.1")
    with pytest.raises(dcc.UnsupportedUnit):
        dcc.Value.of("1", "furlong")
    value = dcc.Value.of("1", "µV/V", uncertainty="0.1", k="2", probability="0.95")
    assert value.unit == "\\micro\\volt\\per\\volt"
    assert value.symbol() == "µV/V"
    assert value.uncertainty is not None and value.uncertainty.standard == Decimal("0.05")


def test_texts() -> None:
    text = dcc.Text.of(en="Zener reference", vi="Chuẩn Zener")
    assert (text.get("vi"), text.get("en"), text.get("de"), str(text)) == (
        "Chuẩn Zener",
        "Zener reference",
        "Zener reference",
        "Zener reference",
    )
    assert dcc.Text.of("PTB").get("vi") == "PTB"
    assert text.languages == ("en", "vi")
    with pytest.raises(ValidationError):
        dcc.Text(content=())
    with pytest.raises(ValidationError):
        dcc.Text.of(en="bell \x07")  # XML cannot carry it
    with pytest.raises(ValidationError):
        dcc.Text.of(EN="upper case language")


def test_structure_rules() -> None:
    with pytest.raises(ValidationError, match="at least one part"):
        dcc.Location()
    with pytest.raises(ValidationError, match=r"either quantities .* or lists"):
        dcc.QuantityList()
    with pytest.raises(ValidationError, match="needs a quantity, a list or a text"):
        dcc.Result(name=dcc.Text.of("x"))
    with pytest.raises(ValidationError, match="as many values as the quantity"):
        dcc.Quantity(
            values=(dcc.Value.of("1", "K"), dcc.Value.of("2", "K")),
            hybrid=((dcc.Value.of("1", "°C"),),),
        )
    with pytest.raises(ValidationError, match="not both"):
        dcc.Value(
            value="1",
            unit="\\volt",
            uncertainty=dcc.ExpandedUncertainty(
                value="1", coverage_factor="2", coverage_probability="0.95"
            ),
            coverage_interval=dcc.CoverageInterval(
                standard_uncertainty="1", minimum="0", maximum="2", coverage_probability="0.95"
            ),
        )
    certificate = samples.single()
    with pytest.raises(ValidationError, match="before begin_performance_date"):
        dcc.Dcc.model_validate(
            {**certificate.model_dump(), "end_performance_date": dt.date(2020, 1, 1)}
        )
    with pytest.raises(ValidationError, match="not among the used languages"):
        dcc.Dcc.model_validate({**certificate.model_dump(), "used_languages": ("en",)})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        dcc.Dcc.model_validate({**certificate.model_dump(), "colour": "red"})


def test_models_are_frozen() -> None:
    certificate = samples.single()
    with pytest.raises(ValidationError):
        certificate.unique_identifier = "other"  # type: ignore[misc]


def test_serial_number() -> None:
    item = samples.zener().item
    assert item.serial_number == "Z-98765"
    bare = item.model_copy(
        update={"identifications": (dcc.Identification(issuer="manufacturer", value="X1"),)}
    )
    assert bare.serial_number == "X1"
    none = item.model_copy(
        update={"identifications": (dcc.Identification(issuer="customer", value="A1"),)}
    )
    assert none.serial_number is None


def test_every_message_has_english_and_vietnamese() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        assert all(texts.values()), key


def test_errors_carry_a_code_with_a_message() -> None:
    error = dcc.UnsupportedUnit("\\furlong", "not known")
    assert error.message("vi") == "đơn vị không xác định '\\\\furlong': not known"
    assert str(error) == "unit '\\\\furlong': not known"
    invalid = dcc.DccInvalid("bad", line=3, path="/a")
    assert str(invalid) == "line 3, at /a: bad"
    assert invalid.message("en") == "not a valid DCC 3.1.2 document: line 3, at /a: bad"
