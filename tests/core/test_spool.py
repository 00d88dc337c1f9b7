"""The spool: transactional, bounded (oldest dropped and counted), durable across a SIGKILL."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import core.spool
from core.errors import SpoolError
from core.spool import Spool, SpoolConfig


async def open_spool(path: Path, max_bytes: int = 1_000_000, sync: str = "full") -> Spool:
    spool = Spool(SpoolConfig(path=path, max_bytes=max_bytes, synchronous=sync), "test")  # type: ignore[arg-type]
    await spool.open()
    return spool


async def test_entries_leave_only_when_acknowledged(tmp_path: Path) -> None:
    spool = await open_spool(tmp_path / "s.db")
    await spool.append([b"a", b"bb", b"ccc"])
    entries = await spool.read(0, 10)
    assert [e.data for e in entries] == [b"a", b"bb", b"ccc"]
    assert (spool.depth, spool.bytes) == (3, 6)
    assert await spool.ack(entries[0].id, entries[1].id) == 2
    assert [e.data for e in await spool.read(0, 10)] == [b"ccc"]
    assert (spool.depth, spool.bytes, spool.acked) == (1, 3, 2)
    # Reading after a cursor skips what was handed out already.
    assert await spool.read(entries[2].id, 10) == []
    await spool.close()


async def test_an_append_inserts_its_entries_in_few_statements(tmp_path: Path) -> None:
    """Every statement's step lets go of the GIL and takes it back, at up to the switch
    interval's cost while the event loop computes: an append of 1,200 entries is three INSERT
    statements (500 rows each at most), not 1,200, and gives them consecutive ids in order."""
    spool = await open_spool(tmp_path / "s.db", max_bytes=10_000_000)
    statements: list[str] = []
    assert spool._db is not None
    spool._db.set_trace_callback(statements.append)
    entries = [(f"entry {k}".encode(), k % 7) for k in range(1200)]
    try:
        await spool.append(entries)
        read = await spool.read(0, 2000)
    finally:
        await spool.close()
    assert sum(s.startswith("INSERT") for s in statements) == 3
    assert spool.last_ids == range(1, 1201)
    assert [(e.id, e.data, e.count) for e in read] == [
        (k + 1, data, count) for k, (data, count) in enumerate(entries)
    ]
    assert spool.depth == sum(count for _, count in entries)


async def test_removed_entries_are_zeroed_only_where_their_pages_are_written_anyway(
    tmp_path: Path,
) -> None:
    """secure_delete FAST, whatever the platform's SQLite was built with (Debian's zeroes every
    removed entry, writing its pages again: twice the spool's writes for what leaves it)."""
    spool = await open_spool(tmp_path / "s.db")
    try:
        assert spool._db is not None
        assert spool._db.execute("PRAGMA secure_delete").fetchone() == (2,)
    finally:
        await spool.close()


async def test_ids_keep_growing_after_the_spool_emptied_and_reopened(tmp_path: Path) -> None:
    spool = await open_spool(tmp_path / "s.db")
    await spool.append([b"x"])
    [first] = await spool.read(0, 1)
    await spool.ack(first.id, first.id)
    await spool.close()
    spool = await open_spool(tmp_path / "s.db")
    await spool.append([b"y"])
    [second] = await spool.read(0, 1)
    assert second.id > first.id  # a publisher's cursor is never overtaken by reused ids
    await spool.close()


async def test_a_full_spool_drops_the_oldest_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = await open_spool(tmp_path / "s.db", max_bytes=1024)
    await spool.append([b"%04d" % i + b"." * 96 for i in range(10)])  # 10 x 100 bytes
    dropped = await spool.append([b"new" + b"." * 197])  # 200 more: 2 oldest must go
    assert dropped == 2
    assert spool.dropped == 2
    [logged] = [r for r in caplog.records if r.getMessage() == "spool full, oldest entries dropped"]
    assert (logged.dropped, logged.spool) == (2, "test")  # type: ignore[attr-defined]
    assert (spool.depth, spool.bytes) == (9, 1000)
    remaining = await spool.read(0, 100)
    assert remaining[0].data.startswith(b"0002") and remaining[-1].data.startswith(b"new")
    await spool.close()
    reopened = await open_spool(tmp_path / "s.db", max_bytes=1024)
    assert (reopened.depth, reopened.bytes) == (9, 1000)
    await reopened.close()


