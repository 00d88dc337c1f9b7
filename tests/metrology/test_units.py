"""D-SI unit strings ↔ the registry's unit symbols: the table both ways, and refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from metrology import units
from metrology.errors import UnsupportedUnit

# (D-SI as a DCC writes it, the symbol the registry writes)
TABLE = [
    # base and derived units
    (r"\volt", "V"),
    (r"\ohm", "Ω"),
    (r"\ampere", "A"),
    (r"\kelvin", "K"),
    (r"\degreecelsius", "°C"),
    (r"\hertz", "Hz"),
    (r"\pascal", "Pa"),
    (r"\second", "s"),
    (r"\metre", "m"),
    (r"\kilogram", "kg"),
    (r"\farad", "F"),
    (r"\henry", "H"),
    (r"\siemens", "S"),
    (r"\watt", "W"),
    (r"\newton\metre", "N·m"),
    # numbers
    (r"\percent", "%"),
    (r"\ppm", "ppm"),
    (r"\one", "1"),
    # prefixes
    (r"\milli\volt", "mV"),
    (r"\micro\volt", "µV"),
    (r"\nano\volt", "nV"),
    (r"\kilo\ohm", "kΩ"),
    (r"\mega\ohm", "MΩ"),
    (r"\giga\hertz", "GHz"),
    (r"\hecto\pascal", "hPa"),
    (r"\milli\gram", "mg"),
    (r"\micro\ampere", "µA"),
    (r"\pico\farad", "pF"),
    (r"\deca\metre", "dam"),
    (r"\milli\kelvin", "mK"),
    # powers
    (r"\metre\tothe{-1}", "m⁻¹"),
    (r"\metre\tothe{2}", "m²"),
    (r"\metre\tothe{3}", "m³"),
    (r"\second\tothe{-2}", "s⁻²"),
    (r"\hertz\tothe{0.5}", "Hz^0.5"),
    # products and quotients
    (r"\micro\volt\per\volt", "µV/V"),
    (r"\micro\ohm\per\ohm", "µΩ/Ω"),
    (r"\metre\per\second", "m/s"),
    (r"\metre\per\second\tothe{2}", "m/s²"),
    (r"\volt\per\kelvin", "V/K"),
    (r"\joule\per\mole\per\kelvin", "J/(mol·K)"),
    (r"\kilogram\metre\tothe{2}\per\second\tothe{2}", "kg·m²/s²"),
    (r"\micro\volt\per\hertz\tothe{0.5}", "µV/Hz^0.5"),
]


@pytest.mark.parametrize(("dsi", "symbol"), TABLE)
def test_dsi_to_symbol_and_back(dsi: str, symbol: str) -> None:
    assert units.dsi_to_symbol(dsi) == symbol
    assert units.symbol_to_dsi(symbol) == dsi


@pytest.mark.parametrize(
    ("symbol", "dsi"),
    [
        ("uV/V", r"\micro\volt\per\volt"),  # ASCII u for micro
        ("μV", r"\micro\volt"),  # GREEK SMALL LETTER MU
        ("Ω", r"\ohm"),  # OHM SIGN U+2126
        ("kOhm", r"\kilo\ohm"),
        ("ohm", r"\ohm"),
        ("degC", r"\degreecelsius"),
        ("℃", r"\degreecelsius"),
        ("m^-1", r"\metre\tothe{-1}"),
        ("m^(-1)", r"\metre\tothe{-1}"),
        ("1/s", r"\second\tothe{-1}"),
        ("N*m", r"\newton\metre"),
        ("mA s", r"\milli\ampere\second"),
        ("%rh", r"\percent"),
        ("mL", r"\milli\litre"),
        ("mbar", r"\milli\bar"),
    ],
)
def test_other_spellings_of_a_symbol(symbol: str, dsi: str) -> None:
    assert units.symbol_to_dsi(symbol) == dsi


@pytest.mark.parametrize(
    ("dsi", "reason"),
    [
        (r"\foo", r"\foo is not a D-SI prefix or unit"),
        ("volt", "is not a D-SI token"),
        (r"\volt x", "is not a D-SI token"),
        (r"\milli", "ends with a prefix"),
        (r"\volt\per", "ends with a prefix or \\per"),
        (r"\kilo\milli\volt", "two prefixes in a row"),
        (r"\kilo\kilogram", r"\kilogram takes no prefix"),
        (r"\milli\percent", r"\percent takes no prefix"),
        (r"\milli\degreecelsius", r"\degreecelsius takes no prefix"),
        (r"\tothe{2}", r"\tothe must follow a unit"),
        (r"\volt\tothe{x}", "is not a number"),
        (r"\volt\tothe{0}", "a power of 0"),
        (r"\volt\tothe", "needs a power in braces"),
        (r"\volt{2}", "takes no argument"),
        ("", "empty"),
    ],
)
def test_unknown_dsi_refused_with_reason(dsi: str, reason: str) -> None:
    with pytest.raises(UnsupportedUnit) as caught:
        units.parse_dsi(dsi)
    assert reason in caught.value.reason
    assert caught.value.unit == dsi


@pytest.mark.parametrize(
    ("symbol", "reason"),
    [
        ("ft", "not a unit symbol known"),  # never femto-tonne
        ("yd", "not a unit symbol known"),  # never yocto-day
        ("psi", "not a unit symbol known"),
        ("kkg", "'kg' takes no prefix"),
        ("V/A/s", "more than one '/' is ambiguous"),
        ("J/mol·K", "several divisors must be in parentheses"),
        ("m/", "nothing after '/'"),
        ("^2", "has a power but no unit"),
        ("  ", "empty"),
    ],
)
def test_unknown_symbol_refused_with_reason(symbol: str, reason: str) -> None:
    with pytest.raises(UnsupportedUnit) as caught:
        units.symbol_to_dsi(symbol)
    assert reason in caught.value.reason


def test_same_unit_whatever_the_spelling() -> None:
    assert units.same_unit(r"\metre\per\second", r"\metre\second\tothe{-1}")
    assert not units.same_unit(r"\milli\volt", r"\volt")
    assert not units.same_unit(r"\kelvin", r"\degreecelsius")


@pytest.mark.parametrize(
    ("source", "target", "factor"),
    [
        (r"\milli\volt", r"\volt", Decimal("0.001")),
        (r"\volt", r"\micro\volt", Decimal("1000000")),
        (r"\kilogram", r"\milli\gram", Decimal("1000000")),
        (r"\kilo\ohm", r"\ohm", Decimal("1000")),
        (r"\milli\metre\tothe{2}", r"\metre\tothe{2}", Decimal("0.000001")),
        (r"\volt", r"\volt", Decimal("1")),
    ],
)
def test_scale_factor_between_prefixes_is_exact(source: str, target: str, factor: Decimal) -> None:
    assert units.scale_factor(source, target) == factor


@pytest.mark.parametrize(
    ("source", "target"),
    [(r"\kelvin", r"\degreecelsius"), (r"\volt", r"\ampere"), (r"\percent", r"\ppm")],
)
def test_scale_factor_refuses_other_units(source: str, target: str) -> None:
    with pytest.raises(UnsupportedUnit, match="not the same unit up to prefixes"):
        units.scale_factor(source, target)


def test_the_symbols_written_are_the_registrys() -> None:
    # µ is MICRO SIGN and Ω GREEK CAPITAL OMEGA, as the registry's tolerance parser expects
    assert units.dsi_to_symbol(r"\micro\volt\per\volt") == "\u00b5V/V"
    assert units.dsi_to_symbol(r"\kilo\ohm") == "k\u03a9"
