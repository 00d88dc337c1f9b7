"""Writing a :class:`metrology.dcc.model.Dcc` as a DCC 3.1.2 document.

Elements are written in the schema's order; numbers exactly as the model holds them (decimal
text, never through a float); units as D-SI strings (each checked: an unknown unit is refused,
not written); texts with their ``lang`` attributes, each text carrying every mandatory language.
A column of values is written as ``si:realListXMLList`` when its values share a shape (PTB's
examples do so), as ``si:list``/``si:realList`` otherwise; a single value as ``si:real``.
The document is validated against the shipped schema before it is returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TypeVar

from lxml import etree

from metrology import units
from metrology.dcc import model as m
from metrology.dcc.schema import DCC_NS, SI_NS, validate_tree
from metrology.errors import DccInvalid, UnsupportedUnit

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"dcc": DCC_NS, "si": SI_NS, "xsi": XSI_NS}
SCHEMA_LOCATION = "https://ptb.de/dcc https://ptb.de/dcc/v3.1.2/dcc.xsd"

D = TypeVar("D", bound=m.Described)

ISSUE_DATE_TEXT = {
    "en": "Date of issue of this certificate",
    "vi": "Ngày ban hành giấy chứng nhận này",
}


def _d(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{DCC_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _s(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{SI_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _described(parent: etree._Element, name: str, element: m.Described) -> etree._Element:
    """The element ``dcc:NAME`` with its ``refType``, name and description."""
    child = _ref_types(_d(parent, name), element.ref_types)
    _text(child, "name", element.name)
    _text(child, "description", element.description)
    return child


def _described_list(
    parent: etree._Element, wrapper: str, name: str, items: Sequence[D]
) -> Iterator[tuple[etree._Element, D]]:
    """Each item with its described ``dcc:NAME`` element, inside ``dcc:WRAPPER`` (not written
    when there are no items)."""
    if not items:
        return
    element = _d(parent, wrapper)
    for item in items:
        yield _described(element, name, item), item


def _ref_types(element: etree._Element, ref_types: Sequence[str]) -> etree._Element:
    if ref_types:
        element.set("refType", " ".join(ref_types))
    return element


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _date(value: dt.date) -> str:
    return value.isoformat()


def _text(parent: etree._Element, name: str, text: m.Text | None) -> None:
    """A dcc:textType or dcc:richContentType element (both hold dcc:content children)."""
    if text is None:
        return
    element = _d(parent, name)
    for content in text.content:
        child = _d(element, "content", content.text)
        if content.lang:
            child.set("lang", content.lang)


def _identifications(parent: etree._Element, identifications: Sequence[m.Identification]) -> None:
    if not identifications:
        return
    element = _d(parent, "identifications")
    for identification in identifications:
        child = _d(element, "identification")
        _d(child, "issuer", identification.issuer)
        _d(child, "value", identification.value)
        _text(child, "name", identification.name)


def _location(parent: etree._Element, location: m.Location | None) -> None:
    if location is None:
        return
    element = _d(parent, "location")
    for field, name in (
        ("city", "city"),
        ("country_code", "countryCode"),
        ("post_code", "postCode"),
        ("post_office_box", "postOfficeBox"),
        ("state", "state"),
        ("street", "street"),
        ("street_no", "streetNo"),
    ):
        value = getattr(location, field)
        if value is not None:
            _d(element, name, value)
    _text(element, "further", location.further)


def _contact(parent: etree._Element, name: str, contact: m.Contact) -> None:
    element = _d(parent, name)
    _text(element, "name", contact.name)
    _d(element, "eMail", contact.email)
    if contact.phone:
        _d(element, "phone", contact.phone)
    if contact.fax:
        _d(element, "fax", contact.fax)
    _location(element, contact.location)


def _statement(parent: etree._Element, name: str, statement: m.Statement) -> None:
    element = _ref_types(_d(parent, name), statement.ref_types)
    for country in statement.countries:
        _d(element, "countryCodeISO3166_1", country)
    if statement.convention is not None:
        _d(element, "convention", statement.convention)
    if statement.traceable is not None:
        _d(element, "traceable", _boolean(statement.traceable))
    for norm in statement.norms:
        _d(element, "norm", norm)
    for reference in statement.references:
        _d(element, "reference", reference)
    _text(element, "declaration", statement.declaration)
    if statement.valid is not None:
        _d(element, "valid", _boolean(statement.valid))
    if statement.date is not None:
        _d(element, "date", _date(statement.date))
    if statement.period is not None:
        _d(element, "period", statement.period)
    if len(statement.conformity) == 1:
        _d(element, "conformity", statement.conformity[0])
    elif statement.conformity:
        _d(element, "conformityXMLList", " ".join(statement.conformity))
    if statement.quantities or statement.texts:
        _data(element, "data", statement.quantities, (), statement.texts)


def _statements(
    parent: etree._Element, name: str, child: str, statements: Sequence[m.Statement]
) -> None:
    if not statements:
        return
    element = _d(parent, name)
    for statement in statements:
        _statement(element, child, statement)


# -- D-SI --------------------------------------------------------------------------------------


def _expanded(parent: etree._Element, expanded: m.ExpandedUncertainty) -> None:
    element = _s(parent, "expandedUnc")
    _s(element, "uncertainty", expanded.value)
    _s(element, "coverageFactor", expanded.coverage_factor)
    _s(element, "coverageProbability", expanded.coverage_probability)
    if expanded.distribution is not None:
        _s(element, "distribution", expanded.distribution)


def _interval(parent: etree._Element, interval: m.CoverageInterval) -> None:
    element = _s(parent, "coverageInterval")
    _s(element, "standardUnc", interval.standard_uncertainty)
    _s(element, "intervalMin", interval.minimum)
    _s(element, "intervalMax", interval.maximum)
    _s(element, "coverageProbability", interval.coverage_probability)
    if interval.distribution is not None:
        _s(element, "distribution", interval.distribution)


def _real(parent: etree._Element, value: m.Value, name: str = "real") -> None:
    element = _s(parent, name)
    if value.label is not None:
        _s(element, "label", value.label)
    _s(element, "value", value.value)
    _s(element, "unit", value.unit)
    if value.date_time is not None:
        _s(element, "dateTime", value.date_time.isoformat())
    if value.uncertainty is not None:
        _expanded(element, value.uncertainty)
    elif value.coverage_interval is not None:
        _interval(element, value.coverage_interval)


def _tokens(texts: Sequence[str | None]) -> bool:
    """All given and none with blanks (an XML list cannot carry them)."""
    return all(text is not None and text.split() == [text] for text in texts)


def _listable(values: Sequence[m.Value]) -> bool:
    """Whether a column can be written as si:realListXMLList without losing anything."""
    labels = [v.label for v in values]
    if any(labels) and not _tokens(labels):
        return False
    times = [v.date_time for v in values]
    if any(t is not None for t in times) and not all(t is not None for t in times):
        return False
    # The uncertainty and the coverage interval: each given for every value or for none, and
    # their distributions, if named, single words.
    columns: tuple[list[m.ExpandedUncertainty | m.CoverageInterval | None], ...] = (
        [v.uncertainty for v in values],
        [v.coverage_interval for v in values],
    )
    for column in columns:
        given = [entry for entry in column if entry is not None]
        if not given:
            continue
        if len(given) != len(column):
            return False
        distributions = [entry.distribution for entry in given]
        if any(distributions) and not _tokens(distributions):
            return False
    return True


def _column(entries: Sequence[str]) -> str:
    """An XML list; one entry when they are all the same (D-SI: it then applies to all)."""
    return entries[0] if len(set(entries)) == 1 else " ".join(entries)


def _xml_list(parent: etree._Element, values: Sequence[m.Value]) -> None:
    element = _s(parent, "realListXMLList")
    if values[0].label is not None:
        _s(element, "labelXMLList", " ".join(v.label or "" for v in values))
    _s(element, "valueXMLList", " ".join(v.value for v in values))
    _s(element, "unitXMLList", _column([v.unit for v in values]))
    if values[0].date_time is not None:
        _s(
            element,
            "dateTimeXMLList",
            " ".join(v.date_time.isoformat() for v in values if v.date_time is not None),
        )
    expanded = [v.uncertainty for v in values if v.uncertainty is not None]
    intervals = [v.coverage_interval for v in values if v.coverage_interval is not None]
    if expanded:
        unc = _s(element, "expandedUncXMLList")
        _s(unc, "uncertaintyXMLList", _column([e.value for e in expanded]))
        _s(unc, "coverageFactorXMLList", _column([e.coverage_factor for e in expanded]))
        _s(unc, "coverageProbabilityXMLList", _column([e.coverage_probability for e in expanded]))
        if expanded[0].distribution is not None:
            _s(unc, "distributionXMLList", _column([e.distribution or "" for e in expanded]))
    elif intervals:
        ci = _s(element, "coverageIntervalXMLList")
        _s(ci, "standardUncXMLList", _column([i.standard_uncertainty for i in intervals]))
        _s(ci, "intervalMinXMLList", " ".join(i.minimum for i in intervals))
        _s(ci, "intervalMaxXMLList", " ".join(i.maximum for i in intervals))
        _s(ci, "coverageProbabilityXMLList", _column([i.coverage_probability for i in intervals]))
        if intervals[0].distribution is not None:
            _s(ci, "distributionXMLList", _column([i.distribution or "" for i in intervals]))


def _si_list(parent: etree._Element, values: Sequence[m.Value]) -> None:
    real_list = _s(_s(parent, "list"), "realList")
    for value in values:
        _real(real_list, value)


def _values(parent: etree._Element, quantity: m.Quantity) -> None:
    representations = (quantity.values, *quantity.hybrid)
    if len(quantity.values) == 1:
        form = "real"
    elif all(_listable(r) for r in representations):
        form = "xml_list"
    else:
        form = "list"
    writers = {
        "real": lambda p, r: _real(p, r[0]),
        "xml_list": _xml_list,
        "list": _si_list,
    }
    target = _s(parent, "hybrid") if quantity.hybrid else parent
    for representation in representations:
        writers[form](target, representation)


def _quantity(parent: etree._Element, quantity: m.Quantity) -> None:
    element = _described(parent, "quantity", quantity)
    _values(element, quantity)
    _conditions(element, quantity.influence_conditions)
    _statements(element, "measurementMetaData", "metaData", quantity.metadata)


def _table(parent: etree._Element, table: m.QuantityList) -> None:
    element = _described(parent, "list", table)
    for row in table.lists:
        _table(element, row)
    for quantity in table.quantities:
        _quantity(element, quantity)
    _conditions(element, table.influence_conditions)


def _data(
    parent: etree._Element,
    name: str,
    quantities: Sequence[m.Quantity],
    lists: Sequence[m.QuantityList],
    texts: Sequence[m.Text],
) -> None:
    element = _d(parent, name)
    for text in texts:
        _text(element, "text", text)
    for quantity in quantities:
        _quantity(element, quantity)
    for table in lists:
        _table(element, table)


def _conditions(parent: etree._Element, conditions: Sequence[m.InfluenceCondition]) -> None:
    for child, condition in _described_list(
        parent, "influenceConditions", "influenceCondition", conditions
    ):
        if condition.status is not None:
            _d(child, "status", condition.status)
        _data(child, "data", condition.quantities, (), condition.texts)


def _equipment(parent: etree._Element, equipments: Sequence[m.MeasuringEquipment]) -> None:
    for child, equipment in _described_list(
        parent, "measuringEquipments", "measuringEquipment", equipments
    ):
        if equipment.certificate is not None:
            certificate = _d(child, "certificate")
            _text(certificate, "referral", equipment.certificate.referral)
            _d(certificate, "referralID", equipment.certificate.referral_id)
            _d(certificate, "procedure", equipment.certificate.procedure)
            _d(certificate, "value", equipment.certificate.value)
        if equipment.manufacturer is not None:
            _text(_d(child, "manufacturer"), "name", equipment.manufacturer)
        if equipment.model is not None:
            _d(child, "model", equipment.model)
        _identifications(child, equipment.identifications)


def _measurement_result(parent: etree._Element, result: m.MeasurementResult) -> None:
    element = _described(parent, "measurementResult", result)
    for child, method in _described_list(element, "usedMethods", "usedMethod", result.used_methods):
        for norm in method.norms:
            _d(child, "norm", norm)
        for reference in method.references:
            _d(child, "reference", reference)
    _equipment(element, result.measuring_equipments)
    _conditions(element, result.influence_conditions)
    results = _d(element, "results")
    for one in result.results:
        child = _described(results, "result", one)
        _data(child, "data", one.quantities, one.lists, one.texts)
    _statements(element, "measurementMetaData", "metaData", result.metadata)


# -- checks ------------------------------------------------------------------------------------


def _check(dcc: m.Dcc) -> None:
    """Refuse what would be a poor certificate though the schema allowed it: a text missing a
    mandatory language, a language not declared as used, a unit etalon does not know."""
    used = set(dcc.used_languages)
    for path, text in dcc.texts():
        languages = text.languages
        if not languages:
            continue  # a language-neutral text: a name
        missing = [lang for lang in dcc.mandatory_languages if lang not in languages]
        if missing:
            raise DccInvalid(
                f"the text {text.get()!r} has no {', '.join(missing)} version "
                f"(mandatory languages: {', '.join(dcc.mandatory_languages)})",
                path=path,
            )
        undeclared = sorted(set(languages) - used)
        if undeclared:
            raise DccInvalid(
                f"language {', '.join(undeclared)} is not among the used languages "
                f"({', '.join(dcc.used_languages)})",
                path=path,
            )
    for path, value in dcc.values():
        try:
            units.parse_dsi(value.unit)
        except UnsupportedUnit as exc:
            raise UnsupportedUnit(value.unit, f"{exc.reason} (at {path})") from exc


def _issue_statement(dcc: m.Dcc) -> m.Statement | None:
    if dcc.issue_date is None:
        return None
    content = [
        m.LocalizedText(lang=lang, text=text)
        for lang, text in ISSUE_DATE_TEXT.items()
        if lang in dcc.used_languages
    ] or [m.LocalizedText(text=ISSUE_DATE_TEXT["en"])]
    return m.Statement(
        ref_types=(m.ISSUE_DATE_REF_TYPE,),
        declaration=m.Text(content=tuple(content)),
        date=dcc.issue_date,
    )


def build_tree(dcc: m.Dcc) -> etree._Element:
    """The document's root element (not yet validated)."""
    _check(dcc)
    root = etree.Element(f"{{{DCC_NS}}}digitalCalibrationCertificate", nsmap=NSMAP)
    root.set(f"{{{XSI_NS}}}schemaLocation", SCHEMA_LOCATION)
    root.set("schemaVersion", dcc.schema_version)
    admin = _d(root, "administrativeData")

    software = _d(admin, "dccSoftware")
    for one in dcc.software:
        child = _d(software, "software")
        _text(child, "name", one.name)
        _d(child, "release", one.release)
        if one.type is not None:
            _d(child, "type", one.type)

    core = _d(admin, "coreData")
    _d(core, "countryCodeISO3166_1", dcc.country_code)
    for lang in dcc.used_languages:
        _d(core, "usedLangCodeISO639_1", lang)
    for lang in dcc.mandatory_languages:
        _d(core, "mandatoryLangCodeISO639_1", lang)
    _d(core, "uniqueIdentifier", dcc.unique_identifier)
    _identifications(core, dcc.identifications)
    if dcc.receipt_date is not None:
        _d(core, "receiptDate", _date(dcc.receipt_date))
    _d(core, "beginPerformanceDate", _date(dcc.begin_performance_date))
    _d(core, "endPerformanceDate", _date(dcc.end_performance_date))
    _d(core, "performanceLocation", dcc.performance_location)

    items = _d(admin, "items")
    for item in dcc.items:
        child = _d(items, "item")
        _text(child, "name", item.name)
        _text(child, "description", item.description)
        _text(_d(child, "manufacturer"), "name", item.manufacturer)
        if item.model is not None:
            _d(child, "model", item.model)
        _identifications(child, item.identifications)

    lab = _d(admin, "calibrationLaboratory")
    if dcc.laboratory.code is not None:
        _d(lab, "calibrationLaboratoryCode", dcc.laboratory.code)
    _contact(lab, "contact", dcc.laboratory)

    persons = _d(admin, "respPersons")
    for person in dcc.responsible_persons:
        child = _d(persons, "respPerson")
        contact = _d(child, "person")
        _text(contact, "name", person.name)
        if person.email is not None:
            _d(contact, "eMail", person.email)
        _text(child, "description", person.description)
        if person.role is not None:
            _d(child, "role", person.role)
        if person.main_signer is not None:
            _d(child, "mainSigner", _boolean(person.main_signer))

    _contact(admin, "customer", dcc.customer)
    issued = _issue_statement(dcc)
    _statements(admin, "statements", "statement", [*dcc.statements, *([issued] if issued else [])])

    results = _d(root, "measurementResults")
    for result in dcc.measurement_results:
        _measurement_result(results, result)
    return root


def build(dcc: m.Dcc, *, validate: bool = True) -> bytes:
    """The DCC 3.1.2 document of ``dcc`` (UTF-8 bytes), validated against the shipped schema
    unless ``validate=False``. Raises DccInvalid (a text missing a mandatory language, or —
    a bug — a document the schema refuses) or UnsupportedUnit."""
    root = build_tree(dcc)
    if validate:
        validate_tree(root)
    document: bytes = etree.tostring(
        root.getroottree(), xml_declaration=True, encoding="UTF-8", pretty_print=True
    )
    return document
