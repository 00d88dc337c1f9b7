"""Reading a DCC 3.1.2 document into :class:`metrology.dcc.model.Dcc`.

The document is parsed safely, validated against the shipped schema, then read. Numbers stay
the decimal text of the document; texts keep their languages. What the model does not hold
(formulas, embedded files, complex quantities, bivariate regions…) is listed in
``Dcc.not_extracted`` with its place, never dropped silently. The caller keeps the original
bytes; nothing here rewrites them.

Longer than 500 lines on purpose: one reader walks the schema's element tree top-down, a method per
element type; splitting it by section would split that one walk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from lxml import etree
from pydantic import ValidationError

from metrology.dcc import model as m
from metrology.dcc.safexml import MAX_DCC_BYTES, parse_xml
from metrology.dcc.schema import DCC_NS, SI_NS, check_root, validate_tree
from metrology.errors import DccInvalid

D = f"{{{DCC_NS}}}"
S = f"{{{SI_NS}}}"
T = TypeVar("T")
U = TypeVar("U", m.ExpandedUncertainty, m.CoverageInterval)

_EXPANDED = {
    "value": "uncertainty",
    "coverage_factor": "coverageFactor",
    "coverage_probability": "coverageProbability",
}
"""``si:expandedUnc``: the model's field → its child element."""
_INTERVAL = {
    "standard_uncertainty": "standardUnc",
    "minimum": "intervalMin",
    "maximum": "intervalMax",
    "coverage_probability": "coverageProbability",
}
"""``si:coverageInterval``: the model's field → its child element."""


