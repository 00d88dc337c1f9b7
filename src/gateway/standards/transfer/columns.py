"""The CSV columns and the one-cell text forms of channel links and traceability chains,
which import and export share."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from gateway.standards.models import (
    ChannelLink,
    TraceabilityNode,
)

STANDARD_VALUE_COLUMNS = ("id", "kind", "description", "nominal", "unit")
"""A standard's identity and value, the columns every standards CSV starts with (the
import/export file here, the API's listing)."""
STANDARD_COLUMNS = [
    *STANDARD_VALUE_COLUMNS,
    "manufacturer",
    "model",
    "serial",
    "owner_lab",
    "tolerance",
    "tolerance_around",
    "status",
    "channels",
    "certificate_model",
    "monitor_model",
    "period_s",
    "baseline_start",
    "baseline_end",
]
_ANALYSIS_COLUMNS = (
    "certificate_model",
    "monitor_model",
    "period_s",
    "baseline_start",
    "baseline_end",
)
CERTIFICATE_VALUE_COLUMNS = (
    "standard",
    "number",
    "issuer",
    "calibration_date",
    "due_date",
    "value",
    "expanded_uncertainty",
    "coverage_factor",
)
"""A certificate's identity and value, the columns every certificate CSV starts with (the
import/export file here, the API's listing)."""
CERTIFICATE_COLUMNS = [
    *CERTIFICATE_VALUE_COLUMNS,
    "temperature_c",
    "pressure_hpa",
    "humidity_rh",
    "conditions_notes",
    "notes",
    "file",
    "file_sha256",
    "traceable_to",
]
_CONDITION_COLUMNS = {
    "temperature_c": "temperature_c",
    "pressure_hpa": "pressure_hpa",
    "humidity_rh": "humidity_rh",
    "conditions_notes": "notes",
}
_CHANNEL = re.compile(
    r"^\s*(?:(?P<site>[^:/\s]+):)?(?P<agent>[^/\s]+)/(?P<instrument>[^/\s]+)/(?P<channel>[^/\s\[]+)"
    r"\s*(?:\[(?P<unit>[^\]]+)\])?(?P<rest>.*)$"
)
_SETTING = re.compile(r"^(scale|offset)=(\S+)$")


def parse_channels(text: str) -> list[dict[str, Any]]:
    """``[SITE:]AGENT/INSTRUMENT/CHANNEL [UNIT] scale=S offset=O; …`` as channel-link fields."""
    links = []
    for entry in text.split(";"):
        if not entry.strip():
            continue
        match = _CHANNEL.match(entry)
        if not match:
            raise ValueError(f"{entry.strip()!r} is not [SITE:]AGENT/INSTRUMENT/CHANNEL [UNIT]")
        link: dict[str, Any] = {
            key: match.group(key) for key in ("site", "agent", "instrument", "channel", "unit")
        }
        if link["unit"] is None:
            raise ValueError(f"{entry.strip()!r}: give the channel's unit in brackets, e.g. [V]")
        for word in match.group("rest").split():
            setting = _SETTING.match(word)
            if not setting:
                raise ValueError(
                    f"{entry.strip()!r}: {word!r} is not scale=NUMBER or offset=NUMBER"
                )
            link[setting.group(1)] = setting.group(2)
        links.append({k: v for k, v in link.items() if v is not None})
    return links


def format_channels(links: Sequence[ChannelLink]) -> str:
    """Channel links in the CSV form."""
    entries = []
    for link in links:
        text = (
            f"{link.site + ':' if link.site else ''}{link.agent}/{link.instrument}/"
            f"{link.channel} [{link.unit}]"
        )
        if link.scale != 1.0:
            text += f" scale={link.scale!r}"
        if link.offset != 0.0:
            text += f" offset={link.offset!r}"
        entries.append(text)
    return "; ".join(entries)


def parse_traceability(text: str) -> list[dict[str, Any]]:
    """``LAB | STANDARD | CERTIFICATE | national > …; …`` as traceability nodes (nested)."""
    branches = []
    for branch in text.split(";"):
        if not branch.strip():
            continue
        levels = []
        for level in branch.split(">"):
            parts = [part.strip() for part in level.split("|")]
            if len(parts) < 2 or len(parts) > 5 or not parts[0] or not parts[1]:
                raise ValueError(
                    f"{level.strip()!r} is not 'LAB | STANDARD [| CERTIFICATE] [| national] "
                    "[| DESCRIPTION]'"
                )
            node: dict[str, Any] = {"lab": parts[0], "standard": parts[1]}
            if len(parts) > 2 and parts[2]:
                node["certificate"] = parts[2]
            if len(parts) > 3:
                if parts[3].lower() not in ("national", ""):
                    raise ValueError(f"{level.strip()!r}: the fourth part may only be 'national'")
                node["national"] = parts[3].lower() == "national"
            if len(parts) > 4 and parts[4]:
                node["description"] = parts[4]
            levels.append(node)
        for lower, upper in itertools.pairwise(levels):
            lower["traceable_to"] = [upper]
        branches.append(levels[0])
    return branches


def format_traceability(nodes: Sequence[TraceabilityNode]) -> str:
    """Traceability in the CSV form (branching above the first level is flattened away)."""
    branches = []
    for node in nodes:
        levels = []
        current: TraceabilityNode | None = node
        while current is not None:
            parts = [
                current.lab,
                current.standard,
                current.certificate or "",
                "national" if current.national else "",
                current.description or "",
            ]
            while not parts[-1]:
                parts.pop()
            levels.append(" | ".join(parts))
            current = current.traceable_to[0] if current.traceable_to else None
        branches.append(" > ".join(levels))
    return "; ".join(branches)
