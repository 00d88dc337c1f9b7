"""Ingest leaves the rows it decoded for the writer, by the id the spool gave their entry."""

from __future__ import annotations

from pathlib import Path

import msgspec

from gateway.tsdb.points import EntryMemo, ReadingsBatch
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
