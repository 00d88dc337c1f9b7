"""Reading a DCC 3.1.2 document into :class:`metrology.dcc.model.Dcc`.

The document is parsed safely, validated against the shipped schema, then read. Numbers stay
the decimal text of the document; texts keep their languages. What the model does not hold
(formulas, embedded files, complex quantities, bivariate regions…) is listed in
``Dcc.not_extracted`` with its place, never dropped silently. The caller keeps the original
bytes; nothing here rewrites them.

One reader walks the schema's element tree top-down, a method per element type. Its element
helpers, the D-SI values and the administrative data are base classes of their own
(:mod:`metrology.dcc.reader_elements`, :mod:`metrology.dcc.reader_si`,
:mod:`metrology.dcc.reader_administrative`); the statements, data, measurement results and the
certificate, which call each other, are here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from lxml import etree
from pydantic import ValidationError

from metrology.dcc import model as m
from metrology.dcc.reader_administrative import AdministrativeReader
from metrology.dcc.reader_elements import S, line_of, required_element
from metrology.dcc.reader_si import SiValueReader
from metrology.dcc.safexml import MAX_DCC_BYTES, parse_xml
from metrology.dcc.schema import check_root, validate_tree
from metrology.errors import DccInvalid

T = TypeVar("T")


class _Reader(AdministrativeReader, SiValueReader):
    """One document being read; collects what is not extracted."""

    # -- statements and data (quantities, lists, influence conditions) ---------------------

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
                line=line_of(element),
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
        admin = required_element(self.kid(root, "administrativeData"), "administrativeData")
        core = required_element(self.kid(admin, "coreData"), "coreData")
        lab = required_element(self.kid(admin, "calibrationLaboratory"), "calibrationLaboratory")
        contact = required_element(self.kid(lab, "contact"), "calibrationLaboratory/contact")
        customer = required_element(self.kid(admin, "customer"), "customer")
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
            required_element(self.kid(root, "measurementResults"), "measurementResults"),
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
                required_element(self.kid(admin, "dccSoftware"), "dccSoftware"), "dccSoftware"
            ),
            items=self.items(required_element(self.kid(admin, "items"), "items"), "items"),
            laboratory=m.Laboratory(
                code=self.string(lab, "calibrationLaboratoryCode"),
                **self.contact(contact, "calibrationLaboratory/contact"),
            ),
            responsible_persons=self.persons(
                required_element(self.kid(admin, "respPersons"), "respPersons"), "respPersons"
            ),
            customer=m.Contact(**self.contact(customer, "customer")),
            statements=tuple(statements),
            measurement_results=tuple(
                self.measurement_result(element, f"measurementResult[{i}]")
                for i, element in enumerate(results, start=1)
            ),
            not_extracted=tuple(self.not_extracted),
        )


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
