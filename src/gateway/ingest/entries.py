"""A data batch's spool entry: the readings as received and, beside them, their corrections.

Ingest spools what the stores write (:func:`spool_entry`); the writer reads it back with
:func:`gateway.tsdb.writer.decode_entry`.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from edge_agent.wire_batches import ChannelOrder, WireRow
from gateway.corrections.corrector import Corrector
from gateway.corrections.spans import BatchFixes
from gateway.tsdb.points import FixedColumns, ReadingsBatch


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
    fixes = corrector.batch(site, agent, rows, order)
    if fixes is None:
        return entry, ReadingsBatch(site, agent, rows=rows), None
    extra: dict[str, Any] = {"certificates": fixes.certificates}
    if fixes.marked:
        extra["corrections"] = [fix.spooled() for fix in fixes.marked]
    parts = [msgspec.json.encode(extra)[1:-1]]
    columns = None
    if len(fixes.corrected):
        values, us = _numbers(fixes.corrected), _numbers(fixes.u)
        ids = fixes.certificate_id
        # One certificate for every corrected reading (the common case): spooled once.
        one = int(ids[0]) if len(fixes.certificates) == 1 else None
        certificate_id: int | list[int] = ids.tolist() if one is None else one
        index = None if fixes.index is None else fixes.index.tolist()
        conformity = None if fixes.conformity is None else fixes.conformity.tolist()
        parts.append(
            b'"fixed":{"index":' + _numbers(index) + b',"value":' + values + b',"u":' + us
            + b',"certificate_id":' + _numbers(certificate_id) + b',"conformity":'
            + _numbers(conformity) + b"}"
        )  # fmt: skip
        columns = FixedColumns(index, values, us, certificate_id, conformity)
    # The writer reads a Fix as the StoredFix it decodes from the entry (the same fields).
    batch = ReadingsBatch(
        site, agent, rows=rows, fixes=fixes.marked, certificates=fixes.certificates,  # type: ignore[arg-type]
        columns=columns,
    )  # fmt: skip
    return entry.rstrip()[:-1] + b"," + b",".join(parts) + b"}", batch, fixes


def _numbers(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def readings_entry(site: str, agent: str, seq: int, readings: list[Any]) -> bytes:
    """A spool entry of readings, when it is not the payload as received."""
    return orjson.dumps(
        {"schema": 1, "site": site, "agent": agent, "seq": seq, "readings": readings}
    )
