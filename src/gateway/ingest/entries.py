"""A data batch's spool entry: the readings as received and, beside them, their corrections.

Ingest spools what the stores write (:func:`spool_entry`); the writer reads it back with
:func:`gateway.tsdb.writer.decode_entry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import orjson

from edge_agent.wire_batches import ChannelOrder, WireRow
from gateway.corrections.corrector import Corrector
from gateway.corrections.spans import BatchFixes
from gateway.tsdb.points import FixedColumns, ReadingsBatch

Spoolable = tuple[str, str, bytes, list[WireRow], ChannelOrder | None]
"""A batch to spool with its corrections: site, agent, its entry, its rows and their order."""


def spool_entry(
    corrector: Corrector,
    site: str,
    agent: str,
    entry: bytes,
    rows: list[WireRow],
    order: ChannelOrder | None = None,
) -> tuple[bytes, ReadingsBatch, BatchFixes | None]:
    """A batch's spool entry with its corrections, the rows the writer gets with it, and the
    corrections themselves (what alerts read).

    The spool keeps what the stores write: the readings as received and, beside them, their
    corrections as keys added to the entry's JSON object — never the batch re-encoded: the
    readings corrected in full as columns (``fixed``: :class:`gateway.tsdb.points.FixedColumns`,
    numbers written once, a column at a time), the others one by one (``corrections``:
    :class:`gateway.tsdb.points.StoredFix`), and the certificates' identifiers by id.
    ``order``: the rows' :class:`ChannelOrder`, when decoding gave it."""
    return with_fixes(site, agent, entry, rows, corrector.batch(site, agent, rows, order))


def spool_entries(
    corrector: Corrector, batches: Sequence[Spoolable]
) -> list[tuple[bytes, ReadingsBatch, BatchFixes | None]]:
    """:func:`spool_entry` of each ``(site, agent, entry, rows, order)``, all corrected in one
    :meth:`Corrector.batches` call (what ingest takes in one wake-up)."""
    fixes = corrector.batches(
        [(site, agent, rows, order) for site, agent, _, rows, order in batches]
    )
    return [
        with_fixes(site, agent, entry, rows, each)
        for (site, agent, entry, rows, _), each in zip(batches, fixes, strict=True)
    ]


def with_fixes(
    site: str, agent: str, entry: bytes, rows: list[WireRow], fixes: BatchFixes | None
) -> tuple[bytes, ReadingsBatch, BatchFixes | None]:
    """The spool entry of a batch and its corrections (see :func:`spool_entry`)."""
    if fixes is None:
        return entry, ReadingsBatch(site, agent, rows=rows), None
    extra: dict[str, Any] = {"certificates": fixes.certificates}
    if fixes.marked:
        extra["corrections"] = [fix.spooled() for fix in fixes.marked]
    columns = None
    if len(fixes.corrected):
        ids = fixes.certificate_id
        # One certificate for every corrected reading (the common case): spooled once.
        one = int(ids[0]) if len(fixes.certificates) == 1 else None
        columns = FixedColumns(
            None if fixes.index is None else fixes.index.tolist(),
            fixes.corrected,
            fixes.u,
            ids.tolist() if one is None else one,
            None if fixes.conformity is None else fixes.conformity.tolist(),
        )
        extra["fixed"] = columns.spooled()
    # The writer reads a Fix as the StoredFix it decodes from the entry (the same fields).
    batch = ReadingsBatch(
        site, agent, rows=rows, fixes=fixes.marked, certificates=fixes.certificates,  # type: ignore[arg-type]
        columns=columns,
    )  # fmt: skip
    body = entry.rstrip()
    # The payload as received, its closing brace replaced by the added keys: one copy.
    added = _ENCODE(extra)
    return b"".join((memoryview(body)[:-1], b",", memoryview(added)[1:])), batch, fixes


_ENCODE = msgspec.json.Encoder().encode


def readings_entry(site: str, agent: str, seq: int, readings: list[Any]) -> bytes:
    """A spool entry of readings, when it is not the payload as received."""
    return orjson.dumps(
        {"schema": 1, "site": site, "agent": agent, "seq": seq, "readings": readings}
    )
