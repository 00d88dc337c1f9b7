"""The writer and the gateway's spool: removals ride on ingest's commits, and a writer some
batches behind ingest still takes ingest's decoded rows from memory."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import orjson
import pytest

import core.spool
from core.spool import Spool, SpoolConfig
from edge_agent.wire_batches import decode_data
from gateway import service as gateway_service
from gateway.config import GatewayConfig
from gateway.metrics import GatewayMetrics
from gateway.records.store import RecordStore
from gateway.service import Gateway
from gateway.tsdb import writer as writer_module
from gateway.tsdb.config import WriteConfig
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import ReadingsBatch, Writable
from gateway.tsdb.store import LineProtocolStore, WriteResult
from gateway.tsdb.writer import Writer

SITE, AGENT = "lab-1", "bench-1"
TS0 = 1_790_000_000_000_000_000


class Counting:
    """A store that takes everything and counts the readings."""

    name = "counting"

    def __init__(self) -> None:
        self.readings = 0

    async def open(self) -> None:
        """Nothing to open."""

    async def write(self, items: Sequence[Writable]) -> WriteResult:
        count = sum(i.count for i in items if isinstance(i, ReadingsBatch))
        self.readings += count
        return WriteResult(written=count)

    async def close(self) -> None:
        """Nothing to close."""


def payload(seq: int, count: int) -> bytes:
    readings = [
        {"instrument": f"dmm-{i % 10}", "channel": "v", "ts": TS0 + seq * count + i,
         "value": 10.0 + i * 1e-9, "unit": "V", "quality": "good", "u": 1e-7}
        for i in range(count)
    ]  # fmt: skip
    return orjson.dumps(
        {"schema": 1, "site": SITE, "agent": AGENT, "seq": seq, "readings": readings}
    )


def in_file(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def counted_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the spool entries the writer parses from now on."""
    parsed: list[int] = []
    real_decode = writer_module.decode_entry

    def decode_entry(data: bytes) -> Writable:
        parsed.append(len(data))
        return real_decode(data)

    monkeypatch.setattr(writer_module, "decode_entry", decode_entry)
    return parsed


def gateway_config(tmp_path: Path, batch_max_lines: int) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "site": SITE,
            "spool": {"path": str(tmp_path / "spool.db"), "synchronous": "normal"},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {"path": str(tmp_path / "records.db")},
            "write": {"batch_max_lines": batch_max_lines, "batch_max_delay_ms": 0},
        }
    )


