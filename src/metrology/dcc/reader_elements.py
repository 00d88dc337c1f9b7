"""The reading of one DCC document's elements, shared by the readers of its parts: children by
name and with their document paths, strings, dates, texts (``dcc:textType``), and the list of
what is not extracted (:mod:`metrology.dcc.reader` reads the whole document).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from lxml import etree

from metrology.dcc import model as m
from metrology.dcc.schema import DCC_NS, SI_NS
from metrology.errors import DccInvalid

D = f"{{{DCC_NS}}}"
S = f"{{{SI_NS}}}"


class ElementReader:
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
            raise DccInvalid("the text is empty", path=path, line=line_of(element))
        return text


def line_of(element: etree._Element | None) -> int | None:
    line = getattr(element, "sourceline", None)
    return line if isinstance(line, int) else None


def required_element(element: etree._Element | None, name: str) -> etree._Element:
    if element is None:
        raise DccInvalid(f"dcc:{name} is missing", path=name)
    return element
