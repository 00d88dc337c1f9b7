"""Ingest leaves the rows it decoded for the writer, by the id the spool gave their entry."""

from __future__ import annotations

from pathlib import Path

import msgspec

from gateway.ingest.events import ReadingsArrived
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import EntryMemo, Lines, ReadingsBatch
from gateway.tsdb.writer import decode_entry
from tests.gateway.ingest.harness import ROOT, IngestRig, agent_metrics, batch, reading


async def test_each_spooled_batchs_rows_are_left_under_its_entrys_id(tmp_path: Path) -> None:
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        memo = rig.ingest.memo = EntryMemo()
        rig.deliver(f"{ROOT}/data", batch(reading(0), reading(1)))
        rig.deliver(f"{ROOT}/metrics", agent_metrics())  # spooled between, nothing left for it
        rig.deliver(f"{ROOT}/data", batch(reading(2), reading(3, unit=7), reading(4)))
        rig.deliver(f"{ROOT}/data", batch(reading(5)))
        await rig.settle()
        entries = await rig.spool.read(0, 100)
        assert len(entries) == 4
        handed = [memo.take(entry.id) for entry in entries]
        assert handed[1] is None
        for entry, item in zip(entries, handed, strict=True):
            if entry is entries[1]:
                continue
            assert isinstance(item, ReadingsBatch)
            from_entry = decode_entry(entry.data)
            assert isinstance(from_entry, ReadingsBatch)
            assert msgspec.to_builtins(item.rows) == from_entry.readings
        assert [memo.take(entry.id) for entry in entries] == [None] * 4  # taken once


async def test_with_a_line_store_each_batch_is_left_as_its_lines(tmp_path: Path) -> None:
    """Given the store's line builder, ingest leaves each batch's line protocol, built as it
    decodes the message (the rows then die at once, not once the message is spooled): the very
    lines the writer would build from the spooled entry."""
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        builder = LineBuilder()
        memo = rig.ingest.memo = EntryMemo(lines=builder.lines)
        rig.deliver(f"{ROOT}/data", batch(reading(0), reading(1)))
        rig.deliver(f"{ROOT}/data", batch(reading(2), reading(3, unit=7), reading(4)))
        await rig.settle()
        entries = await rig.spool.read(0, 100)
        assert len(entries) == 2
        for entry in entries:
            item = memo.take(entry.id)
            assert isinstance(item, Lines)
            expected = LineBuilder().lines(decode_entry(entry.data))
            assert item.count == len(expected) and item.text.split("\n") == expected


async def test_a_batchs_rows_are_kept_until_it_is_spooled_only_for_a_listener(
    tmp_path: Path,
) -> None:
    """A data message waiting for its spool commit keeps its decoded rows only when something
    listens to the readings that arrive (the live view, alerts); else they die as it is
    classified, and the listeners, if any, still get every batch."""
    async with IngestRig(tmp_path) as rig:
        ingest = rig.ingest
        assert ingest is not None
        rig.deliver(f"{ROOT}/data", batch(reading(0), reading(1)))
        assert ingest._pending and ingest._pending[-1].readings is None
        await rig.settle()
        seen: list[ReadingsArrived] = []
        ingest.hub.subscribe(ReadingsArrived, seen.append)
        rig.deliver(f"{ROOT}/data", batch(reading(2), reading(3)))
        assert ingest._pending[-1].readings is not None
        await rig.settle()
        assert [[r["ts"] for r in event.readings] for event in seen] == [
            [reading(2)["ts"], reading(3)["ts"]]
        ]
