"""Parsing XML from outside without trusting it.

A DCC comes from another laboratory, an upload, a file share: it is parsed by lxml with entity
substitution off, no network, no DTD loading and libxml2's size limits on, and then refused if it
declares a DOCTYPE at all (a DCC never needs one; a DOCTYPE is how XXE and entity-expansion
attacks start). Input larger than ``max_bytes`` is refused before any parsing.
"""

from __future__ import annotations

import re

from lxml import etree

from metrology.errors import DccInvalid, DccUnsafe
from metrology.limits import MAX_DCC_BYTES

__all__ = ["MAX_DCC_BYTES", "parse_xml"]

_HTML = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S
)


def _parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers are not thread-safe.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = MAX_DCC_BYTES) -> etree._Element:
    """The root element of ``data``; raises DccUnsafe (too large, a DOCTYPE or entity, not
    well-formed) or DccInvalid (an HTML page)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DccUnsafe(f"expected the document's bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DccUnsafe(
            f"the document is {len(data)} bytes, more than the limit of {max_bytes} bytes",
            code="dcc.unsafe",
        )
    if not data.strip():
        raise DccUnsafe("the document is empty")
    if _HTML.match(data[:4096]):
        raise DccInvalid(
            "this is an HTML page, not a DCC XML document "
            "(a web page saved as .xml? download the certificate's XML itself)"
        )
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        message = str(exc)
        if "amplification" in message or "entit" in message.lower():
            raise DccUnsafe(
                f"entity declarations are refused (entity expansion): {message}"
            ) from exc
        raise DccUnsafe(f"not well-formed XML: {message}") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DccUnsafe(
            f"a DOCTYPE declaration ({tree.docinfo.doctype or 'internal subset'}) is refused: "
            "a DCC needs none, and DTDs carry external-entity (XXE) and entity-expansion attacks"
        )
    for _ in root.iter(etree.Entity):
        raise DccUnsafe("entity references are refused")
    return root
