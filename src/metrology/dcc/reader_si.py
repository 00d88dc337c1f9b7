"""Reading the D-SI values of a DCC document: ``si:real`` and its lists (``si:realList``,
``si:realListXMLList``, ``si:list``) with their units, expanded uncertainties and coverage
intervals.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from lxml import etree

from metrology.dcc import model as m
from metrology.dcc.reader_elements import ElementReader, S, line_of
from metrology.errors import DccInvalid

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


class SiValueReader(ElementReader):
    """The D-SI values of one document being read."""

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
            raise DccInvalid("a value without a unit", path=path, line=line_of(element))
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
                    line=line_of(element),
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
