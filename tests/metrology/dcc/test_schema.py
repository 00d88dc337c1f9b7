"""Offline validation against the shipped DCC 3.1.2 / D-SI 2.1.0 schemas, with the schema's own
message and line; what is refused, and that no network is touched."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from metrology import dcc
from metrology.dcc import schema
from tests.metrology.dcc import samples
from tests.metrology.dcc.conftest import DATA


@pytest.mark.parametrize("name", sorted(samples.ALL))
def test_every_built_document_validates(name: str) -> None:
    dcc.validate(dcc.build(samples.ALL[name]()))


def test_the_hand_written_document_validates() -> None:
    dcc.validate((DATA / "thermometer-handwritten.xml").read_bytes())


def test_schemas_and_licence_ship_in_the_package() -> None:
    shipped = resources.files("metrology.dcc") / "schemas"
    names = {entry.name for entry in shipped.iterdir()}
    assert {
        "dcc-3.1.2.xsd",
        "SI_Format-2.1.0.xsd",
        "xmldsig-core-schema.xsd",
        "COPYING.LESSER",
        "README.md",
    } <= names
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (shipped / "COPYING.LESSER").read_text()
    assert 'version="3.1.2"' in (shipped / "dcc-3.1.2.xsd").read_text()


def test_every_namespace_maps_to_a_shipped_file() -> None:
    for location in schema.LOCATIONS.values():
        assert location.startswith("file://")
        assert location.startswith(schema.SCHEMAS.as_uri())


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every attempt to open a connection or resolve a name is recorded and refused."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    schema._schema.cache_clear()  # load the schemas again, under the guard
    yield attempts
    schema._schema.cache_clear()


def test_validation_touches_no_network(no_network: list[Any]) -> None:
    document = dcc.build(samples.single())
    # The document names the remote schema (xsi:schemaLocation) and the DCC schema imports
    # D-SI from https://ptb.de/si/...: both must be served from the shipped files.
    assert b"https://ptb.de/dcc/v3.1.2/dcc.xsd" in document
    assert "https://ptb.de/si/v2.1.0/SI_Format.xsd" in schema.DCC_XSD.read_text()
    dcc.validate(document)
    dcc.validate((DATA / "thermometer-handwritten.xml").read_bytes())
    assert no_network == []


def test_the_guard_would_see_a_connection(no_network: list[Any]) -> None:
    with pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("127.0.0.1", 9))
    assert len(no_network) == 1


@pytest.mark.parametrize(
    "page",
    [
        b"<!DOCTYPE html>\n<html><head><title>DCC</title></head><body><p>DCC<br></body></html>",
        b"<html><body>Saved from the portal</body></html>",
        b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
        b"  <!-- saved --> <HTML lang='vi'><body></body></HTML>",
    ],
)
def test_an_html_page_saved_as_xml_is_refused_as_such(page: bytes) -> None:
    with pytest.raises(dcc.DccInvalid, match="HTML page, not a DCC"):
        dcc.validate(page)


def test_well_formed_xml_that_is_not_a_dcc_is_refused() -> None:
    with pytest.raises(dcc.DccInvalid) as caught:
        dcc.validate(
            b'<?xml version="1.0"?>\n<invoice xmlns="urn:example"><total>3</total></invoice>'
        )
    assert "root element is <invoice> in namespace urn:example" in str(caught.value)
    assert "not a DCC" in str(caught.value)
    assert caught.value.line == 2


def test_another_schema_version_is_refused_with_the_version() -> None:
    document = dcc.build(samples.single()).replace(
        b'schemaVersion="3.1.2"', b'schemaVersion="3.2.0"'
    )
    with pytest.raises(dcc.DccInvalid, match=r"schemaVersion is '3\.2\.0'.*DCC 3\.1\.2 only"):
        dcc.validate(document)


def _line_of(document: bytes, needle: bytes) -> int:
    return document[: document.index(needle)].count(b"\n") + 1


def test_schema_message_and_line_for_a_bad_value() -> None:
    document = dcc.build(samples.zener())
    broken = document.replace(b"<si:value>9.99999921</si:value>", b"<si:value>ten</si:value>")
    with pytest.raises(dcc.DccInvalid) as caught:
        dcc.validate(broken)
    error = caught.value
    assert error.line == _line_of(broken, b"<si:value>ten")
    assert "ten" in error.reason  # the schema's own words about the value
    assert error.path is not None and "value" in error.path
    assert f"line {error.line}" in str(error)


def test_schema_message_for_a_missing_element() -> None:
    document = dcc.build(samples.single())
    start = document.index(b"<dcc:uniqueIdentifier>")
    end = document.index(b"</dcc:uniqueIdentifier>") + len(b"</dcc:uniqueIdentifier>")
    with pytest.raises(dcc.DccInvalid) as caught:
        dcc.validate(document[:start] + document[end:])
    assert "uniqueIdentifier" in caught.value.reason
    assert caught.value.line is not None


def test_an_unknown_element_is_refused() -> None:
    document = dcc.build(samples.single()).replace(
        b"<dcc:model>732C</dcc:model>", b"<dcc:model>732C</dcc:model><dcc:colour>red</dcc:colour>"
    )
    with pytest.raises(dcc.DccInvalid, match="colour"):
        dcc.validate(document)


def test_messages_in_english_and_vietnamese() -> None:
    with pytest.raises(dcc.DccInvalid) as caught:
        dcc.validate(b"<html><body/></html>")
    assert caught.value.message("en").startswith("not a valid DCC 3.1.2 document")
    assert caught.value.message("vi").startswith("không phải tài liệu DCC 3.1.2 hợp lệ")
    assert "HTML page" in caught.value.message("vi")  # the detail stays as produced