class _Reader:
    """One document being read; collects what is not extracted."""

    def __init__(self) -> None:
        self.not_extracted: list[str] = []

    # -- helpers --------------------------------------------------------------------------

    def skip(self, path: str, what: str) -> None:
        self.not_extracted.append(f"{path}: {what}")

    @staticmethod
    def kids(element: etree._Element, name: str, ns: str = D) -> list[etree._Element]:
        return [child for child in element if child.tag == ns + name]

    @classmethod
    def numbered(
        cls, element: etree._Element | None, name: str, path: str, ns: str = D
    ) -> Iterator[tuple[etree._Element, str]]:
        """Each child ``name`` of ``element`` with its path in the document, ``PATH/NAME[i]``
        (1-based, as XPath counts); none when ``element`` is None (an optional list absent)."""
        if element is None:
            return
        for i, child in enumerate(cls.kids(element, name, ns), start=1):
            yield child, f"{path}/{name}[{i}]"

    @staticmethod
    def kid(element: etree._Element, name: str, ns: str = D) -> etree._Element | None:
        for child in element:
            if child.tag == ns + name:
                return child
        return None

    def string(self, element: etree._Element, name: str, ns: str = D) -> str | None:
        child = self.kid(element, name, ns)
        if child is None:
            return None
        text = (child.text or "").strip()
        return text or None

    def strings(self, element: etree._Element, name: str) -> tuple[str, ...]:
        return tuple(
            text for child in self.kids(element, name) if (text := (child.text or "").strip())
        )

    @staticmethod
    def ref_types(element: etree._Element) -> tuple[str, ...]:
        return tuple((element.get("refType") or "").split())

    @staticmethod
    def boolean(text: str | None) -> bool | None:
        if text is None:
            return None
        return text.strip() in ("true", "1")

    @staticmethod
    def date(text: str | None) -> dt.date | None:
        if text is None:
            return None
        # xs:date may carry a time zone ("2024-05-01Z", "2024-05-01+07:00"): the day is kept
        return dt.date.fromisoformat(text.strip()[:10])

    def text(self, element: etree._Element | None, path: str) -> m.Text | None:
        """A dcc:textType or the contents of a dcc:richContentType."""
        if element is None:
            return None
        contents = []
        for content in self.kids(element, "content"):
            value = (content.text or "").strip()
            if value:
                contents.append(m.LocalizedText(lang=content.get("lang"), text=value))
        for extra in ("file", "formula"):
            if self.kids(element, extra):
                self.skip(path, f"dcc:{extra} in a text")
        return m.Text(content=tuple(contents)) if contents else None

    def described(
        self, element: etree._Element, path: str, *, required: bool = True
    ) -> dict[str, Any]:
        """The fields of a :class:`m.Described`: name (``required`` or not), description and
        ``refType`` of ``element``."""
        name = self.kid(element, "name")
        return {
            "name": (self.required_text if required else self.text)(name, f"{path}/name"),
            "description": self.text(self.kid(element, "description"), f"{path}/description"),
            "ref_types": self.ref_types(element),
        }

    def required_text(self, element: etree._Element | None, path: str) -> m.Text:
        text = self.text(element, path)
        if text is None:
            raise DccInvalid("the text is empty", path=path, line=_line(element))
        return text

    # -- administrative data ----------------------------------------------------------------

    def identifications(
        self, element: etree._Element | None, path: str
    ) -> tuple[m.Identification, ...]:
        return tuple(
            m.Identification(
                issuer=self.string(ident, "issuer"),
                value=self.string(ident, "value") or "",
                name=self.text(self.kid(ident, "name"), f"{here}/name"),
            )
            for ident, here in self.numbered(element, "identification", path)
        )

    def location(self, element: etree._Element | None, path: str) -> m.Location | None:
        if element is None:
            return None
        fields: dict[str, Any] = {}
        names = {
            "street": "street",
            "streetNo": "street_no",
            "postOfficeBox": "post_office_box",
            "postCode": "post_code",
            "city": "city",
            "state": "state",
            "countryCode": "country_code",
        }
        for child in element:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name in names and names[name] not in fields and (child.text or "").strip():
                fields[names[name]] = (child.text or "").strip()
            elif name == "further" and "further" not in fields:
                further = self.text(child, f"{path}/further")
                if further is not None:
                    fields["further"] = further
            else:
                self.skip(f"{path}/{name}", "a repeated or unsupported location part")
        return m.Location(**fields) if fields else None

    def contact(self, element: etree._Element, path: str) -> dict[str, Any]:
        location = self.location(self.kid(element, "location"), f"{path}/location")
        if self.kid(element, "descriptionData") is not None:
            self.skip(path, "dcc:descriptionData")
        return {
            "name": self.required_text(self.kid(element, "name"), f"{path}/name"),
            "email": self.string(element, "eMail"),
            "phone": self.string(element, "phone"),
            "fax": self.string(element, "fax"),
            "location": location,
        }

    def software(self, element: etree._Element, path: str) -> tuple[m.Software, ...]:
        found = []
        for software, here in self.numbered(element, "software", path):
            if self.kid(software, "description") is not None:
                self.skip(here, "dcc:description")
            found.append(
                m.Software(
                    name=self.required_text(self.kid(software, "name"), f"{here}/name"),
                    release=self.string(software, "release") or "?",
                    type=self.string(software, "type"),
                )
            )
        return tuple(found)

    def items(self, element: etree._Element, path: str) -> tuple[m.Item, ...]:
        for extra in ("name", "equipmentClass", "description", "owner", "identifications"):
            if self.kid(element, extra) is not None:
                self.skip(path, f"dcc:{extra} of the item list")
        found = []
        for item, here in self.numbered(element, "item", path):
            for extra in ("equipmentClass", "installedSoftwares"):
                if self.kid(item, extra) is not None:
                    self.skip(here, f"dcc:{extra}")
            manufacturer = self.kid(item, "manufacturer")
            found.append(
                m.Item(
                    name=self.required_text(self.kid(item, "name"), f"{here}/name"),
                    description=self.text(self.kid(item, "description"), f"{here}/description"),
                    manufacturer=self.required_text(
                        self.kid(manufacturer, "name") if manufacturer is not None else None,
                        f"{here}/manufacturer/name",
                    ),
                    model=self.string(item, "model"),
                    identifications=self.identifications(
                        self.kid(item, "identifications"), f"{here}/identifications"
                    ),
                )
            )
        return tuple(found)

    def persons(self, element: etree._Element, path: str) -> tuple[m.ResponsiblePerson, ...]:
        found = []
        for person, here in self.numbered(element, "respPerson", path):
            contact = self.kid(person, "person")
            assert contact is not None  # required by the schema
            for flag in (
                "cryptElectronicSeal",
                "cryptElectronicSignature",
                "cryptElectronicTimeStamp",
            ):
                if self.kid(person, flag) is not None:
                    self.skip(here, f"dcc:{flag}")
            found.append(
                m.ResponsiblePerson(
                    name=self.required_text(self.kid(contact, "name"), f"{here}/person/name"),
                    email=self.string(contact, "eMail"),
                    role=self.string(person, "role"),
                    description=self.text(self.kid(person, "description"), f"{here}/description"),
                    main_signer=self.boolean(self.string(person, "mainSigner")),
                )
            )
        return tuple(found)

    def statement(self, element: etree._Element, path: str) -> m.Statement:
        conformity: tuple[str, ...] = ()
        single = self.string(element, "conformity")
        listed = self.string(element, "conformityXMLList")
        if single is not None:
            conformity = (single,)
        elif listed is not None:
            conformity = tuple(listed.split())
        quantities: tuple[m.Quantity, ...] = ()
        texts: tuple[m.Text, ...] = ()
        data = self.kid(element, "data")
        if data is not None:
            quantities, lists, texts = self.data(data, f"{path}/data")
            if lists:
                self.skip(f"{path}/data", "dcc:list in a statement")
        for extra in ("respAuthority", "nonSIDefinition", "nonSIUnit", "location"):
            if self.kid(element, extra) is not None:
                self.skip(path, f"dcc:{extra}")
        return m.Statement(
            ref_types=self.ref_types(element),
            countries=self.strings(element, "countryCodeISO3166_1"),
            convention=self.string(element, "convention"),
            traceable=self.boolean(self.string(element, "traceable")),
            norms=self.strings(element, "norm"),
            references=self.strings(element, "reference"),
            declaration=self.text(self.kid(element, "declaration"), f"{path}/declaration"),
            valid=self.boolean(self.string(element, "valid")),
            date=self.date(self.string(element, "date")),
            period=self.string(element, "period"),
            conformity=conformity,
            quantities=quantities,
            texts=texts,
        )

    def statements(
        self, element: etree._Element | None, path: str, name: str
    ) -> tuple[m.Statement, ...]:
        return tuple(
            self.statement(child, here) for child, here in self.numbered(element, name, path)
        )

    # -- D-SI -------------------------------------------------------------------------------

    def uncertainty(
        self, element: etree._Element | None, model: type[U], tags: dict[str, str]
    ) -> U | None:
        """An ``si:expandedUnc`` or ``si:coverageInterval``: ``model``'s fields from the child
        elements ``tags`` names (each required: an empty text when missing, which the model
        refuses), and the optional ``si:distribution``."""
        if element is None:
            return None
        values = {field: self.string(element, tag, S) or "" for field, tag in tags.items()}
        return model(**values, distribution=self.string(element, "distribution", S))

    def expanded(self, element: etree._Element | None) -> m.ExpandedUncertainty | None:
        return self.uncertainty(element, m.ExpandedUncertainty, _EXPANDED)

    def interval(self, element: etree._Element | None) -> m.CoverageInterval | None:
        return self.uncertainty(element, m.CoverageInterval, _INTERVAL)

    def real(
        self,
        element: etree._Element,
        path: str,
        unit: str | None = None,
        expanded: m.ExpandedUncertainty | None = None,
        interval: m.CoverageInterval | None = None,
    ) -> m.Value:
        own_unit = self.string(element, "unit", S) or unit
        if own_unit is None:
            raise DccInvalid("a value without a unit", path=path, line=_line(element))
        own_expanded = self.expanded(self.kid(element, "expandedUnc", S))
        own_interval = self.interval(self.kid(element, "coverageInterval", S))
        if own_expanded is None and own_interval is None:
            own_expanded, own_interval = expanded, interval
        time = self.string(element, "dateTime", S)
        return m.Value(
            value=self.string(element, "value", S) or "",
            unit=own_unit,
            label=self.string(element, "label", S),
            date_time=dt.datetime.fromisoformat(time) if time else None,
            uncertainty=own_expanded,
            coverage_interval=own_interval,
        )

    def xml_list(self, element: etree._Element, path: str) -> tuple[m.Value, ...]:
        """si:realListXMLList: whitespace-separated columns; a column of one entry applies to
        every value."""

        def column(name: str, parent: etree._Element | None = element) -> list[str] | None:
            if parent is None:
                return None
            text = self.string(parent, name, S)
            return text.split() if text is not None else None

        values = column("valueXMLList") or []
        count = len(values)

        def spread(entries: list[str] | None, what: str) -> list[str | None]:
            if entries is None:
                return [None] * count
            if len(entries) == 1:
                return [entries[0]] * count
            if len(entries) != count:
                raise DccInvalid(
                    f"{count} values but {len(entries)} entries in {what}",
                    path=path,
                    line=_line(element),
                )
            return [*entries]

        def spread_of(tag: str, parent: etree._Element | None = element) -> list[str | None]:
            return spread(column(f"{tag}XMLList", parent), f"si:{tag}XMLList")

        def columns(name: str, tags: dict[str, str]) -> dict[str, list[str | None]] | None:
            """The columns of the uncertainty list ``name`` (``tags`` and the distribution) by
            the model's field, or None when the list is absent."""
            parent = self.kid(element, name, S)
            found = {
                field: spread_of(tag, parent)
                for field, tag in (*tags.items(), ("distribution", "distribution"))
            }
            return found if parent is not None else None

        unit_list = spread_of("unit")
        labels = spread_of("label")
        times = spread_of("dateTime")
        unc = columns("expandedUncXMLList", _EXPANDED)
        ci = columns("coverageIntervalXMLList", _INTERVAL)
        for region in ("ellipsoidalRegionXMLList", "rectangularRegionXMLList"):
            if self.kid(element, region, S) is not None:
                self.skip(path, f"si:{region}")
        found = []
        for i, value in enumerate(values):
            found.append(
                m.Value(
                    value=value,
                    unit=unit_list[i] or "",
                    label=labels[i],
                    date_time=dt.datetime.fromisoformat(times[i]) if times[i] else None,  # type: ignore[arg-type]
                    uncertainty=m.ExpandedUncertainty(**{k: v[i] for k, v in unc.items()})
                    if unc is not None
                    else None,
                    coverage_interval=m.CoverageInterval(**{k: v[i] for k, v in ci.items()})
                    if ci is not None
                    else None,
                )
            )
        return tuple(found)

    def real_list(self, element: etree._Element, path: str) -> tuple[m.Value, ...]:
        """si:realList: reals sharing the list's unit and uncertainty where they give none."""
        unit = self.string(element, "listUnit", S)
        shared = self.kid(element, "listUnivariateUnc", S)
        expanded = self.expanded(self.kid(shared, "expandedUnc", S)) if shared is not None else None
        interval = (
            self.interval(self.kid(shared, "coverageInterval", S)) if shared is not None else None
        )
        for region in ("ellipsoidalRegion", "rectangularRegion"):
            if self.kid(element, region, S) is not None:
                self.skip(path, f"si:{region}")
        return tuple(
            self.real(real, here, unit, expanded, interval)
            for real, here in self.numbered(element, "real", path, S)
        )

    def si_list(self, element: etree._Element, path: str) -> tuple[m.Value, ...]:
        """si:list: its real lists (and nested lists), flattened in order."""
        found: list[m.Value] = []
        for i, child in enumerate(element, start=1):
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name == "realList":
                found += self.real_list(child, f"{path}/realList[{i}]")
            elif name == "list":
                found += self.si_list(child, f"{path}/list[{i}]")
            elif name == "complexList":
                self.skip(f"{path}/complexList[{i}]", "si:complexList")
        return tuple(found)

    def representation(self, element: etree._Element, path: str) -> tuple[m.Value, ...] | None:
        name = etree.QName(element).localname
        if name == "real":
            return (self.real(element, path),)
        if name == "realListXMLList":
            return self.xml_list(element, path)
        if name == "list":
            return self.si_list(element, path)
        if name == "realList":
            return self.real_list(element, path)
        self.skip(path, f"si:{name}")
        return None

    def quantity(self, element: etree._Element, path: str) -> m.Quantity | None:
        representations: list[tuple[m.Value, ...]] = []
        for child in element:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if child.tag == S + "hybrid":
                for i, part in enumerate(child, start=1):
                    if isinstance(part.tag, str):
                        found = self.representation(
                            part, f"{path}/hybrid/{etree.QName(part).localname}[{i}]"
                        )
                        if found:
                            representations.append(found)
            elif child.tag.startswith(S):
                found = self.representation(child, f"{path}/{name}")
                if found:
                    representations.append(found)
            elif name == "noQuantity":
                self.skip(path, "dcc:noQuantity (a text instead of a value)")
            elif name in (
                "relativeUncertainty",
                "usedMethods",
                "usedSoftware",
                "measuringEquipments",
            ):
                self.skip(path, f"dcc:{name}")
        if not representations:
            return None
        first, others = representations[0], representations[1:]
        hybrid = []
        for index, other in enumerate(others, start=2):
            if len(other) == len(first):
                hybrid.append(other)
            else:
                self.skip(
                    path, f"hybrid representation {index} has {len(other)} values, not {len(first)}"
                )
        return m.Quantity(
            **self.described(element, path, required=False),
            values=first,
            hybrid=tuple(hybrid),
            influence_conditions=self.conditions(self.kid(element, "influenceConditions"), path),
            metadata=self.statements(self.kid(element, "measurementMetaData"), path, "metaData"),
        )

    def data(
        self, element: etree._Element, path: str
    ) -> tuple[tuple[m.Quantity, ...], tuple[m.QuantityList, ...], tuple[m.Text, ...]]:
        quantities: list[m.Quantity] = []
        lists: list[m.QuantityList] = []
        texts: list[m.Text] = []
        counts: dict[str, int] = {}
        for child in element:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            counts[name] = counts.get(name, 0) + 1
            here = f"{path}/{name}[{counts[name]}]"
            if name == "quantity":
                quantity = self.quantity(child, here)
                if quantity is not None:
                    quantities.append(quantity)
            elif name == "list":
                table = self.table(child, here)
                if table is not None:
                    lists.append(table)
            elif name == "text":
                text = self.text(child, here)
                if text is not None:
                    texts.append(text)
            else:
                self.skip(here, f"dcc:{name}")
        return tuple(quantities), tuple(lists), tuple(texts)

    def table(self, element: etree._Element, path: str) -> m.QuantityList | None:
        quantities: list[m.Quantity] = []
        lists: list[m.QuantityList] = []
        for child, here in self.numbered(element, "quantity", path):
            quantity = self.quantity(child, here)
            if quantity is not None:
                quantities.append(quantity)
        for child, here in self.numbered(element, "list", path):
            table = self.table(child, here)
            if table is not None:
                lists.append(table)
        for extra in (
            "dateTime",
            "dateTimeXMLList",
            "usedMethods",
            "usedSoftware",
            "measuringEquipments",
            "measurementMetaData",
        ):
            if self.kid(element, extra) is not None:
                self.skip(path, f"dcc:{extra} of a list")
        if not quantities and not lists:
            return None
        return m.QuantityList(
            **self.described(element, path, required=False),
            quantities=tuple(quantities),
            lists=tuple(lists),
            influence_conditions=self.conditions(self.kid(element, "influenceConditions"), path),
        )

    def conditions(
        self, element: etree._Element | None, path: str
    ) -> tuple[m.InfluenceCondition, ...]:
        found = []
        for condition, here in self.numbered(element, "influenceCondition", path):
            if self.kid(condition, "certificate") is not None:
                self.skip(here, "dcc:certificate")
            data = self.kid(condition, "data")
            quantities, lists, texts = (
                self.data(data, f"{here}/data") if data is not None else ((), (), ())
            )
            if lists:
                self.skip(f"{here}/data", "dcc:list in an influence condition")
            if not quantities and not texts:
                self.skip(here, "an influence condition with no value or text the model holds")
                continue
            found.append(
                m.InfluenceCondition(
                    **self.described(condition, here),
                    status=self.string(condition, "status"),
                    quantities=quantities,
                    texts=texts,
                )
            )
        return tuple(found)

    # -- measurement results ----------------------------------------------------------------

    def equipment(
        self, element: etree._Element | None, path: str
    ) -> tuple[m.MeasuringEquipment, ...]:
        found = []
        for equipment, here in self.numbered(element, "measuringEquipment", path):
            certificate = self.kid(equipment, "certificate")
            manufacturer = self.kid(equipment, "manufacturer")
            for extra in ("equipmentClass", "measuringEquipmentQuantities"):
                if self.kid(equipment, extra) is not None:
                    self.skip(here, f"dcc:{extra}")
            found.append(
                m.MeasuringEquipment(
                    **self.described(equipment, here),
                    certificate=m.CertificateReference(
                        referral=self.required_text(
                            self.kid(certificate, "referral"), f"{here}/certificate/referral"
                        ),
                        referral_id=self.string(certificate, "referralID") or "",
                        procedure=self.string(certificate, "procedure") or "",
                        value=self.string(certificate, "value") or "",
                    )
                    if certificate is not None
                    else None,
                    manufacturer=self.text(
                        self.kid(manufacturer, "name"), f"{here}/manufacturer/name"
                    )
                    if manufacturer is not None
                    else None,
                    model=self.string(equipment, "model"),
                    identifications=self.identifications(
                        self.kid(equipment, "identifications"), f"{here}/identifications"
                    ),
                )
            )
        return tuple(found)

    def methods(self, element: etree._Element | None, path: str) -> tuple[m.UsedMethod, ...]:
        return tuple(
            m.UsedMethod(
                **self.described(method, here),
                norms=self.strings(method, "norm"),
                references=self.strings(method, "reference"),
            )
            for method, here in self.numbered(element, "usedMethod", path)
        )

    def measurement_result(self, element: etree._Element, path: str) -> m.MeasurementResult:
        results = []
        for result, here in self.numbered(self.kid(element, "results"), "result", path):
            data = self.kid(result, "data")
            assert data is not None  # required by the schema
            quantities, lists, texts = self.data(data, here)
            if not (quantities or lists or texts):
                self.skip(here, "a result with nothing the model holds")
                continue
            results.append(
                m.Result(
                    **self.described(result, here),
                    quantities=quantities,
                    lists=lists,
                    texts=texts,
                )
            )
        if not results:
            raise DccInvalid(
                "no result the model can hold "
                "(every value is complex, constant, a formula or a file)",
                path=path,
                line=_line(element),
            )
        if self.kid(element, "usedSoftware") is not None:
            self.skip(path, "dcc:usedSoftware")
        return m.MeasurementResult(
            **self.described(element, path),
            used_methods=self.methods(self.kid(element, "usedMethods"), f"{path}/usedMethods"),
            measuring_equipments=self.equipment(
                self.kid(element, "measuringEquipments"), f"{path}/measuringEquipments"
            ),
            influence_conditions=self.conditions(self.kid(element, "influenceConditions"), path),
            results=tuple(results),
            metadata=self.statements(self.kid(element, "measurementMetaData"), path, "metaData"),
        )

    # -- the certificate --------------------------------------------------------------------

    def certificate(self, root: etree._Element) -> m.Dcc:
        admin = _required(self.kid(root, "administrativeData"), "administrativeData")
        core = _required(self.kid(admin, "coreData"), "coreData")
        lab = _required(self.kid(admin, "calibrationLaboratory"), "calibrationLaboratory")
        contact = _required(self.kid(lab, "contact"), "calibrationLaboratory/contact")
        customer = _required(self.kid(admin, "customer"), "customer")
        statements = list(
            self.statements(
                self.kid(admin, "statements"), "administrativeData/statements", "statement"
            )
        )
        issue_date = None
        for statement in statements:
            if m.ISSUE_DATE_REF_TYPE in statement.ref_types and statement.date is not None:
                issue_date = statement.date
                statements.remove(statement)
                break
        if self.kid(core, "previousReport") is not None:
            self.skip("coreData", "dcc:previousReport")
        for ring in ("comment", "document"):
            element = self.kid(root, ring)
            if element is not None and not (ring == "comment" and _only_signatures(element)):
                self.skip(ring, f"dcc:{ring}")
        results = self.kids(
            _required(self.kid(root, "measurementResults"), "measurementResults"),
            "measurementResult",
        )
        return m.Dcc(
            unique_identifier=self.string(core, "uniqueIdentifier") or "",
            country_code=self.string(core, "countryCodeISO3166_1") or "",
            used_languages=self.strings(core, "usedLangCodeISO639_1"),
            mandatory_languages=self.strings(core, "mandatoryLangCodeISO639_1"),
            identifications=self.identifications(
                self.kid(core, "identifications"), "coreData/identifications"
            ),
            receipt_date=self.date(self.string(core, "receiptDate")),
            begin_performance_date=self.date(self.string(core, "beginPerformanceDate")),
            end_performance_date=self.date(self.string(core, "endPerformanceDate")),
            performance_location=self.string(core, "performanceLocation"),
            issue_date=issue_date,
            software=self.software(
                _required(self.kid(admin, "dccSoftware"), "dccSoftware"), "dccSoftware"
            ),
            items=self.items(_required(self.kid(admin, "items"), "items"), "items"),
            laboratory=m.Laboratory(
                code=self.string(lab, "calibrationLaboratoryCode"),
                **self.contact(contact, "calibrationLaboratory/contact"),
            ),
            responsible_persons=self.persons(
                _required(self.kid(admin, "respPersons"), "respPersons"), "respPersons"
            ),
            customer=m.Contact(**self.contact(customer, "customer")),
            statements=tuple(statements),
            measurement_results=tuple(
                self.measurement_result(element, f"measurementResult[{i}]")
                for i, element in enumerate(results, start=1)
            ),
            not_extracted=tuple(self.not_extracted),
        )


