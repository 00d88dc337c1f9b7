"""Accuracy specifications: the notations a procedure YAML holds, the MPE, hostile strings."""

from __future__ import annotations

import math

import pytest
import yaml
from pydantic import ValidationError

from metrology.conformity import Tolerance
from metrology.specification import Specification, parse_specification


@pytest.mark.parametrize(
    ("text", "options", "terms"),
    [
        (
            "±(0.0035 % of reading + 0.0005 % of range)",
            {"range": 10.0},
            {"of_reading": 3.5e-5, "of_range": 5e-6},
        ),
        ("0.0035% rdg + 0.0005% rng", {"range": 10.0}, {"of_reading": 3.5e-5, "of_range": 5e-6}),
        (
            "+/- (0.5 % of reading + 2 digits)",
            {"resolution": 0.01},
            {"of_reading": 5e-3, "counts": 2},
        ),
        (
            "± (10 ppm of reading + 2 ppm of range + 5 µV)",
            {"range": 10.0, "unit": "V"},
            {"of_reading": 1e-5, "of_range": 2e-6, "floor": 5e-6},
        ),
        ("±0.1 °C", {"unit": "°C"}, {"floor": 0.1}),
        ("2 %RH", {"unit": "%RH"}, {"floor": 2.0}),
        (
            "±(0.05 % of full scale + 3 counts)",
            {"range": 100.0, "resolution": 0.1},
            {"of_range": 5e-4, "counts": 3},
        ),
        ("0.01 % FS + 0.002", {"range": 1.0}, {"of_range": 1e-4, "floor": 0.002}),
        ("±(2.5 mΩ + 0.001 % rdg)", {"unit": "Ω"}, {"floor": 2.5e-3, "of_reading": 1e-5}),
        ("± 1e-3 % of reading", {}, {"of_reading": 1e-5}),
        ("±(5 µm)", {"unit": "mm"}, {"floor": 5e-3}),
        ("± 3 mK", {"unit": "K"}, {"floor": 3e-3}),
        ("±(1 hPa)", {"unit": "Pa"}, {"floor": 100.0}),
        ("±(0.2 %of reading+1 dgt)", {"resolution": 1.0}, {"of_reading": 2e-3, "counts": 1}),
    ],
)
def test_common_notations_parse_to_their_terms(
    text: str, options: dict[str, object], terms: dict[str, float]
) -> None:
    specification = parse_specification(text, **options)  # type: ignore[arg-type]
    for key in ("of_reading", "of_range", "counts", "floor"):
        assert getattr(specification, key) == pytest.approx(terms.get(key, 0.0), rel=1e-12)
    assert specification.text == text


def test_mpe_at_a_point() -> None:
    # a 6½-digit DMM on its 10 V range at 7 V: 35 ppm × 7 V + 5 ppm × 10 V = 295 µV
    dmm = parse_specification("±(0.0035 % of reading + 0.0005 % of range)", range=10.0, unit="V")
    assert dmm.mpe(7.0) == pytest.approx(295e-6, rel=1e-12)
    assert dmm.mpe(-7.0) == dmm.mpe(7.0)
    assert dmm.tolerance(7.0) == Tolerance(lower=-dmm.mpe(7.0), upper=dmm.mpe(7.0))
    handheld = parse_specification("±(0.5 % rdg + 2 digits)", resolution=0.1, unit="V")
    assert handheld.mpe(100.0) == pytest.approx(0.7, rel=1e-12)
    relative = parse_specification("0.01 % of reading")
    assert relative.tolerance(0.0) == Tolerance(lower=0.0, upper=0.0)
    calibrator = Specification(of_reading=12e-6, floor=2e-6, unit="V")
    assert calibrator.mpe(10.0) == pytest.approx(122e-6, rel=1e-12)
    assert calibrator.describe() == "±(0.0012 % of reading + 2e-06 V)"
    assert dmm.describe() == "±(0.0035 % of reading + 0.0005 % of range)"


def test_procedure_yaml_fields_become_a_specification_and_round_trip() -> None:
    document = yaml.safe_load(
        """
        text: "±(0.0035 % of reading + 0.0005 % of range)"
        range: 10
        unit: V
        """
    )
    specification = Specification.model_validate(document)
    assert specification.of_reading == pytest.approx(3.5e-5)
    again = Specification.model_validate_json(specification.model_dump_json())
    assert again == specification
    structured = Specification.model_validate({"of_reading": 3.5e-5, "of_range": 5e-6, "range": 10})
    assert structured.mpe(7.0) == pytest.approx(specification.mpe(7.0), rel=1e-12)


@pytest.mark.parametrize(
    ("text", "options", "reason"),
    [
        ("", {}, "empty"),
        ("   ", {}, "empty"),
        ("±(0.01 %)", {}, "relative to"),
        ("0.01 % + 0.02 %", {"range": 1.0}, "relative to"),
        ("0.01 % of something", {}, "relative to"),
        ("±(0.5 % rdg + 2 digits)", {}, "resolution"),
        ("0.01 % of range", {}, "range"),
        ("±(-0.01 % of reading)", {}, "negative"),
        ("±(0.01 % of reading − 2 µV)", {"unit": "V"}, "negative"),
        ("±(0.01 % of reading + 5 µV)", {}, "give the specification's unit"),
        ("±(0.01 % of reading + 5 mA)", {"unit": "V"}, "not in V"),
        ("±(0.01 % of reading", {}, "not closed"),
        ("±((0.01 % of reading))", {}, "nested"),
        ("0.01 % of reading)", {}, "parentheses"),
        ("±(0.01 % of reading +)", {}, "no term after"),
        ("0.01 % of reading + 0.02 % rdg", {}, "two terms of the same kind"),
        ("1e999 % of reading", {}, "finite"),
        ("0 % of reading", {}, "at least one non-zero term"),
        ("± ± 1", {}, "only one ±"),
        ("± 1 ± 2", {}, "only one ±"),
        ("abc", {}, "cannot read"),
        ("0.01 % of reading\n+ 1 digit", {"resolution": 1.0}, "control character"),
        ("0.01 % of reading" + " + 1" * 60, {}, "at most 200|longer than"),
        ("1 🙂", {"unit": "V"}, "not in V"),
        ("± 3 m°C", {"unit": "°C"}, "takes no prefix"),
        ("nan % of reading", {}, "cannot read"),
        ("5 µV is what the data sheet says", {"unit": "V"}, "cannot read"),
    ],
)
def test_hostile_or_ambiguous_notation_is_refused_with_a_reason(
    text: str, options: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        parse_specification(text, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"of_reading": -1e-5}, "greater than or equal to 0"),
        ({"of_reading": math.inf}, "finite"),
        ({"of_reading": math.nan}, "greater than or equal to 0"),
        ({"floor": 1.0, "range": 0.0}, "greater than 0"),
        ({"floor": 1.0, "unit": "V\x00"}, "control character"),
        ({"text": "0.01 % of reading", "of_reading": 0.5}, "disagrees"),
        ({"text": 12}, "string"),
        ({"floor": 1.0, "tolerance": 3}, "Extra inputs"),
    ],
)
def test_bad_fields_are_refused(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Specification.model_validate(fields)