async def test_an_unusable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    spool = Spool(SpoolConfig(path=path), "test")
    with pytest.raises(SpoolError, match=f"spool {path}: cannot open: file is not a database"):
        await spool.open()
    await spool.close()


WRITER = """
import asyncio, sys
from pathlib import Path
from core.spool import SpoolConfig
from core.spool import Spool

async def main():
    spool = Spool(SpoolConfig(path=Path(sys.argv[1]), synchronous=sys.argv[2]), "w")
    await spool.open()
    n = 0
    while True:
        await spool.append([b"%08d" % (n + i) for i in range(50)])
        n += 50
        print(n, flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize("sync", ["full", "normal"])
def test_every_committed_entry_survives_sigkill(tmp_path: Path, sync: str) -> None:
    path = tmp_path / "s.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), sync],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    committed = 0
    deadline = time.monotonic() + 30
    while committed < 3000 and time.monotonic() < deadline:
        committed = int(proc.stdout.readline())
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    import sqlite3

    db = sqlite3.connect(path)
    rows = [int(r[0]) for r in db.execute("SELECT entry FROM spool ORDER BY id")]
    db.close()
    assert len(rows) >= committed
    assert rows == list(range(len(rows)))  # no hole, no duplicate, in order


async def test_reads_bounded_in_items_are_the_same_from_disk_and_from_memory(
    tmp_path: Path,
) -> None:
    """A reader that fell behind reads from SQLite (entries past what memory holds): a read
    bounded in items takes the same whole entries, always the first, as one from memory does."""
    counts = [500, 500, 3, 9_000, 1, 1, 10_000, 20_000, 500, 0, 7]
    config = SpoolConfig(path=tmp_path / "s.db", max_bytes=10**9)
    on_disk = Spool(config, "disk", memory_bytes=0)
    in_memory = Spool(config.model_copy(update={"path": tmp_path / "m.db"}), "memory")
    for spool in (on_disk, in_memory):
        await spool.open()
        await spool.append([(bytes([i]) * 50, n) for i, n in enumerate(counts)])
    try:
        for after in range(len(counts) + 1):
            for limit in (1, 2, 5, 256):
                for max_items in (None, 0, 1, 500, 1_000, 1_003, 10_000, 30_000, 10**6):
                    want = [
                        (e.data, e.count) for e in await in_memory.read(after, limit, max_items)
                    ]
                    got = [(e.data, e.count) for e in await on_disk.read(after, limit, max_items)]
                    assert got == want, (after, limit, max_items)
        # Which way each read went is what the test is about: the disk one must not be served
        # from memory, the memory one must be.
        assert on_disk._from_memory(0, 5, None) is None
        assert in_memory._from_memory(0, 5, None) is not None
    finally:
        await on_disk.close()
        await in_memory.close()


async def test_reads_do_not_wait_behind_the_writers_thread(tmp_path: Path) -> None:
    """Reads have their own connection and thread: a read is answered while the appending
    thread is busy (here: held), and it sees every committed append and no removed entry."""
    spool = Spool(SpoolConfig(path=tmp_path / "s.db", max_bytes=10**6), "test", memory_bytes=0)
    await spool.open()
    try:
        await spool.append([b"a", b"b", b"c"])
        first = await spool.read(0, 10)
        assert [e.data for e in first] == [b"a", b"b", b"c"]
        held = threading.Event()
        busy = asyncio.get_running_loop().run_in_executor(spool._executor, held.wait, 60)
        try:
            # On the appending thread this read would wait for the held job: 60 s, then fail.
            again = await asyncio.wait_for(spool.read(0, 10), 30)
        finally:
            held.set()
            await busy
        assert [e.data for e in again] == [b"a", b"b", b"c"]
        await spool.ack(first[0].id, first[1].id)
        await spool.append([b"d"])
        assert [e.data for e in await spool.read(0, 10)] == [b"c", b"d"]
    finally:
        await spool.close()
    assert spool._read_db is None


async def test_a_close_during_the_first_read_closes_the_readers_connection(
    tmp_path: Path,
) -> None:
    """The first read opens the readers' connection on the reads' thread; a close while it is
    still queued there closes it too (found in review: close() looked before it existed)."""
    spool = Spool(SpoolConfig(path=tmp_path / "s.db"), "t", memory_bytes=0)
    await spool.open()
    await spool.append([b"a", b"b"])
    held = threading.Event()
    busy = asyncio.get_running_loop().run_in_executor(spool._reads, held.wait, 10)
    reading = asyncio.ensure_future(spool.read(0, 10))  # the first read, queued behind `busy`
    await asyncio.sleep(0.05)
    threading.Timer(0.2, held.set).start()
    await spool.close()
    await busy
    assert [e.data for e in await reading] == [b"a", b"b"]
    assert spool._read_db is None


async def test_a_read_during_close_finds_it_closed_and_a_second_close_does_nothing(
    tmp_path: Path,
) -> None:
    """A read issued while close() closes the readers' connection does not open it again (it
    is refused: the spool is closed); closing twice is harmless (found in review)."""
    spool = Spool(SpoolConfig(path=tmp_path / "s.db"), "t", memory_bytes=0)
    await spool.open()
    await spool.append([b"a"])
    assert [e.data for e in await spool.read(0, 10)] == [b"a"]
    held = threading.Event()
    busy = asyncio.get_running_loop().run_in_executor(spool._reads, held.wait, 10)
    closing = asyncio.ensure_future(spool.close())
    await asyncio.sleep(0.05)  # close() now waits for the reads' thread
    late = asyncio.ensure_future(spool.read(0, 10))
    held.set()
    await busy
    await closing
    with pytest.raises(SpoolError, match="closed"):
        await late
    assert spool._read_db is None
    await spool.close()


async def test_entries_holding_several_items_count_items(tmp_path: Path) -> None:
    """One entry per poll: depth, dropped, acked and ack() count the items entries hold; a read
    bounded in items takes whole entries (always the first)."""
    spool = await open_spool(tmp_path / "s.db", max_bytes=1024)
    await spool.append([(b"a" * 100, 20), (b"b" * 100, 20), b"c" * 100])
    assert spool.depth == 41
    assert [e.count for e in await spool.read(0, 10)] == [20, 20, 1]
    assert [e.count for e in await spool.read(0, 10, max_items=30)] == [20]
    assert [e.count for e in await spool.read(0, 10, max_items=5)] == [20]
    assert [e.count for e in await spool.read(0, 10, max_items=41)] == [20, 20, 1]
    # Full: the oldest entry goes, and its 20 items are counted as dropped.
    assert await spool.append([(b"d" * 800, 7)]) == 20
    assert spool.depth == 28 and spool.dropped == 20
    entries = await spool.read(0, 10)
    assert await spool.ack(entries[0].id, entries[1].id) == 21
    assert spool.depth == 7
    await spool.close()
    reopened = await open_spool(tmp_path / "s.db", max_bytes=1024)
    assert reopened.depth == 7
    await reopened.close()


async def test_a_spool_file_from_before_counts_opens_with_one_item_per_entry(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE spool (id INTEGER PRIMARY KEY AUTOINCREMENT, entry BLOB NOT NULL)")
    db.executemany("INSERT INTO spool(entry) VALUES (?)", [(b"x",), (b"yy",)])
    db.commit()
    db.close()
    spool = await open_spool(path)
    assert (spool.depth, spool.bytes) == (2, 3)
    assert [(e.data, e.count) for e in await spool.read(0, 10)] == [(b"x", 1), (b"yy", 1)]
    await spool.append([(b"zzz", 5)])
    assert spool.depth == 7
    await spool.close()


async def test_reads_served_from_memory_match_the_file(tmp_path: Path) -> None:
    """The newest entries are read from memory; whatever was acknowledged or dropped is not
    read again, and a reader behind what memory holds gets the file's entries."""
    spool = await open_spool(tmp_path / "s.db", max_bytes=4096)
    await spool.append([bytes([65 + k]) * 100 for k in range(10)])
    first = await spool.read(0, 3)
    assert [e.data[:1] for e in first] == [b"A", b"B", b"C"]
    await spool.ack(first[0].id, first[1].id)
    assert [e.data[:1] for e in await spool.read(0, 2)] == [b"C", b"D"]
    assert [e.data[:1] for e in await spool.read(first[2].id, 2)] == [b"D", b"E"]
    # Acknowledged out of order (a retried batch): the rest stays readable.
    ids = [e.id for e in await spool.read(0, 10)]
    await spool.ack(ids[2], ids[3])  # E, F
    assert [e.data[:1] for e in await spool.read(0, 10)] == [b"C", b"D", b"G", b"H", b"I", b"J"]
    # Full: the oldest are dropped from the file and from memory alike.
    assert await spool.append([b"K" * 3900]) == 5
    assert [e.data[:1] for e in await spool.read(0, 10)] == [b"J", b"K"]
    await spool.close()
    reopened = await open_spool(tmp_path / "s.db", max_bytes=4096)
    assert [e.data[:1] for e in await reopened.read(0, 10)] == [b"J", b"K"]
    await reopened.close()


