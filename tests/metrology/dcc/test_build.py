"""Building DCC 3.1.2 documents: valid against the XSD, exact numbers, both languages, and the
round trip parse(build(m)) == m."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from metrology import dcc
from metrology.dcc.model import ISSUE_DATE_REF_TYPE
from tests.metrology.dcc import samples
from tests.metrology.dcc.conftest import DATA

NS = {"dcc": "https://ptb.de/dcc", "si": "https://ptb.de/si"}


@pytest.mark.parametrize("name", sorted(samples.ALL))
def test_round_trip_is_exact(name: str) -> None:
    certificate = samples.ALL[name]()
    document = dcc.build(certificate)
    dcc.validate(document)
    assert dcc.parse(document) == certificate


@pytest.mark.parametrize("name", sorted(samples.ALL))
def test_builder_writes_the_golden_documents(name: str) -> None:
    """The committed data set is the builder's output (regenerate.py writes it); a change of
    the writer shows here as a diff to review."""
    golden = (DATA / f"{name.replace('_', '-')}.xml").read_bytes()
    assert dcc.build(samples.ALL[name]()) == golden


def test_hand_written_document_survives_build_and_parse() -> None:
    original = dcc.parse((DATA / "thermometer-handwritten.xml").read_bytes())
    again = dcc.parse(dcc.build(original))
    assert again == original.model_copy(update={"not_extracted": ()})


def _with_value(text: str, uncertainty: str = "8E-7") -> dcc.Dcc:
    certificate = samples.single()
    value = dcc.Value.of(text, "V", uncertainty=uncertainty, k="2", probability="0.9545")
    result = certificate.measurement_results[0]
    quantity = result.results[0].quantities[0].model_copy(update={"values": (value,)})
    first = result.results[0].model_copy(update={"quantities": (quantity,)})
    return certificate.model_copy(
        update={"measurement_results": (result.model_copy(update={"results": (first,)}),)}
    )


@pytest.mark.parametrize(
    "text",
    ["10.000000000000000000012", "1.0180", "-0.000", "1E-9", "+9.99999921", "1.", ".5", "7"],
)
def test_values_are_written_exactly_as_given(text: str) -> None:
    document = dcc.build(_with_value(text))
    root = etree.fromstring(document)
    written = root.xpath("//dcc:result//si:real/si:value/text()", namespaces=NS)
    assert written == [text]
    assert root.xpath("//dcc:result//si:uncertainty/text()", namespaces=NS) == ["8E-7"]
    assert root.xpath("//dcc:result//si:coverageProbability/text()", namespaces=NS) == ["0.9545"]
    assert dcc.parse(document).points()[0].value.value == text


def test_a_float_is_written_by_its_shortest_exact_repr() -> None:
    value = dcc.Value(value=0.1 + 0.2, unit="\\volt")  # type: ignore[arg-type]
    assert value.value == "0.30000000000000004"  # the float as it is, not re-rounded to 0.3


def test_english_and_vietnamese_text_elements() -> None:
    root = etree.fromstring(dcc.build(samples.zener()))
    assert root.xpath("//dcc:coreData/dcc:usedLangCodeISO639_1/text()", namespaces=NS) == [
        "en",
        "vi",
    ]
    assert root.xpath("//dcc:coreData/dcc:mandatoryLangCodeISO639_1/text()", namespaces=NS) == [
        "en",
        "vi",
    ]
    names = root.xpath("//dcc:item/dcc:name/dcc:content", namespaces=NS)
    assert [(n.get("lang"), n.text) for n in names] == [
        ("en", "Zener voltage reference"),
        ("vi", "Chuẩn điện áp Zener"),
    ]
    # proper names stay language-neutral
    lab = root.xpath("//dcc:customer/dcc:name/dcc:content", namespaces=NS)
    assert [n.get("lang") for n in lab] == [None]


def test_issue_date_is_a_statement_read_back_as_issue_date() -> None:
    certificate = samples.zener()
    root = etree.fromstring(dcc.build(certificate))
    statement = root.xpath(f"//dcc:statement[@refType='{ISSUE_DATE_REF_TYPE}']", namespaces=NS)[0]
    assert statement.xpath("dcc:date/text()", namespaces=NS) == ["2026-03-09"]
    assert {c.get("lang") for c in statement.xpath(".//dcc:content", namespaces=NS)} == {
        "en",
        "vi",
    }
    parsed = dcc.parse(dcc.build(certificate))
    assert parsed.issue_date == dt.date(2026, 3, 9)
    assert all(ISSUE_DATE_REF_TYPE not in s.ref_types for s in parsed.statements)


def test_a_text_missing_a_mandatory_language_is_refused_with_its_place() -> None:
    certificate = samples.single()
    item = certificate.items[0].model_copy(update={"name": dcc.Text.of(en="DC reference")})
    with pytest.raises(dcc.DccInvalid) as caught:
        dcc.build(certificate.model_copy(update={"items": (item,)}))
    assert "has no vi version" in caught.value.reason
    assert caught.value.path == "items[0].name"


def test_a_language_not_declared_as_used_is_refused() -> None:
    certificate = samples.single()
    item = certificate.items[0].model_copy(
        update={"name": dcc.Text.of(en="DC reference", vi="Chuẩn", de="Referenz")}
    )
    with pytest.raises(dcc.DccInvalid, match="language de is not among the used languages"):
        dcc.build(certificate.model_copy(update={"items": (item,)}))


def test_an_unknown_unit_is_refused_not_written() -> None:
    certificate = samples.single()
    bad = dcc.Value(value="1", unit="\\furlong")
    result = certificate.measurement_results[0]
    quantity = result.results[0].quantities[0].model_copy(update={"values": (bad,)})
    first = result.results[0].model_copy(update={"quantities": (quantity,)})
    broken = certificate.model_copy(
        update={"measurement_results": (result.model_copy(update={"results": (first,)}),)}
    )
    with pytest.raises(dcc.UnsupportedUnit, match=r"\\furlong is not a D-SI prefix or unit"):
        dcc.build(broken)


def _table(
    values: tuple[dcc.Value, ...], hybrid: tuple[tuple[dcc.Value, ...], ...] = ()
) -> dcc.Dcc:
    certificate = samples.single()
    result = certificate.measurement_results[0]
    table = dcc.QuantityList(
        quantities=(dcc.Quantity(name=dcc.Text.of("x"), values=values, hybrid=hybrid),)
    )
    first = dcc.Result(name=result.results[0].name, lists=(table,))
    return certificate.model_copy(
        update={"measurement_results": (result.model_copy(update={"results": (first,)}),)}
    )


def test_a_column_of_like_values_is_an_xml_list() -> None:
    values = tuple(
        dcc.Value.of(v, "mV", uncertainty="0.02", k="2", probability="0.95")
        for v in ("1.00", "2.00", "3.01")
    )
    certificate = _table(values)
    root = etree.fromstring(dcc.build(certificate))
    assert root.xpath("//si:valueXMLList/text()", namespaces=NS) == ["1.00 2.00 3.01"]
    assert root.xpath("//si:unitXMLList/text()", namespaces=NS) == ["\\milli\\volt"]
    assert root.xpath("//si:uncertaintyXMLList/text()", namespaces=NS) == ["0.02"]
    assert dcc.parse(dcc.build(certificate)) == certificate


def test_a_column_of_unlike_values_is_an_si_list() -> None:
    values = (
        dcc.Value.of("1.00", "mV", uncertainty="0.02", k="2", probability="0.95", label="low"),
        dcc.Value.of("2.00", "V"),  # no uncertainty: cannot share an XML list with the first
        dcc.Value(value="3", unit="\\volt", label="with blanks"),
    )
    certificate = _table(values)
    root = etree.fromstring(dcc.build(certificate))
    assert len(root.xpath("//si:list/si:realList/si:real", namespaces=NS)) == 3
    assert dcc.parse(dcc.build(certificate)) == certificate


def test_hybrid_representations_round_trip() -> None:
    kelvin = tuple(dcc.Value.of(v, "K") for v in ("273.16", "373.15"))
    celsius = tuple(dcc.Value.of(v, "°C") for v in ("0.01", "100.00"))
    certificate = _table(kelvin, (celsius,))
    root = etree.fromstring(dcc.build(certificate))
    assert len(root.xpath("//si:hybrid/si:realListXMLList", namespaces=NS)) == 2
    parsed = dcc.parse(dcc.build(certificate))
    assert parsed == certificate
    quantity = parsed.measurement_results[0].results[0].lists[0].quantities[0]
    assert quantity.in_unit("\\degreecelsius") == celsius
    assert quantity.in_unit("\\volt") is None


def test_coverage_intervals_round_trip() -> None:
    interval = dcc.CoverageInterval(
        standard_uncertainty="0.1", minimum="9.8", maximum="10.3", coverage_probability="0.95"
    )
    values = (
        dcc.Value(value="10.0", unit="\\volt", coverage_interval=interval),
        dcc.Value(value="10.1", unit="\\volt", coverage_interval=interval),
    )
    certificate = _table(values)
    assert dcc.parse(dcc.build(certificate)) == certificate


def test_building_without_validation_gives_the_same_bytes() -> None:
    certificate = samples.resistor()
    assert dcc.build(certificate, validate=False) == dcc.build(certificate)


def test_the_default_software_is_etalon() -> None:
    certificate = samples.single().model_copy(
        update={"software": dcc.Dcc.model_fields["software"].get_default(call_default_factory=True)}
    )
    assert certificate.software[0].name.get() == "etalon"
    assert dcc.parse(dcc.build(certificate)).software == certificate.software