async def spooled_as_ingest_does(gateway: Gateway, at_least_bytes: int) -> list[bytes]:
    """Messages of 500 readings appended to the gateway's spool, their rows handed to its memo
    by entry id as ingest hands them over; the payloads."""
    entries = [payload(seq, 500) for seq in range(at_least_bytes // len(payload(0, 500)) + 1)]
    await gateway.spool.append([(data, 500) for data in entries])
    for entry_id, data in zip(gateway.spool.last_ids, entries, strict=True):
        batch = ReadingsBatch(SITE, AGENT, rows=decode_data(data, SITE, AGENT).rows)
        gateway.memo.put(entry_id, batch, len(data))
    return entries


async def test_the_writers_removals_ride_on_ingests_next_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the store took leaves the spool in the transaction of the next append, not in a
    commit of its own (an fsync per batch on the thread ingest commits on); a clean close
    commits what no append carried."""
    monkeypatch.setattr(core.spool, "ACK_DELAY_S", 5.0)  # meanwhile only an append removes
    path = tmp_path / "spool.db"
    spool = Spool(SpoolConfig(path=path), "gateway")
    records = RecordStore(tmp_path / "records.db")
    await spool.open()
    await records.open()
    store = Counting()
    writer = Writer(spool, store, WriteConfig(batch_max_delay_ms=0), GatewayMetrics(), records)  # type: ignore[arg-type]
    await spool.append([(payload(0, 50), 50), (payload(1, 50), 50)])
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: store.readings == 100)
        await asyncio.sleep(0.1)
        assert in_file(path) == 2 and spool.depth == 100  # written, not yet removed
        await spool.append([(payload(2, 50), 50)])  # ingest's next commit carries the removal
        assert in_file(path) == 1
        await wait_for(lambda: store.readings == 150)
        assert spool.depth == 50
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await spool.close()
        await records.close()
    assert in_file(path) == 0 and spool.depth == 0


async def test_a_writer_batches_behind_takes_ingests_rows_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway keeps enough of the newest entries, and ingest's rows of them, for a writer
    several 10,000-reading batches behind (8 MiB of messages of 500 readings here): it reads
    none back from disk and parses none again."""
    config = gateway_config(tmp_path, batch_max_lines=10_000)
    gateway = Gateway(config, store=Counting())  # type: ignore[arg-type]
    spool, memo = gateway.spool, gateway.memo
    parsed = counted_parses(monkeypatch)
    await spool.open()
    await gateway.records.open()
    entries = await spooled_as_ingest_does(gateway, 8 * 2**20)
    assert sum(map(len, entries)) > 8 * 2**20
    writer = Writer(spool, gateway.store, config.write, gateway.metrics, gateway.records, memo)
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: gateway.store.readings == 500 * len(entries), 60)  # type: ignore[attr-defined]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await spool.close()
        await gateway.records.close()
    assert parsed == []


class Posting(LineProtocolStore):
    """A line store that takes every body, noting it."""

    name = "posting"

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[str] = []

    async def open(self) -> None:
        """Nothing to open."""

    async def _post(self, body: str) -> None:
        self.bodies.append(body)

    async def close(self) -> None:
        """Nothing to close."""


async def test_a_writer_behind_the_spools_memory_writes_the_lines_the_memo_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer further behind than the spool keeps in memory reads the entries back from disk,
    and with a line store still parses none again: the memo, by entry id, holds the oldest
    batches as the lines the store writes as they are, the same lines as built from the
    payloads (a burst several times the spool's memory, here 1 MiB)."""
    monkeypatch.setattr(gateway_service, "MEMORY_BYTES", 2**20)
    config = gateway_config(tmp_path, batch_max_lines=2_000)
    store = Posting()
    gateway = Gateway(config, store=store)
    spool, memo = gateway.spool, gateway.memo
    parsed = counted_parses(monkeypatch)
    read_back: list[int] = []
    real_read = spool._read

    def read(after_id: int, limit: int, max_items: int | None = None) -> list[core.spool.Entry]:
        read_back.append(after_id)
        return real_read(after_id, limit, max_items)

    monkeypatch.setattr(spool, "_read", read)
    await spool.open()
    await gateway.records.open()
    entries = await spooled_as_ingest_does(gateway, 3 * 2**20)
    writer = Writer(spool, store, config.write, gateway.metrics, gateway.records, memo)
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: gateway.metrics.readings_written == 500 * len(entries), 60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await spool.close()
        await gateway.records.close()
    assert read_back and parsed == []  # read from disk, parsed by nobody
    builder = LineBuilder()
    batches = [ReadingsBatch(SITE, AGENT, rows=decode_data(d, SITE, AGENT).rows) for d in entries]
    expected = [line for batch in batches for line in builder.lines(batch)]
    assert "\n".join(store.bodies).split("\n") == expected


class Gated(Counting):
    """A store whose every write waits for its own gate (until :meth:`open`); it notes each
    write's readings."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: list[asyncio.Event] = []
        self.batches: list[int] = []
        self.opened = False

    async def write(self, items: Sequence[Writable]) -> WriteResult:
        gate = asyncio.Event()
        self.gates.append(gate)
        if not self.opened:
            await gate.wait()
        self.batches.append(sum(i.count for i in items if isinstance(i, ReadingsBatch)))
        return await super().write(items)

    def open(self) -> None:
        """Let every write through, waiting or to come."""
        self.opened = True
        for gate in self.gates:
            gate.set()


@contextlib.asynccontextmanager
async def running_writer(
    tmp_path: Path, store: Counting, config: WriteConfig
) -> AsyncIterator[Spool]:
    """A writer over a fresh spool, running until the block ends; the spool to append to."""
    spool = Spool(SpoolConfig(path=tmp_path / "spool.db"), "gateway")
    records = RecordStore(tmp_path / "records.db")
    await spool.open()
    await records.open()
    writer = Writer(spool, store, config, GatewayMetrics(), records)  # type: ignore[arg-type]
    task = asyncio.create_task(writer.run())
    try:
        yield spool
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await spool.close()
        await records.close()


async def test_the_next_batch_is_taken_while_the_writes_in_flight_hold_every_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer behind ingest reads (and parses) its next batch while its writes are in flight,
    not after one of them ends: the read overlaps the store's time."""
    parsed = counted_parses(monkeypatch)
    store = Gated()
    config = WriteConfig(batch_max_lines=50, batch_max_delay_ms=0, concurrency=1)
    async with running_writer(tmp_path, store, config) as spool:
        await spool.append([(payload(seq, 50), 50) for seq in range(3)])
        await wait_for(lambda: len(store.gates) == 1 and len(parsed) == 2)
        assert len(store.gates) == 1  # the one slot is still held by the first write
        store.open()
        await wait_for(lambda: store.readings == 150)


async def test_readings_spooled_during_a_write_go_in_the_next_write(tmp_path: Path) -> None:
    """Only a full batch is taken ahead of a free slot: a partial one waits for the slot and
    takes in what arrived meanwhile (found in review: a batch taken early was frozen, and the
    readings after it went a write later)."""
    store = Gated()
    config = WriteConfig(batch_max_lines=1000, batch_max_delay_ms=0, concurrency=1)
    async with running_writer(tmp_path, store, config) as spool:
        await spool.append([(payload(0, 10), 10)])  # write 1 starts, held
        await wait_for(lambda: len(store.gates) == 1)
        await spool.append([(payload(1, 10), 10)])  # arrives during write 1
        await asyncio.sleep(0.1)
        await spool.append([(payload(2, 10), 10)])  # arrives during write 1 too
        await asyncio.sleep(0.1)
        store.gates[0].set()
        await wait_for(lambda: len(store.gates) == 2)
        store.gates[1].set()
        await wait_for(lambda: store.readings == 30)
        assert store.batches == [10, 20]


async def test_a_partial_batch_is_written_once_the_messages_stopped(tmp_path: Path) -> None:
    """Messages came a few milliseconds apart and stopped (a drain's end): their partial batch
    is written then, not after the whole delay (30 s here); so is its removal committed."""
    spool = Spool(SpoolConfig(path=tmp_path / "spool.db"), "gateway")
    records = RecordStore(tmp_path / "records.db")
    await spool.open()
    await records.open()
    for seq in range(6):
        await spool.append([(payload(seq, 50), 50)])
        await asyncio.sleep(0.003)
    store = Counting()
    config = WriteConfig(batch_max_lines=10_000, batch_max_delay_ms=30_000)
    writer = Writer(spool, store, config, GatewayMetrics(), records)  # type: ignore[arg-type]
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: store.readings == 300 and spool.depth == 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await spool.close()
        await records.close()
