"""UNECE common codes ↔ EUInformation UnitIds, and the symbol a reading carries."""

from __future__ import annotations

import pytest

from drivers.opcua.units import (
    SYMBOLS,
    UNECE_NAMESPACE,
    EngineeringUnit,
    common_code,
    engineering_unit,
    unit_id,
)


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("CEL", 4408652),  # 0x43454C, the example of OPC UA Part 8
        ("C62", 4404786),
        ("P1", 0x5031),
        ("2Z", 0x325A),
        ("59", 0x3539),
        ("KEL", 0x4B454C),
    ],
)
def test_a_common_code_packs_into_a_unit_id_and_back(code: str, value: int) -> None:
    assert unit_id(code) == value
    assert common_code(value) == code


@pytest.mark.parametrize("value", [-1, 0, 1 << 24, 0x434520, 0x63656C, 0x00FF41])
def test_a_unit_id_that_is_no_common_code(value: int) -> None:
    assert common_code(value) is None


@pytest.mark.parametrize(
    ("code", "symbol"),
    [
        ("CEL", "°C"),
        ("KEL", "K"),
        ("VLT", "V"),
        ("2Z", "mV"),
        ("D82", "µV"),
        ("OHM", "Ω"),
        ("B49", "kΩ"),
        ("HTZ", "Hz"),
        ("MHZ", "MHz"),
        ("A97", "hPa"),
        ("PAL", "Pa"),
        ("P1", "%"),
        ("C62", "1"),
        ("L2", "l/min"),
        ("SEC", "s"),
    ],
)
def test_common_codes_map_to_symbols(code: str, symbol: str) -> None:
    assert engineering_unit(UNECE_NAMESPACE, unit_id(code), "").symbol == symbol


def test_every_code_in_the_table_is_a_code_and_its_spellings_are_distinct() -> None:
    for code, spellings in SYMBOLS.items():
        assert common_code(unit_id(code)) == code
        assert len(set(spellings)) == len(spellings), code
        assert all(spellings), code


def test_the_display_name_is_kept_when_it_spells_the_code_and_used_when_the_code_is_unknown() -> (
    None
):
    assert engineering_unit(UNECE_NAMESPACE, unit_id("P1"), "%rh").symbol == "%rh"
    assert engineering_unit(UNECE_NAMESPACE, unit_id("CEL"), "degree Celsius").symbol == "°C"
    assert engineering_unit(UNECE_NAMESPACE, unit_id("D33"), "T").symbol == "T"  # not in table
    assert engineering_unit("urn:vendor", unit_id("CEL"), "Grad").symbol == "Grad"  # not UNECE
    assert engineering_unit(None, unit_id("CEL"), "").symbol == "°C"  # namespace left empty
    assert engineering_unit(UNECE_NAMESPACE, -1, " counts ").symbol == "counts"
    assert EngineeringUnit(None, "").symbol == ""


@pytest.mark.parametrize(
    ("code", "display", "config_unit", "agrees"),
    [
        ("CEL", "°C", "°C", True),
        ("CEL", "°C", "degC", True),
        ("CEL", "°C", "K", False),
        ("OHM", "Ω", "\u2126", True),  # the ohm sign, as some keyboards type it
        ("P1", "%rh", "%", True),
        (None, "counts", "counts", True),
        (None, "counts", "1", False),
    ],
)
def test_whether_a_config_unit_agrees(
    code: str | None, display: str, config_unit: str, agrees: bool
) -> None:
    assert EngineeringUnit(code, display).agrees_with(config_unit) is agrees


def test_a_display_name_is_made_plain_or_refused() -> None:
    """A server's display name is free text; a reading's unit is at most 32 plain characters."""
    assert engineering_unit(None, -1, "°C\n").symbol == "°C"
    assert engineering_unit(None, -1, "m\\s\x00\x7f").symbol == "ms"
    long_name = "degree Celsius as measured by the PT100 of chamber 1"
    refused = engineering_unit("urn:vendor", 1, long_name)
    assert (refused.symbol, refused.refused) == ("", long_name)
    known = engineering_unit(UNECE_NAMESPACE, unit_id("CEL"), long_name)
    assert (known.symbol, known.refused) == ("°C", long_name)