def _line(element: etree._Element | None) -> int | None:
    line = getattr(element, "sourceline", None)
    return line if isinstance(line, int) else None


def _required(element: etree._Element | None, name: str) -> etree._Element:
    if element is None:
        raise DccInvalid(f"dcc:{name} is missing", path=name)
    return element


def _only_signatures(comment: etree._Element) -> bool:
    from metrology.dcc.schema import DS_NS

    children = [child for child in comment if isinstance(child.tag, str)]
    return bool(children) and all(child.tag == f"{{{DS_NS}}}Signature" for child in children)


def _wrap(work: Callable[[], T]) -> T:
    try:
        return work()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DccInvalid(
            f"{first['msg']} ({where}: {first.get('input')!r})",
            code="dcc.invalid",
        ) from exc
    except ValueError as exc:  # a date or date-time the model cannot hold
        raise DccInvalid(str(exc)) from exc


def read(root: etree._Element) -> m.Dcc:
    """The model of an already parsed and validated document."""
    check_root(root)
    return _wrap(lambda: _Reader().certificate(root))


def parse(xml_bytes: bytes, *, validate: bool = True, max_bytes: int = MAX_DCC_BYTES) -> m.Dcc:
    """Read a DCC 3.1.2 document (its bytes) into the model.

    Raises DccUnsafe (refused before parsing), DccInvalid (the schema's message and line, or a
    value the model cannot hold). ``validate=False`` skips the schema (for a document already
    validated); the bytes are never changed.
    """
    root = parse_xml(xml_bytes, max_bytes=max_bytes)
    if validate:
        validate_tree(root)
    return read(root)
