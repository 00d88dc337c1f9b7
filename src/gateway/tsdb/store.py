"""The store contract, and the line-protocol base both InfluxDB paths share.

``write(items)`` writes everything or raises :class:`StoreError` (the caller retries the same
items later; writes are idempotent because series and timestamps are fixed at the agent).
Points that cannot be written as line protocol are left out of the body (each with its reason);
points the store itself refuses are not retried forever: the batch is bisected until the refused
lines are isolated, the rest is written. Both come back in ``WriteResult.rejected`` with the
reason; a point is refused alone, never its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import StoreRejected
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import Lines, Writable


@dataclass
class WriteResult:
    """How many points were written, and which were refused and why."""

    written: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)


class Store(Protocol):
    """A time-series store."""

    name: str

    async def open(self) -> None:
        """Prepare (create tables/database); may raise StoreError if unreachable."""
        ...

    async def write(self, items: Sequence[Writable]) -> WriteResult:
        """Write all items or raise StoreError."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class LineProtocolStore:
    """Base of the InfluxDB stores: build lines, post them, bisect refusals."""

    name = "line-protocol"

    def __init__(self) -> None:
        self.builder = LineBuilder()

    async def _post(self, body: str) -> None:
        """Send newline-joined lines; raise StoreRejected or StoreError."""
        raise NotImplementedError

    async def write(self, items: Sequence[Writable]) -> WriteResult:
        """See the module doc."""
        result = WriteResult()
        chunks: list[str] = []
        count = 0
        for item in items:
            if isinstance(item, Lines):  # built while it waited (EntryMemo)
                chunks.append(item.text)
                count += item.count
                continue
            # A point that cannot be written is refused alone, never its batch.
            lines = self.builder.lines(item, result.rejected)
            if lines:
                chunks.append("\n".join(lines))
                count += len(lines)
        if chunks:
            await self._write_lines(Lines("\n".join(chunks), count), result)
        return result

    async def _write_lines(self, lines: Lines, result: WriteResult) -> None:
        """Post the lines; if the store refuses them, their halves, down to the lines it
        refuses."""
        try:
            await self._post(lines.text)
        except StoreRejected as exc:
            if lines.count == 1:
                result.rejected.append((lines.text, str(exc)))
                return
            for half in lines.split():
                await self._write_lines(half, result)
            return
        result.written += lines.count
