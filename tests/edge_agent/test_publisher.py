"""The publisher against a real Mosquitto: at most ``window`` batches in flight while the broker
does not acknowledge (the guard against paho's silent loss past 65,535 message ids), batches cut
at N readings or after T ms, and a batch leaves the spool only when the broker took it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from core.mqtt import Message, MqttConfig, MqttLink
from core.spool import Entry, Spool, SpoolConfig
from edge_agent.config import PublishConfig
from edge_agent.metrics import AgentMetrics
from edge_agent.publisher import READ_AHEAD_BATCHES, Publisher
from tests.support.services import Mosquitto

TOPIC = "etalon/v1/lab/bench/readings"


@contextlib.contextmanager
def frozen(broker: Mosquitto) -> Iterator[None]:
    """The broker stopped in its tracks (SIGSTOP): it reads nothing and acknowledges nothing."""
    assert broker.process is not None
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, broker: Mosquitto, config: PublishConfig, **spool_settings: object
) -> AsyncIterator[tuple[Publisher, Spool, AgentMetrics, list[dict[str, object]]]]:
    """A spool (``spool_settings``: its config's fields), a publisher on its own connection,
    and a subscriber collecting the batches."""
    mqtt = MqttConfig(host="127.0.0.1", port=broker.port, keepalive_s=30)
    spool_config = SpoolConfig.model_validate({"path": tmp_path / "spool.db", **spool_settings})
    spool = Spool(spool_config, "agent")
    await spool.open()
    received: list[dict[str, object]] = []

    def collect(message: Message) -> None:
        received.append(json.loads(message.payload))

    subscriber = MqttLink(mqtt, "test-subscriber")
    subscriber.on_message = collect
    await subscriber.start()
    subscriber.subscribe(TOPIC, qos=1)
    await asyncio.wait_for(subscriber.subscribed.wait(), 30)  # the broker answered: in place
    link = MqttLink(mqtt, "test-publisher")
    await link.start()
    metrics = AgentMetrics()
    publisher = Publisher(link, spool, TOPIC, "lab", "bench", config, metrics)
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher, spool, metrics, received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await link.stop()
        await subscriber.stop()
        await spool.close()


def entries(first: int, count: int) -> list[bytes]:
    return [json.dumps({"n": n}).encode() for n in range(first, first + count)]


def readings_in(received: list[dict[str, object]]) -> int:
    """Readings the subscriber has: the broker's PUBACK to the publisher does not wait for
    its delivery to the subscriber, which a loaded machine may take longer over."""
    return sum(len(batch["readings"]) for batch in received)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - counters have no event
        await asyncio.sleep(0.02)


async def test_no_more_than_the_window_in_flight_while_the_broker_is_silent(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = PublishConfig(batch_max_readings=10, batch_max_delay_ms=0, window=3)
    async with running(tmp_path, mosquitto, config) as (publisher, spool, metrics, received):
        with frozen(mosquitto):
            await spool.append(entries(0, 1000))
            await until(lambda: metrics.publish_batches >= 3)
            await asyncio.sleep(1.0)  # room for a fourth, which must not go
            # Three batches went out and wait for their PUBACK; nothing more is sent, and
            # nothing left the spool.
            assert metrics.publish_batches == 3
            assert len(publisher.inflight) == 3
            assert metrics.acknowledged == 0
            assert spool.depth == 1000
        await until(lambda: metrics.acknowledged == 1000 and len(received) == 100)
    assert metrics.acknowledged == 1000 and spool.depth == 0
    # Every reading once, in order, in batches of ten.
    numbers = [r["n"] for batch in received for r in batch["readings"]]  # type: ignore[attr-defined]
    assert numbers == list(range(1000))
    assert {len(batch["readings"]) for batch in received} == {10}  # type: ignore[arg-type]
    assert [batch["seq"] for batch in received] == list(range(100))


async def test_a_batch_is_cut_at_n_readings_or_after_t_ms(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = PublishConfig(batch_max_readings=10, batch_max_delay_ms=400, window=8)
    async with running(tmp_path, mosquitto, config) as (_publisher, spool, metrics, received):
        # 25 at once: two full batches at once, the last 5 when those were acknowledged.
        await spool.append(entries(0, 25))
        await until(lambda: metrics.acknowledged == readings_in(received) == 25)
        assert [len(b["readings"]) for b in received] == [10, 10, 5]  # type: ignore[arg-type]
        with frozen(mosquitto):
            # A reading alone on an idle link goes at once; while it waits for its PUBACK, the
            # next ones wait for company, at most the delay.
            await spool.append(entries(25, 1))
            await until(lambda: metrics.publish_batches == 4)
            assert metrics.publish_batches == 4
            started = time.monotonic()
            await spool.append(entries(26, 1))
            await asyncio.sleep(0.1)
            await spool.append(entries(27, 2))
            await until(lambda: metrics.publish_batches == 5, 2.0)
            waited = time.monotonic() - started
        await until(lambda: metrics.acknowledged == readings_in(received) == 29)
    assert [len(b["readings"]) for b in received] == [10, 10, 5, 1, 3]  # type: ignore[arg-type]
    assert waited >= 0.35, waited  # not one batch per reading while busy
    assert metrics.publish_batches == 5


async def test_readings_on_an_idle_link_go_at_once(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Flush when idle: a light load is not held back to fill a batch."""
    config = PublishConfig(batch_max_readings=500, batch_max_delay_ms=10_000, window=8)
    async with running(tmp_path, mosquitto, config) as (_publisher, spool, metrics, received):
        delays = []
        for n in range(5):
            started = time.monotonic()
            await spool.append(entries(n, 1))
            await until(lambda n=n: len(received) == n + 1)  # type: ignore[misc]
            delays.append(time.monotonic() - started)
    assert metrics.publish_batches == 5
    # Far below the 10 s a batch may wait while busy (a round trip through the broker on a
    # loaded machine may take a good part of a second: not what is asked here).
    assert max(delays) < 5.0, delays


async def test_entries_holding_several_readings_count_as_readings(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """An entry per poll: a batch takes whole entries up to its size in readings, and every
    counter counts readings."""
    config = PublishConfig(batch_max_readings=10, batch_max_delay_ms=0, window=8)
    async with running(tmp_path, mosquitto, config) as (_publisher, spool, metrics, received):
        polls = [(b",".join(entries(4 * k, 4)), 4) for k in range(5)]
        await spool.append(polls)
        assert spool.depth == 20
        await until(lambda: metrics.acknowledged == readings_in(received) == 20)
    assert metrics.published == 20 and spool.depth == 0
    assert [len(b["readings"]) for b in received] == [8, 8, 4]  # type: ignore[arg-type]
    numbers = [r["n"] for batch in received for r in batch["readings"]]  # type: ignore[attr-defined]
    assert numbers == list(range(20))


@pytest.mark.parametrize("window", [1, 2])
async def test_the_window_holds_whatever_its_size(
    tmp_path: Path, mosquitto: Mosquitto, window: int
) -> None:
    config = PublishConfig(batch_max_readings=5, batch_max_delay_ms=0, window=window)
    async with running(tmp_path, mosquitto, config) as (publisher, spool, metrics, _received):
        with frozen(mosquitto):
            await spool.append(entries(0, 100))
            await until(lambda: metrics.publish_batches >= window)
            await asyncio.sleep(1.0)  # room for one more, which must not go
            assert len(publisher.inflight) == window == metrics.publish_batches
        await until(lambda: metrics.acknowledged == 100)
    assert spool.depth == 0


def padded(first: int, count: int) -> list[bytes]:
    """Entries of 20 bytes each: room in a small spool is counted in whole entries."""
    return [(b'{"n":%d,"p":"' % n).ljust(18, b"x") + b'"}' for n in range(first, first + count)]


async def test_a_deep_spool_is_read_several_batches_at_a_time(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """What an earlier run left on disk is read ahead: one trip to the spool's thread per
    READ_AHEAD_BATCHES batches, not one per batch (each waits behind the thread's commits)."""
    spool = Spool(SpoolConfig(path=tmp_path / "spool.db"), "agent")
    await spool.open()
    await spool.append(entries(0, 2000))
    await spool.close()  # reopened below: nothing of it is in memory
    config = PublishConfig(batch_max_readings=50, batch_max_delay_ms=0, window=8)
    async with running(tmp_path, mosquitto, config) as (_publisher, spool, metrics, received):
        trips = []
        read = spool._read

        def counted(after_id: int, limit: int, max_items: int | None = None) -> list[Entry]:
            trips.append(limit)
            return read(after_id, limit, max_items)

        spool._read = counted  # type: ignore[method-assign]
        await until(lambda: metrics.publish_batches == 40)
        # Ten reads of four batches, and maybe one that found the spool's end.
        assert len(trips) <= 40 // READ_AHEAD_BATCHES + 2, trips
        await until(lambda: metrics.acknowledged == readings_in(received) == 2000)
    numbers = [r["n"] for batch in received for r in batch["readings"]]  # type: ignore[attr-defined]
    assert numbers == list(range(2000))
    assert metrics.publish_batches == 40


async def test_entries_read_ahead_then_dropped_to_make_room_are_not_published(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A full spool drops its oldest entries (counted): those the publisher had read ahead
    but not sent go too, never published after being counted as dropped."""
    config = PublishConfig(batch_max_readings=10, batch_max_delay_ms=0, window=1)
    async with running(tmp_path, mosquitto, config, max_bytes=1024) as (
        publisher,
        spool,
        metrics,
        received,
    ):
        with frozen(mosquitto):
            await spool.append(padded(0, 40))  # ids 1-40, 800 bytes
            await until(lambda: metrics.publish_batches == 1)
            # 1-10 in flight; 11-40 read ahead. 600 bytes more: ids 1-19 dropped to fit.
            assert await spool.append(padded(40, 30)) == 19
            assert spool.dropped_through == 19
        await until(
            lambda: spool.depth == 0 and not publisher.inflight and readings_in(received) == 61
        )
    numbers = [r["n"] for batch in received for r in batch["readings"]]  # type: ignore[attr-defined]
    assert numbers == list(range(10)) + list(range(19, 70))
    assert metrics.published == 10 + 51
