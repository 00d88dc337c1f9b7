"""Request coalescing: read the due channels of a device with the fewest requests.

A request reads one contiguous run of addresses of one table. It may be no longer than the
protocol's limit (125 registers, 2000 bits) or the device's smaller one, and it may read through
a run of unwanted addresses no longer than the configured gap. The planner is greedy over the
channels sorted by start address (longest first among equal starts): it extends the current
request while the next channel fits, else starts a new one. With these two constraints the
greedy plan uses the minimum number of requests; the property tests check that against an
exhaustive search.

Ranges learned to fail (a request the device answered with an exception) are ``forbidden``: a
request may not contain one, except a request that is exactly one channel's own span, so a bad
channel is still asked alone and reported with its exception.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

TABLE_ORDER = ("coil", "discrete_input", "holding", "input")


@dataclass(frozen=True, order=True)
class Span:
    """Addresses [start, end) of one table."""

    table: str
    start: int
    end: int

    @property
    def count(self) -> int:
        """How many addresses."""
        return self.end - self.start

    def contains(self, other: Span) -> bool:
        """Whether ``other`` lies inside this span."""
        return self.table == other.table and self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class Limits:
    """Size and gap limits of one device."""

    max_registers: int = 125
    max_bits: int = 2000
    gap_registers: int = 8
    gap_bits: int = 32

    def for_table(self, table: str) -> tuple[int, int]:
        """(largest request, largest gap) for a table."""
        if table in ("coil", "discrete_input"):
            return self.max_bits, self.gap_bits
        return self.max_registers, self.gap_registers


@dataclass(frozen=True)
class Request:
    """One read request and the indices of the spans (channels) it serves."""

    span: Span
    members: tuple[int, ...]


def plan(spans: Sequence[Span], limits: Limits, forbidden: Collection[Span] = ()) -> list[Request]:
    """The requests that read every span, fewest first-fit; see the module doc."""
    by_table: dict[str, list[int]] = {}
    for index, span in enumerate(spans):
        by_table.setdefault(span.table, []).append(index)
    requests: list[Request] = []
    for table in sorted(by_table, key=_table_rank):
        max_count, max_gap = limits.for_table(table)
        bans = [f for f in forbidden if f.table == table]
        indices = sorted(by_table[table], key=lambda i: (spans[i].start, -spans[i].end))
        start = end = 0
        members: list[int] = []
        for index in indices:
            span = spans[index]
            if members:
                new_end = max(end, span.end)
                gap = span.start - end
                candidate = Span(table, start, new_end)
                if (
                    new_end - start <= max_count
                    and gap <= max_gap
                    and not any(candidate.contains(ban) for ban in bans)
                ):
                    end = new_end
                    members.append(index)
                    continue
                requests.append(Request(Span(table, start, end), tuple(members)))
            start, end, members = span.start, span.end, [index]
        if members:
            requests.append(Request(Span(table, start, end), tuple(members)))
    return requests


def _table_rank(table: str) -> int:
    return TABLE_ORDER.index(table) if table in TABLE_ORDER else len(TABLE_ORDER)
