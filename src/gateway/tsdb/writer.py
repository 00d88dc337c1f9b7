"""Gateway spool → store: batches, retry with backoff while the store is down.

An entry leaves the spool only when the store accepted it. A store that is down is retried with
capped, jittered backoff, logged once when it goes and once when it is back. Points the store
refuses (after bisection isolated them) are recorded as dead letters and counted; the rest of
the batch is written and the writer goes on. A write that raises anything but a StoreError (a
point no check foresaw, a bug) is bisected here down to the point that raises, which is refused
alone in the same way: no point can stop the writer or hold back the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.backoff import BackoffTimer
from core.errors import StoreError
from core.logs import CauseLog, log_event
from core.spool import Entry, Spool
from gateway.metrics import GatewayMetrics
from gateway.records import deadletters
from gateway.records.store import RecordStore
from gateway.tsdb.config import WriteConfig
from gateway.tsdb.points import (
    EntryMemo,
    Lines,
    MetricsSample,
    ReadingsBatch,
    Writable,
    decode_stored,
)
from gateway.tsdb.store import Store, WriteResult

log = logging.getLogger("etalon.gateway")

ENTRIES_PER_READ = 256

MEMORY_BYTES = 16 * 2**20
"""Bytes of the newest spooled entries the gateway keeps in memory for its writer (the spool's
memory, and ingest's decoded rows of them: :class:`EntryMemo`, bounded at the memory these
bytes take as rows): several batches of the largest messages, so a writer a few batches behind
ingest still reads them there, neither from disk nor parsed again (a writer that falls further
behind reads from disk, and with a line store finds the lines of those entries in the memo)."""


@dataclass
class _Batch:
    first_id: int
    last_id: int
    items: list[Writable]
    points: int


def decode_entry(data: bytes) -> Writable:
    """A gateway spool entry back into something a store writes: a batch of readings as rows
    (one typed parse, no dict per reading), else read as JSON (metrics samples, and any entry
    of another shape, as before)."""
    rows = decode_stored(data)
    if rows is not None:
        return rows
    body = orjson.loads(data)
    if "readings" in body:
        if "fixed" in body:  # its corrections did not read as they were written: corrupt
            raise ValueError("a spooled batch's corrections cannot be read")
        return ReadingsBatch(body["site"], body["agent"], body["readings"])
    return MetricsSample(body["measurement"], body["tags"], int(body["ts"]), body["values"])


def _halves(items: list[Writable]) -> list[list[Writable]] | None:
    """Two halves of what was written, splitting a lone item into its points; None for one
    point."""
    if len(items) > 1:
        middle = len(items) // 2
        return [items[:middle], items[middle:]]
    item = items[0]
    if isinstance(item, ReadingsBatch | Lines) and item.count > 1:
        first, second = item.split()
        return [[first], [second]]
    if isinstance(item, MetricsSample) and len(item.values) > 1:
        names = list(item.values)
        middle = len(names) // 2
        return [
            [
                MetricsSample(
                    item.measurement, item.tags, item.ts_ns, {n: item.values[n] for n in part}
                )
            ]
            for part in (names[:middle], names[middle:])
        ]
    return None


def _points(item: Writable) -> int:
    return len(item.values) if isinstance(item, MetricsSample) else item.count


@dataclass(eq=False)
class Writer:
    """See the module doc."""

    spool: Spool
    store: Store
    config: WriteConfig
    metrics: GatewayMetrics
    records: RecordStore
    memo: EntryMemo | None = None
    """What ingest decoded already (see :class:`EntryMemo`)."""
    store_up: bool | None = field(init=False, default=None)
    causes: CauseLog = field(init=False, default_factory=lambda: CauseLog(log))

    async def _collect(self, entries: list[Entry]) -> _Batch:
        items: list[Writable] = []
        points = 0
        last_id = entries[0].id
        memo = self.memo
        for entry in entries:
            if items and points + entry.count > self.config.batch_max_lines:
                break  # ingest counts an entry's readings: it would not fit
            item: Writable | None = memo.take(entry.id) if memo is not None else None
            if item is None:
                try:
                    item = decode_entry(entry.data)
                except (ValueError, KeyError, TypeError) as exc:
                    await self._record_rejected(
                        [(f"spool entry {entry.id}", f"corrupt entry: {exc}")]
                    )
                    last_id = entry.id
                    continue
            if items and points + _points(item) > self.config.batch_max_lines:
                if memo is not None and not isinstance(item, MetricsSample):
                    memo.put(entry.id, item, len(entry.data))  # the next batch starts with it
                break
            items.append(item)
            points += _points(item)
            last_id = entry.id
        return _Batch(entries[0].id, last_id, items, points)

    async def _read(self, after_id: int) -> tuple[list[Entry], bool]:
        """The entries of the next batch (at most ``batch_max_lines`` readings by the counts
        ingest gave them), and whether it is full: more is spooled behind it."""
        limit = self.config.batch_max_lines
        entries = await self.spool.read(after_id, ENTRIES_PER_READ, max_items=limit)
        if not entries:
            return entries, False
        full = len(entries) == ENTRIES_PER_READ or sum(e.count for e in entries) >= limit
        if not full:
            full = bool(await self.spool.read(entries[-1].id, 1))
        return entries, full

    async def _next_batch(self, after_id: int) -> _Batch:
        while True:
            self.spool.changed.clear()
            entries, full = await self._read(after_id)
            if not entries:
                await self.spool.changed.wait()
                continue
            if not full and self.config.batch_max_delay_ms:
                # A partial batch waits at most the configured delay for more, and no longer
                # once ingest's appends have stopped: the end of a stream is written at once.
                await self.spool.until_quiet(self.config.batch_max_delay_ms / 1000)
                entries, _ = await self._read(after_id)
            return await self._collect(entries)

    async def run(self) -> None:
        """Write until cancelled, with up to ``concurrency`` batches in flight.

        Batches are taken from the spool in id order; each leaves the spool when its own write
        succeeded, whatever the order they finish in (writes are idempotent)."""
        slots = asyncio.Semaphore(self.config.concurrency)
        cursor = 0
        async with asyncio.TaskGroup() as group:
            while True:
                batch = await self._full_batch_ahead(cursor) if slots.locked() else None
                await slots.acquire()
                if batch is None:
                    try:
                        batch = await self._next_batch(cursor)
                    except BaseException:
                        slots.release()
                        raise
                cursor = batch.last_id
                group.create_task(self._write(batch, slots))

    async def _full_batch_ahead(self, after_id: int) -> _Batch | None:
        """While the writes in flight hold every slot: the next batch if it is full already,
        so that reading it (from SQLite, for a writer that fell behind its memory) and parsing
        it again overlap those writes instead of following them. A partial batch is left to be
        taken once a slot is free, with what arrives meanwhile."""
        entries, full = await self._read(after_id)
        return await self._collect(entries) if full else None

    async def _write(self, batch: _Batch, slots: asyncio.Semaphore) -> None:
        try:
            await self._write_batch(batch)
            # The entries leave the spool in the transaction of ingest's next append (or alone
            # shortly after): no commit and fsync of their own, and the slot is free now. A
            # kill before that commit writes them again on restart (writes are idempotent).
            removed = self.spool.ack_later(batch.first_id, batch.last_id)
        finally:
            slots.release()
        await removed  # a spool that cannot remove them fails the writer, as before

    async def _write_batch(self, batch: _Batch) -> None:
        """Write a batch until the store took it (retried with backoff while it is down)."""
        backoff = BackoffTimer(self.config.retry)
        while True:
            started = time.perf_counter()
            try:
                result = await self._store_write(batch.items) if batch.items else None
            except StoreError as exc:
                self.metrics.write_errors += 1
                self._set_up(False, str(exc))
                await asyncio.sleep(backoff.next_delay())
                continue
            break
        self._set_up(True, None)
        latency = (time.perf_counter() - started) * 1000
        self.metrics.write_latency_ms = latency
        self.metrics.write_latency_ms_max = max(self.metrics.write_latency_ms_max, latency)
        if result is not None:
            self.metrics.written += result.written
            self.metrics.readings_written += sum(
                i.count for i in batch.items if not isinstance(i, MetricsSample)
            ) - len(result.rejected)
            self.metrics.write_batches += 1
            if result.rejected:
                self.metrics.write_rejected += len(result.rejected)
                await self._record_rejected(result.rejected)

    async def _store_write(self, items: list[Writable]) -> WriteResult:
        """The store's write; anything it raises but a StoreError is isolated (see the doc)."""
        try:
            return await self.store.write(items)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a point the store chokes on is refused alone
            self.causes.log(
                logging.ERROR,
                "store write raised, isolating the point",
                f"write raised {type(exc).__name__}",
                store=self.store.name,
                reason=str(exc)[:300],
            )
            halves = _halves(items)
            if halves is None:
                return WriteResult(
                    rejected=[(repr(items[0])[:500], f"{type(exc).__name__}: {exc}")]
                )
            result = WriteResult()
            for half in halves:
                part = await self._store_write(half)
                result.written += part.written
                result.rejected += part.rejected
            return result

    def _set_up(self, up: bool, reason: str | None) -> None:
        self.metrics.store_up = int(up)
        if self.store_up == up:
            return
        if up:
            if self.store_up is False:
                log_event(log, logging.INFO, "store recovered", store=self.store.name)
        else:
            log_event(
                log,
                logging.WARNING,
                "store unavailable, retrying",
                store=self.store.name,
                reason=reason,
            )
        self.store_up = up

    async def _record_rejected(self, rejected: list[tuple[str, str]]) -> None:
        for point, reason in rejected[:1]:
            self.causes.log(
                logging.ERROR,
                "store refused point",
                "point refused",
                store=self.store.name,
                reason=reason[:300],
                point=point[:200],
                points=len(rejected),
            )
        topic = f"store:{self.store.name}"

        def record(db: Any) -> None:
            now = time.time_ns()
            db.execute("BEGIN")
            for point, reason in rejected:
                data = point.encode(errors="replace")
                deadletters.insert(db, now, topic, reason[:2000], len(data), data[:65536])
            db.execute("COMMIT")

        await self.records.run(record)

    async def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the spool to empty; True if it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.spool.depth and loop.time() < deadline:
            self.spool.changed.clear()
            try:
                await asyncio.wait_for(self.spool.changed.wait(), deadline - loop.time())
            except TimeoutError:
                break
        return self.spool.depth == 0