async def test_a_later_ack_rides_on_the_next_append_or_is_committed_alone(tmp_path: Path) -> None:
    spool = await open_spool(tmp_path / "s.db")
    await spool.append([(b"a" * 10, 4), (b"b" * 10, 6), (b"c" * 10, 1)])
    entries = await spool.read(0, 10)
    removed = spool.ack_later(entries[0].id, entries[1].id)
    assert not removed.done() and spool.depth == 11  # nothing committed yet
    await spool.append([(b"d" * 10, 2)])  # one transaction removes the two and adds one
    assert removed.done() and await removed == 10
    assert (spool.depth, spool.bytes, spool.acked) == (3, 20, 10)
    assert [e.data[:1] for e in await spool.read(0, 10)] == [b"c", b"d"]
    # With no append to carry it, it is committed alone, shortly.
    alone = spool.ack_later(entries[2].id, entries[2].id)
    assert await asyncio.wait_for(alone, 2.0) == 1
    assert (spool.depth, spool.acked) == (2, 11)
    # One still pending at close is committed before the file closes.
    [last] = await spool.read(entries[2].id, 10)
    spool.ack_later(last.id, last.id)
    await spool.close()
    spool = await open_spool(tmp_path / "s.db")
    assert spool.depth == 0 and await spool.read(0, 10) == []
    await spool.close()


