"""Reading the administrative data of a DCC document: identifications, contacts and their
locations, the DCC software, the calibration items, the responsible persons.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from metrology.dcc import model as m
from metrology.dcc.reader_elements import ElementReader


class AdministrativeReader(ElementReader):
    """The administrative data of one document being read."""

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
