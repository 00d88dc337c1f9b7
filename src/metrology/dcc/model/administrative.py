"""The administrative data of the DCC model: identifications, locations, contacts, the
laboratory, responsible persons, software and the calibrated item.
"""

from __future__ import annotations

from typing import Protocol, Self

from pydantic import Field, model_validator

from metrology._common import from_attributes
from metrology.dcc.model.fields import Country, FrozenModel, IdentificationIssuer, SoftwareType, Str
from metrology.dcc.model.text import Text


class Identification(FrozenModel):
    """An identifier of an item, an order, a piece of equipment (``dcc:identification``)."""

    issuer: IdentificationIssuer
    value: Str
    name: Text | None = None


class Location(FrozenModel):
    """An address (``dcc:location``); at least one part is given."""

    street: Str | None = None
    street_no: Str | None = None
    post_office_box: Str | None = None
    post_code: Str | None = None
    city: Str | None = None
    state: Str | None = None
    country_code: Country | None = None
    further: Text | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Location:
        if all(value is None for value in self.__dict__.values()):
            raise ValueError("a location needs at least one part (city, country_code, …)")
        return self

    @classmethod
    def of(cls, party: object) -> Location:
        """The address of a party (a lab's config, a certificate's party): its attributes named
        as this model's fields (``street``, ``city``, ``country_code``, …); those it lacks are
        left out."""
        return cls.model_validate(party, from_attributes=True)


class ContactSource(Protocol):
    """What a contact is built from: a ``name``, and attributes named as the contact's other
    fields (``email``, ``phone``, a laboratory's ``code``) and as :class:`Location`'s."""

    @property
    def name(self) -> str: ...


class Contact(FrozenModel):
    """A customer or a laboratory's contact (``dcc:contactType``: name, e-mail and location
    are required by the schema)."""

    name: Text
    email: Str
    phone: Str | None = None
    fax: Str | None = None
    location: Location

    @classmethod
    def of(cls, party: ContactSource) -> Self:
        """A party's name (language-neutral), its address, and its attributes named as this
        model's other fields (e-mail, phone, a laboratory's code)."""
        return from_attributes(cls, party, name=Text.of(party.name), location=Location.of(party))


class Laboratory(Contact):
    """The calibration laboratory: its contact and its code (an accreditation number,
    ``dcc:calibrationLaboratoryCode``)."""

    code: Str | None = None


class ResponsiblePerson(FrozenModel):
    """A person responsible for the certificate (``dcc:respPerson``)."""

    name: Text
    email: Str | None = None
    role: Str | None = None
    description: Text | None = None
    main_signer: bool | None = None


class Software(FrozenModel):
    """Software that produced the DCC (``dcc:software``)."""

    name: Text
    release: Str
    type: SoftwareType | None = None


def etalon_software() -> tuple[Software, ...]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("etalon-edge")
    except PackageNotFoundError:  # running from a source tree without an install
        release = "0"
    return (Software(name=Text.of("etalon"), release=release, type="application"),)


class Item(FrozenModel):
    """A calibrated item (``dcc:item``)."""

    name: Text
    description: Text | None = None
    manufacturer: Text
    model: Str | None = None
    identifications: tuple[Identification, ...] = Field(..., min_length=1)

    @property
    def serial_number(self) -> str | None:
        """The manufacturer's identification named as a serial number (any language), else
        the first identification the manufacturer issued."""
        by_manufacturer = [i for i in self.identifications if i.issuer == "manufacturer"]
        for identification in by_manufacturer:
            names = identification.name.content if identification.name else ()
            if any(word in n.text.lower() for n in names for word in ("serial", "seri", "s/n")):
                return identification.value
        return by_manufacturer[0].value if by_manufacturer else None
