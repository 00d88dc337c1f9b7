"""Defence in depth behind the wire: a point that cannot be written (something unescapable that
slipped past ingest, a spool entry from another version) is refused alone, with its reason,
never its batch — by the line builder, by each store, and by the writer whatever a store raises.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.errors import StoreRejected
from core.spool import Spool, SpoolConfig
from gateway.metrics import GatewayMetrics
from gateway.records.store import RecordStore
from gateway.tsdb.config import (
    InfluxV1StoreConfig,
    InfluxV2StoreConfig,
    SqliteStoreConfig,
    WriteConfig,
)
from gateway.tsdb.factory import build_store
from gateway.tsdb.line_protocol import LineError, parse_line
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import EntryMemo, Lines, MetricsSample, ReadingsBatch, Writable
from gateway.tsdb.sqlite import SqliteStore
from gateway.tsdb.store import LineProtocolStore, WriteResult
from gateway.tsdb.writer import Writer
from tests.support.chain import stored_in_influxd, stored_in_victoria
from tests.support.services import Influxd, VictoriaMetrics

TS0 = 1_790_000_000_000_000_000
BAD_INDEX = 123

# What the wire refuses, had it slipped past: each must cost its own point only.
UNWRITABLE: list[dict[str, Any]] = [
    {"reason": "no reply\r\nfrom the DMM"},
    {"value": "OVLD\n"},
    {"value": float("nan")},
    {"value": float("inf")},
    {"u": float("-inf")},
    {"ts": "1790000000000000000"},
    {"ts": 1.79e18},
    {"unit": "V\n"},
    {"tags": {"room": "A\nB"}},
    {"channel": "volt\\age"},
    {"value": [1, 2]},
    {"quality": "excellent"},
]


def reading(i: int, **override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "instrument": "dmm-1",
        "channel": "voltage",
        "ts": TS0 + i * 10**9,
        "value": 10.0 + i * 1e-7,
        "unit": "V",
        "quality": "good",
    }
    body.update(override)
    return body


def one_bad(override: dict[str, Any], count: int = 500) -> ReadingsBatch:
    readings = [reading(i) for i in range(count)]
    readings[BAD_INDEX] = reading(BAD_INDEX, **override)
    return ReadingsBatch("lab-1", "bench-1", readings)


@pytest.mark.parametrize("override", UNWRITABLE)
def test_the_line_builder_leaves_out_the_one_point_it_cannot_write(
    override: dict[str, Any],
) -> None:
    rejected: list[tuple[str, str]] = []
    lines = LineBuilder().lines(one_bad(override), rejected)
    assert len(lines) == 499
    for text in lines:
        assert "\n" not in text and "\r" not in text
        parse_line(text)
    ((point, reason),) = rejected
    assert reason.startswith("cannot build line protocol: ")
    assert point.startswith("{'site': 'lab-1', 'agent': 'bench-1', 'instrument': 'dmm-1'")
    with pytest.raises(LineError):  # without a list to put it in, the bad point raises
        LineBuilder().lines(one_bad(override))


def test_a_metric_that_cannot_be_written_costs_that_metric_only() -> None:
    sample = MetricsSample("etalon_agent", {"site": "s"}, TS0, {"a": 1, "b": float("nan"), "c": 2})
    rejected: list[tuple[str, str]] = []
    (text,) = LineBuilder().lines(sample, rejected)
    assert parse_line(text)[2] == {"a": 1, "c": 2}
    assert len(rejected) == 1 and "b=nan" in rejected[0][0]


@pytest.mark.parametrize("kind", ["influxdb_v1", "influxdb_v2"])
def test_a_crlf_costs_one_point_not_the_batch_on_real_servers(
    kind: str, influxd: Influxd, victoria: VictoriaMetrics
) -> None:
    """Finding 4: one CR/LF made both servers refuse a whole 500-reading batch."""
    db = f"p{uuid.uuid4().hex[:8]}"
    config: InfluxV1StoreConfig | InfluxV2StoreConfig = (
        InfluxV1StoreConfig(kind="influxdb_v1", url=influxd.url, database=db, create_database=True)
        if kind == "influxdb_v1"
        else InfluxV2StoreConfig(kind="influxdb_v2", url=victoria.url, bucket="b", org="o")
    )

    async def write() -> WriteResult:
        store = build_store(config)
        await store.open()
        try:
            return await store.write([one_bad({"reason": "no reply\r\n"})])
        finally:
            await store.close()

    result = asyncio.run(write())
    assert result.written == 499 and len(result.rejected) == 1
    stored = (
        stored_in_influxd(influxd, db) if kind == "influxdb_v1" else stored_in_victoria(victoria)
    )
    assert stored.distinct == 499


@pytest.mark.parametrize(
    "override",
    [{"ts": 2**64}, {"value": 10**400}, {"ts": "x"}, {"u": "0.1"}, {"quality": "?"}],
)
def test_the_sqlite_store_refuses_a_point_it_cannot_hold_alone(
    tmp_path: Path, override: dict[str, Any]
) -> None:
    async def write() -> tuple[WriteResult, int]:
        store = SqliteStore(SqliteStoreConfig(kind="sqlite", path=tmp_path / "r.db"))
        await store.open()
        try:
            result = await store.write([one_bad(override)])
            rows = await store.query("SELECT COUNT(*) FROM readings")
        finally:
            await store.close()
        return result, rows[0][0]

    result, count = asyncio.run(write())
    assert (result.written, count, len(result.rejected)) == (499, 499, 1)


class Choking:
    """A real SQLite store that raises a TypeError — not a StoreError — whenever a write holds
    the reading stamped ``poison_ts``: a point no check foresaw."""

    name = "choking"

    def __init__(self, path: Path, poison_ts: int) -> None:
        self.inner = SqliteStore(SqliteStoreConfig(kind="sqlite", path=path))
        self.poison_ts = poison_ts
        self.calls = 0

    async def open(self) -> None:
        await self.inner.open()

    async def write(self, items: Sequence[Writable]) -> WriteResult:
        self.calls += 1
        for item in items:
            if isinstance(item, ReadingsBatch) and any(
                r["ts"] == self.poison_ts for r in item.readings
            ):
                raise TypeError("cannot adapt the poison point")
        return await self.inner.write(items)

    async def close(self) -> None:
        await self.inner.close()


async def drain(writer: Writer, spool: Spool) -> None:
    """Run the writer until the spool is empty (at most about 5 s)."""
    task = asyncio.create_task(writer.run())
    try:
        for _ in range(500):
            if spool.depth == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_writer_isolates_a_point_a_store_chokes_on(tmp_path: Path) -> None:
    spool = Spool(SpoolConfig(path=tmp_path / "spool.db", synchronous="normal"), "gateway")
    records = RecordStore(tmp_path / "records.db")
    poison = TS0 + BAD_INDEX * 10**9
    store = Choking(tmp_path / "readings.db", poison)
    await spool.open()
    await records.open()
    await store.open()
    metrics = GatewayMetrics()
    writer = Writer(spool, store, WriteConfig(batch_max_delay_ms=0), metrics, records)  # type: ignore[arg-type]
    for part in range(4):  # four spool entries of 125 readings: one holds the poison
        readings = [reading(i) for i in range(part * 125, part * 125 + 125)]
        body = {"schema": 1, "site": "lab-1", "agent": "bench-1", "seq": part, "readings": readings}
        await spool.append([orjson.dumps(body)])
    await drain(writer, spool)
    letters = await records.query("SELECT topic, reason, payload FROM deadletters")
    count = await store.inner.query("SELECT COUNT(*) FROM readings")
    await store.close()
    await spool.close()
    await records.close()
    assert spool.depth == 0
    assert count[0][0] == 499
    (letter,) = letters
    assert letter["topic"] == "store:choking"
    assert letter["reason"] == "TypeError: cannot adapt the poison point"
    assert str(poison).encode() in letter["payload"]
    assert metrics.write_rejected == 1 and metrics.readings_written == 499
    assert store.calls < 40  # bisection: about 2 log2(500), not one call per point


class Refusing(LineProtocolStore):
    """A line store whose server refuses (HTTP 400) any body holding the reading stamped
    ``poison_ts``, and raises a TypeError — no StoreError — for a body holding ``choke_ts``."""

    name = "refusing"

    def __init__(self, poison_ts: int, choke_ts: int = 0) -> None:
        super().__init__()
        self.poison, self.choke = f" {poison_ts}", f" {choke_ts}"
        self.written: list[str] = []

    async def open(self) -> None:
        """Nothing to open."""

    async def _post(self, body: str) -> None:
        lines = body.split("\n")
        if any(line.endswith(self.poison) for line in lines):
            raise StoreRejected("HTTP 400: unparsable line")
        self.written += lines

    async def write(self, items: Sequence[Writable]) -> WriteResult:
        for item in items:
            if isinstance(item, Lines) and any(
                line.endswith(self.choke) for line in item.text.split("\n")
            ):
                raise TypeError("cannot adapt the choke point")
        return await super().write(items)

    async def close(self) -> None:
        """Nothing to close."""


def test_lines_built_ahead_are_written_as_they_are_and_a_refused_one_costs_itself() -> None:
    """Lines the memo built (:class:`Lines`) go in the body as they are, beside batches built
    now, and a line the server refuses is isolated from them by the same bisection."""
    batch = ReadingsBatch("lab-1", "bench-1", [reading(i) for i in range(300)])
    built = LineBuilder().lines(batch)
    store = Refusing(TS0 + BAD_INDEX * 10**9)
    items: list[Writable] = [
        Lines("\n".join(built[:200]), 200),
        ReadingsBatch("lab-1", "bench-1", [reading(i) for i in range(200, 300)]),
    ]
    result = asyncio.run(store.write(items))
    assert result.written == 299 and store.written == built[:BAD_INDEX] + built[BAD_INDEX + 1 :]
    ((line, reason),) = result.rejected
    assert line == built[BAD_INDEX] and "HTTP 400" in reason


async def test_the_writer_isolates_a_point_a_store_chokes_on_in_lines_built_ahead(
    tmp_path: Path,
) -> None:
    """The writer's bisection splits lines built ahead down to the one line a store raises on."""
    spool = Spool(SpoolConfig(path=tmp_path / "spool.db", synchronous="normal"), "gateway")
    records = RecordStore(tmp_path / "records.db")
    choke = TS0 + BAD_INDEX * 10**9
    store = Refusing(poison_ts=-1, choke_ts=choke)
    await spool.open()
    await records.open()
    builder = store.builder
    memo = EntryMemo(lines=builder.lines)
    metrics = GatewayMetrics()
    writer = Writer(spool, store, WriteConfig(batch_max_delay_ms=0), metrics, records, memo)
    for part in range(4):  # four spool entries of 125 readings: one holds the choke point
        readings = [reading(i) for i in range(part * 125, part * 125 + 125)]
        body = {"schema": 1, "site": "lab-1", "agent": "bench-1", "seq": part, "readings": readings}
        await spool.append([(orjson.dumps(body), 125)])
        lines = builder.lines(ReadingsBatch("lab-1", "bench-1", readings))
        memo.put(spool.last_ids[0], Lines("\n".join(lines), 125), 0)
    await drain(writer, spool)
    letters = await records.query("SELECT topic, reason, payload FROM deadletters")
    await spool.close()
    await records.close()
    assert spool.depth == 0 and len(store.written) == 499
    (letter,) = letters
    assert letter["topic"] == "store:refusing"
    assert letter["reason"] == "TypeError: cannot adapt the choke point"
    assert str(choke).encode() in letter["payload"]
    assert metrics.write_rejected == 1 and metrics.readings_written == 499