async def test_an_ack_arriving_while_the_last_one_commits_is_committed_too(tmp_path: Path) -> None:
    # The agent's drain at the end of a spool: no append will come to carry an acknowledgement
    # made while the one before it is being committed alone (it used to wait forever, and the
    # agent's stop with it).
    spool = await open_spool(tmp_path / "s.db")
    await spool.append([(b"a", 3), (b"b", 4)])
    first, second = await spool.read(0, 10)
    gate = threading.Event()
    blocked = asyncio.get_running_loop().run_in_executor(spool._executor, gate.wait)
    one = spool.ack_later(first.id, first.id)
    while spool._acks:  # noqa: ASYNC110 - the flusher took it and waits for the spool's thread
        await asyncio.sleep(0.005)
    two = spool.ack_later(second.id, second.id)
    gate.set()
    await blocked
    assert await asyncio.wait_for(one, 2.0) == 3
    assert await asyncio.wait_for(two, 2.0) == 4
    assert spool.depth == 0
    await spool.close()


async def test_acknowledged_entries_free_their_room_before_the_oldest_are_dropped(
    tmp_path: Path,
) -> None:
    spool = await open_spool(tmp_path / "s.db", max_bytes=1024)
    await spool.append([b"%04d" % i + b"." * 96 for i in range(10)])  # 10 x 100 bytes
    entries = await spool.read(0, 10)
    acked = spool.ack_later(entries[0].id, entries[1].id)
    assert await spool.append([b"new" + b"." * 197]) == 0  # the acknowledged 200 bytes made room
    assert await acked == 2 and spool.dropped == 0 and spool.depth == 9
    await spool.close()


