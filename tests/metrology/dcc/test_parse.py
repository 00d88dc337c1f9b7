"""Reading DCCs into the model: a document etalon did not write, multi-result certificates as
several points, calibration tables with their conditions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from metrology import dcc
from tests.metrology.dcc import samples
from tests.metrology.dcc.conftest import DATA

HANDWRITTEN = DATA / "thermometer-handwritten.xml"


@pytest.fixture(scope="module")
def thermometer() -> dcc.Dcc:
    return dcc.parse(HANDWRITTEN.read_bytes())


def test_administrative_data_of_a_hand_written_dcc(thermometer: dcc.Dcc) -> None:
    assert thermometer.unique_identifier == "KAL-T-2025-0815"
    assert thermometer.country_code == "DE"
    assert thermometer.used_languages == ("de", "en")
    assert thermometer.mandatory_languages == ("de",)
    assert thermometer.receipt_date == dt.date(2025, 6, 2)
    assert thermometer.begin_performance_date == dt.date(2025, 6, 3)
    assert thermometer.end_performance_date == dt.date(2025, 6, 4)  # written with a time zone
    assert thermometer.issue_date is None
    assert thermometer.recalibration_date == dt.date(2026, 6, 4)
    lab = thermometer.laboratory
    assert lab.name.get() == "Kalibrierlabor Beispiel"
    assert lab.code == "D-K-99999-01-00"
    assert lab.email == "kalibrierung@beispiel.example"
    assert (lab.location.city, lab.location.country_code, lab.location.street_no) == (
        "Braunschweig",
        "DE",
        "12",
    )
    item = thermometer.item
    assert item.name.get("en") == "Resistance thermometer with readout"
    assert item.name.get("de") == "Widerstandsthermometer mit Anzeige"
    assert item.name.get("vi") == "Resistance thermometer with readout"  # no vi: English
    assert item.manufacturer.get() == "Thermo Beispiel GmbH"
    assert item.model == "PRT-100 / R-2"
    assert item.serial_number == "SN 20-33817"  # named "Serial number", not the first id
    assert thermometer.responsible_persons[0].main_signer is True
    assert thermometer.customer.name.get() == "Prüflabor Kunde AG"
    assert [s.ref_types for s in thermometer.statements] == [
        (),
        ("basic_validityRange",),
        ("basic_recalibration",),
    ]
    validity = thermometer.statements[1]
    assert [q.values[0].value for q in validity.quantities] == ["273.15", "423.15"]
    assert thermometer.statements[0].norms == ("ISO/IEC 17025:2018-03",)


def test_measurement_context(thermometer: dcc.Dcc) -> None:
    result = thermometer.measurement_results[0]
    assert [m.norms for m in result.used_methods] == [("GUM",), ("DKD-R 5-1:2018",)]
    assert result.measuring_equipments[0].model == "SPRT 25"
    assert result.measuring_equipments[0].identifications[0].value == "N-17"
    assert [c.ref_types for c in result.influence_conditions] == [
        ("gp_immersionDepth",),
        ("basic_temperature",),
    ]


def test_a_calibration_table_with_hybrid_units_and_one_uncertainty(thermometer: dcc.Dcc) -> None:
    table = [p for p in thermometer.points() if "basic_measurementError" in p.ref_types]
    assert [p.value.value for p in table] == ["0.020", "-0.028", "-0.061", "-0.099"]
    assert [p.row for p in table] == [0, 1, 2, 3]
    for point in table:  # one U written for the column applies to every value
        assert point.value.uncertainty == dcc.ExpandedUncertainty(
            value="0.035", coverage_factor="2", coverage_probability="0.95", distribution="normal"
        )
        assert point.value.symbol() == "K"
    # the row's other columns and the influence conditions are the point's conditions
    first = table[0]
    assert first.condition("basic_referenceValue") == dcc.Value(value="273.160", unit="\\kelvin")
    assert first.condition("basic_measuredValue") == dcc.Value(value="273.18", unit="\\kelvin")
    assert first.condition("basic_temperatureMin") == dcc.Value(value="295.6", unit="\\kelvin")
    assert first.condition("gp_immersionDepth") == dcc.Value(value="0.15", unit="\\metre")
    assert first.condition("no_such_refType") is None
    # the °C representation of the reference column
    reference = thermometer.measurement_results[0].results[0].lists[0].quantities[0]
    celsius = reference.in_unit("\\degreecelsius")
    assert celsius is not None and [v.value for v in celsius] == [
        "0.010",
        "49.998",
        "99.991",
        "149.989",
    ]
    conformity = thermometer.measurement_results[0].results[0].lists[0].quantities[2].metadata
    assert conformity[0].conformity == ("pass", "pass", "pass", "fail")


def test_single_values_and_real_lists(thermometer: dcc.Dcc) -> None:
    points = {p.path: p for p in thermometer.points()}
    r0 = points["measurementResult[1]/result[2]/quantity[1]"]
    assert r0.value.value == "100.0123"  # the blanks around it are not part of the number
    assert r0.value.label == "R0"
    assert r0.value.symbol() == "Ω"
    assert r0.value.uncertainty is not None and r0.value.uncertainty.standard == Decimal("0.0006")
    heating = [p for p in thermometer.points() if "gp_selfHeating" in p.ref_types]
    assert [(p.value.value, p.value.unit, p.value.label) for p in heating] == [
        ("2.1", "\\milli\\kelvin", "1mA"),
        ("8.4E0", "\\milli\\kelvin", "2mA"),  # the exponent form is kept as written
    ]
    # the list's shared uncertainty, or the value's own
    assert [p.value.uncertainty.value for p in heating if p.value.uncertainty] == ["0.5", "0.8"]


def test_what_the_model_does_not_hold_is_listed(thermometer: dcc.Dcc) -> None:
    assert thermometer.not_extracted == (
        "measurementResult[1]/result[2]/quantity[2]/constant: si:constant",
    )


def test_zener_outputs_are_two_points() -> None:
    certificate = dcc.parse((DATA / "zener.xml").read_bytes())
    points = certificate.points()
    assert [(p.result.get(), p.value.value, p.value.symbol()) for p in points] == [
        ("1.018 V output", "1.01800452", "V"),
        ("10 V output", "9.99999921", "V"),
    ]
    assert [p.value.uncertainty.value for p in points if p.value.uncertainty] == [
        "0.00000011",
        "0.0000006",
    ]
    assert {p.value.uncertainty.coverage_factor for p in points if p.value.uncertainty} == {"2"}
    assert certificate.item.serial_number == "Z-98765"
    equipment = certificate.measurement_results[0].measuring_equipments[0]
    assert (
        equipment.certificate is not None and equipment.certificate.referral_id == "BIPM.EM-K10.b"
    )


def test_a_resistor_at_several_currents_is_one_point_per_current() -> None:
    certificate = dcc.parse((DATA / "resistor.xml").read_bytes())
    points = certificate.points()
    assert [
        (p.condition("basic_nominalValue").value, p.value.value, p.value.symbol())  # type: ignore[union-attr]
        for p in points
    ] == [("1", "100.000213", "Ω"), ("5", "100.000215", "Ω"), ("10", "100.000221", "Ω")]
    assert all(p.condition("basic_nominalValue").symbol() == "mA" for p in points)  # type: ignore[union-attr]
    assert [p.value.uncertainty.value for p in points if p.value.uncertainty] == [
        "0.000040",
        "0.000040",
        "0.000045",
    ]
    assert all(p.condition("basic_temperature") is not None for p in points)


def test_an_instrument_table_gives_indication_error_and_uncertainty_per_point() -> None:
    """What issue 19 applies as corrections: for each point, the indication, the error and its
    U and k — error = indication − reference, exactly."""
    certificate = dcc.parse((DATA / "instrument-table.xml").read_bytes())
    rows = []
    for point in certificate.points():
        if "basic_measurementError" not in point.ref_types:
            continue
        indication = point.condition("basic_measuredValue")
        reference = point.condition("basic_referenceValue")
        assert indication is not None and reference is not None and point.value.uncertainty
        assert indication.decimal() - reference.decimal() == point.value.decimal()
        rows.append(
            (
                indication.value,
                point.value.value,
                point.value.uncertainty.value,
                point.value.uncertainty.coverage_factor,
            )
        )
    assert rows == [
        ("-10.00012", "-0.00012", "0.000035", "2"),
        ("-5.00005", "-0.00005", "0.000035", "2"),
        ("0.000002", "0.000002", "0.000035", "2"),
        ("5.00007", "0.00007", "0.000035", "2"),
        ("10.00015", "0.00015", "0.000035", "2"),
    ]


def test_a_table_without_uncertainties_makes_every_value_a_point() -> None:
    certificate = samples.single()
    result = certificate.measurement_results[0]
    table = dcc.QuantityList(
        quantities=(
            dcc.Quantity(values=(dcc.Value.of("1", "V"), dcc.Value.of("2", "V"))),
            dcc.Quantity(values=(dcc.Value.of("3", "A"),)),
        )
    )
    first = dcc.Result(name=result.results[0].name, lists=(table,))
    certificate = certificate.model_copy(
        update={"measurement_results": (result.model_copy(update={"results": (first,)}),)}
    )
    points = certificate.points()
    assert [p.value.value for p in points] == ["1", "2", "3"]
    assert all(c.source == "influence" for p in points for c in p.conditions)


def test_a_list_of_rows() -> None:
    certificate = samples.single()
    result = certificate.measurement_results[0]

    def row(current: str, resistance: str) -> dcc.QuantityList:
        return dcc.QuantityList(
            quantities=(
                dcc.Quantity(
                    ref_types=("basic_nominalValue",), values=(dcc.Value.of(current, "mA"),)
                ),
                dcc.Quantity(
                    values=(
                        dcc.Value.of(
                            resistance, "Ω", uncertainty="4E-5", k="2", probability="0.95"
                        ),
                    )
                ),
            )
        )

    table = dcc.QuantityList(lists=(row("1", "100.0002"), row("10", "100.0003")))
    first = dcc.Result(name=result.results[0].name, lists=(table,))
    certificate = certificate.model_copy(
        update={"measurement_results": (result.model_copy(update={"results": (first,)}),)}
    )
    parsed = dcc.parse(dcc.build(certificate))
    assert parsed == certificate
    points = parsed.points()
    assert [(p.row, p.value.value, p.condition("basic_nominalValue").value) for p in points] == [  # type: ignore[union-attr]
        (0, "100.0002", "1"),
        (1, "100.0003", "10"),
    ]
    assert points[1].path == "measurementResult[1]/result[1]/list[1]/list[2]/quantity[2]"


def test_mismatched_xml_list_lengths_are_refused() -> None:
    document = (DATA / "instrument-table.xml").read_bytes()
    broken = document.replace(
        b"<si:uncertaintyXMLList>0.000035</si:uncertaintyXMLList>",
        b"<si:uncertaintyXMLList>0.000035 0.000040</si:uncertaintyXMLList>",
    )
    with pytest.raises(dcc.DccInvalid, match="5 values but 2 entries in si:uncertaintyXMLList"):
        dcc.parse(broken)


def test_a_signed_document_reads_as_the_unsigned_one() -> None:
    signed = dcc.parse((DATA / "zener-signed.xml").read_bytes())
    assert signed == samples.zener()
    assert signed.not_extracted == ()


def test_parse_without_validation_still_refuses_a_non_dcc() -> None:
    with pytest.raises(dcc.DccInvalid, match="not a DCC"):
        dcc.parse(b"<other/>", validate=False)
    assert dcc.parse((DATA / "zener.xml").read_bytes(), validate=False) == samples.zener()
