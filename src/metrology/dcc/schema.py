"""Offline validation against the shipped DCC 3.1.2 and D-SI 2.1.0 schemas.

The DCC schema imports D-SI from ``https://ptb.de/si/v2.1.0/SI_Format.xsd``; every namespace is
mapped to the copy in ``schemas/`` and the schema loader runs in xmlschema's ``sandbox`` mode
(only files under that folder), so validation never touches the network. The W3C XML-signature
schema is loaded too: a signed DCC carries its ``ds:Signature`` in ``dcc:comment``, whose
wildcard is processed strictly.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

import xmlschema
from lxml import etree

from metrology.dcc.safexml import MAX_DCC_BYTES, parse_xml
from metrology.errors import DccInvalid

SCHEMAS = Path(__file__).resolve().parent / "schemas"
DCC_XSD = SCHEMAS / "dcc-3.1.2.xsd"
SI_XSD = SCHEMAS / "SI_Format-2.1.0.xsd"
XMLDSIG_XSD = SCHEMAS / "xmldsig-core-schema.xsd"

DCC_NS = "https://ptb.de/dcc"
SI_NS = "https://ptb.de/si"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SCHEMA_VERSION = "3.1.2"
ROOT_TAG = f"{{{DCC_NS}}}digitalCalibrationCertificate"

LOCATIONS = {
    SI_NS: SI_XSD.as_uri(),
    DS_NS: XMLDSIG_XSD.as_uri(),
}
"""Every namespace the DCC schema (or a signed DCC) needs, mapped to the shipped copy."""

_lock = threading.Lock()


@cache
def _schema() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(
        str(DCC_XSD),
        locations=LOCATIONS,
        allow="sandbox",
        defuse="always",
        use_fallback=False,
    )


def dcc_schema() -> xmlschema.XMLSchema10:
    """The DCC 3.1.2 schema, loaded once (about a second) from the shipped files."""
    with _lock:
        return _schema()


def _where(element: object) -> int | None:
    line = getattr(element, "sourceline", None)
    return line if isinstance(line, int) else None


def check_root(root: etree._Element) -> None:
    """Refuse a document that is not a DCC 3.1.2 at all, with a reason a person understands
    (before the schema's more technical one)."""
    if root.tag != ROOT_TAG:
        name = etree.QName(root).localname if isinstance(root.tag, str) else str(root.tag)
        namespace = etree.QName(root).namespace if isinstance(root.tag, str) else None
        if name.lower() == "html":
            raise DccInvalid("this is an HTML page, not a DCC XML document", line=_where(root))
        raise DccInvalid(
            f"the root element is <{name}>"
            + (f" in namespace {namespace}" if namespace else " without a namespace")
            + f", not <digitalCalibrationCertificate> in {DCC_NS}: this is not a DCC",
            line=_where(root),
        )
    version = root.get("schemaVersion")
    if version != SCHEMA_VERSION:
        raise DccInvalid(
            f"schemaVersion is {version!r}: this library reads and validates DCC "
            f"{SCHEMA_VERSION} only",
            line=_where(root),
        )


def validate_tree(root: etree._Element) -> None:
    """Validate a parsed document; raises DccInvalid with the schema's first message, its line
    and path."""
    check_root(root)
    schema = dcc_schema()
    # The instance is already parsed (safely); "none": it may not point the validator anywhere.
    resource = xmlschema.XMLResource(root, allow="none", defuse="always")
    error = next(iter(schema.iter_errors(resource, use_location_hints=False)), None)
    if error is not None:
        reason = str(error.reason or error.message)
        if isinstance(error.obj, str) and len(error.obj) <= 80:
            reason += f" (the value is {error.obj!r})"
        line = error.sourceline if isinstance(error.sourceline, int) else None
        raise DccInvalid(reason, line=line, path=error.path)


def validate(xml_bytes: bytes, *, max_bytes: int = MAX_DCC_BYTES) -> None:
    """Check that ``xml_bytes`` is a valid DCC 3.1.2 document; raises DccUnsafe (refused before
    parsing) or DccInvalid (with the schema's own message and line)."""
    validate_tree(parse_xml(xml_bytes, max_bytes=max_bytes))