async def test_a_later_ack_survives_a_cancelled_append_that_would_have_carried_it(
    tmp_path: Path,
) -> None:
    # The gateway cancels ingest at shutdown, possibly while its append (carrying the writer's
    # removals) waits for the spool's thread: the removals must still happen, not be dropped.
    spool = await open_spool(tmp_path / "s.db")
    await spool.append([(b"a", 1), (b"b", 1)])
    first, _second = await spool.read(0, 10)
    removed = spool.ack_later(first.id, first.id)
    gate = threading.Event()
    busy = asyncio.get_running_loop().run_in_executor(spool._executor, gate.wait)
    carrier = asyncio.create_task(spool.append([(b"c", 1)]))
    await asyncio.sleep(0.01)
    carrier.cancel()
    with pytest.raises(asyncio.CancelledError):
        await carrier
    gate.set()
    await busy
    assert await asyncio.wait_for(removed, 2.0) == 1
    await spool.close()
    spool = await open_spool(tmp_path / "s.db")
    assert [e.data for e in await spool.read(0, 10)] == [b"b"]
    await spool.close()


async def test_a_later_ack_waits_for_no_append_once_the_appends_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A drain's end: appends came every few milliseconds and stopped. The removal is committed
    # as soon as they count as stopped, not after the whole delay (here 30 s).
    monkeypatch.setattr(core.spool, "ACK_DELAY_S", 30.0)
    spool = await open_spool(tmp_path / "s.db")
    for i in range(8):
        await spool.append([(b"%d" % i, 1)])
        await asyncio.sleep(0.002)
    entries = await spool.read(0, 10)
    loop = asyncio.get_running_loop()
    assert spool.quiet_at() < loop.time() + 1.0
    asked = loop.time()
    removed = spool.ack_later(entries[0].id, entries[-1].id)
    assert await asyncio.wait_for(removed, 10.0) == 8
    assert loop.time() - asked < 10.0 and spool.depth == 0
    await spool.close()


async def test_a_later_ack_waits_the_whole_delay_while_no_cadence_is_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One append says nothing about when the next comes: the removal waits for it (1 s here),
    # and the append that comes carries it.
    monkeypatch.setattr(core.spool, "ACK_DELAY_S", 1.0)
    spool = await open_spool(tmp_path / "s.db")
    await spool.append([(b"a", 1)])
    assert spool.quiet_at() == math.inf
    [entry] = await spool.read(0, 10)
    removed = spool.ack_later(entry.id, entry.id)
    await asyncio.sleep(0.3)
    assert not removed.done() and spool.depth == 1
    await spool.append([(b"b", 1)])
    assert removed.done() and spool.depth == 1
    await spool.close()


async def test_appends_that_keep_their_cadence_keep_a_later_ack_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Appends every 20 ms (quiet after 50 of their gaps without one, a second: no stall of a
    # busy machine counts as their end): a removal asked meanwhile rides on one of them.
    monkeypatch.setattr(core.spool, "ACK_DELAY_S", 30.0)
    monkeypatch.setattr(core.spool, "QUIET_GAPS", 50)
    spool = await open_spool(tmp_path / "s.db")
    for i in range(4):
        await spool.append([(b"%d" % i, 1)])
        await asyncio.sleep(0.02)
    [first, *_] = await spool.read(0, 10)
    flushes = 0
    commit_acks = spool._commit_acks

    async def counted() -> None:
        nonlocal flushes
        flushes += 1
        await commit_acks()

    monkeypatch.setattr(spool, "_commit_acks", counted)
    removed = spool.ack_later(first.id, first.id)
    for i in range(4, 10):
        await spool.append([(b"%d" % i, 1)])
        await asyncio.sleep(0.02)
    assert removed.done() and flushes == 0  # carried by an append, no commit of its own
    await spool.close()
