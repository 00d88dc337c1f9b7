"""Spool → MQTT: batches of readings, QoS 1, a bounded window of unacknowledged publishes.

An entry leaves the spool only when the broker acknowledged the batch that carried it. The window
bounds the batches in flight well below paho's 65,535 message ids, past which paho silently
overwrites pending messages (NOTES.md). A batch the broker refuses (an MQTT 5 PUBACK with a failure
reason, e.g. not authorised for the topic) stays in the spool and is retried with backoff.

Flush when idle, batch when busy: with nothing in flight and no message in the last
``BUSY_LINGER_S``, what the spool holds goes at once (a reading waits for no company when the
link is idle); otherwise a partial batch waits until what is in flight is acknowledged and
``BUSY_LINGER_S`` passed since the last message (at most ``batch_max_delay_ms`` in all),
gathering what arrives meanwhile. So a light load sees about
the broker's round trip, a heavy one large batches and few messages.
A spool entry may hold several readings (one poll); a batch holds whole entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
from dataclasses import dataclass

from core.backoff import Backoff, BackoffTimer
from core.logs import log_event
from core.mqtt import MqttLink
from core.spool import Entry, Spool, within_items
from edge_agent.metrics import AgentMetrics
from edge_agent.settings import PublishConfig
from edge_agent.wire import join_batch

log = logging.getLogger("etalon.agent")

READ_AHEAD_BATCHES = 4
"""How many batches' worth of entries one read of the spool fetches."""

_COUNT = operator.attrgetter("count")
_DATA = operator.attrgetter("data")

BUSY_LINGER_S = 0.04
"""The least time between two partial batches: at most 25 partial
batches a second (each costs a message, its PUBACK and a spool commit), not one per poll. At
20 ms the agent spent more per datapoint on messages than it saved on latency."""


@dataclass(frozen=True, slots=True)
class InFlight:
    """A published batch awaiting its PUBACK: the spool ids it carries."""

    first_id: int
    last_id: int
    count: int
    """Readings."""
    entries: int


@dataclass(eq=False)
class Publisher:
    """Publishes the spool in id order; see the module doc."""

    link: MqttLink
    spool: Spool
    topic: str
    site: str
    agent: str
    config: PublishConfig
    metrics: AgentMetrics

    def __post_init__(self) -> None:
        self.inflight: dict[int, InFlight] = {}
        self._cursor = 0
        self._seq = 0
        self._room = asyncio.Event()
        self._room.set()
        self._all_acked = asyncio.Event()
        self._all_acked.set()
        self._per_entry = 1
        """Readings per entry in the last read: how many entries make a batch."""
        self._ahead: list[Entry] = []
        """Unsent entries read ahead, in id order, all after the cursor."""
        self._last_publish = 0.0
        self._refused: list[InFlight] = []
        self._refusal_backoff = BackoffTimer(Backoff(initial_s=1.0, max_s=60.0))
        self._ack_tasks: set[asyncio.Task[None]] = set()
        self.link.on_ack = self._on_ack

    def _on_ack(self, mid: int, failure: str | None) -> None:
        batch = self.inflight.pop(mid, None)
        if batch is None:
            return  # a status or metrics message
        if len(self.inflight) < self.config.window:
            self._room.set()
        if not self.inflight:
            self._all_acked.set()
        if failure is not None:
            self.metrics.publish_refused += batch.count
            log_event(
                log,
                logging.ERROR,
                "broker refused batch, kept in spool",
                reason=failure,
                readings=batch.count,
            )
            self._refused.append(batch)
            self.spool.changed.set()
            return
        self._refusal_backoff.reset()
        task = asyncio.get_running_loop().create_task(self._ack(batch))
        self._ack_tasks.add(task)
        task.add_done_callback(self._ack_tasks.discard)

    async def _ack(self, batch: InFlight) -> None:
        # Removed with the next append's commit (one fsync for both), or alone shortly after.
        removed = await self.spool.ack_later(batch.first_id, batch.last_id)
        self.metrics.acknowledged += removed

    async def _next_entries(self) -> list[Entry]:
        if self._refused:
            await asyncio.sleep(self._refusal_backoff.next_delay())
            batch = self._refused.pop(0)
            entries = await self.spool.read(batch.first_id - 1, batch.entries)
            return [e for e in entries if e.id <= batch.last_id]
        limit = self.config.batch_max_readings
        entries = await self._read(limit)
        delay_s = self.config.batch_max_delay_ms / 1000
        loop = asyncio.get_running_loop()
        busy = bool(self.inflight) or loop.time() < self._last_publish + BUSY_LINGER_S
        if entries and sum(map(_COUNT, entries)) < limit and delay_s and busy:
            # Busy: let a partial batch fill until what is in flight is acknowledged and the
            # linger since the last message passed, at most for the configured delay.
            deadline = loop.time() + delay_s
            if self.inflight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._all_acked.wait(), delay_s)
            linger = min(self._last_publish + BUSY_LINGER_S, deadline) - loop.time()
            if linger > 0:
                await asyncio.sleep(linger)
            entries = await self._read(limit)
        return entries

    async def _read(self, limit: int) -> list[Entry]:
        """The next batch: the oldest unsent entries holding at most ``limit`` readings (but
        always one). Read ahead, ``READ_AHEAD_BATCHES`` batches at a time: a drain of a deep
        spool waits for the spool's thread, behind its commits, once per several batches."""
        ahead = self._ahead
        cursor = max(self._cursor, self.spool.dropped_through)
        if ahead and ahead[0].id <= cursor:  # published, or dropped to make room
            ahead = self._ahead = [e for e in ahead if e.id > cursor]
        held = sum(map(_COUNT, ahead))
        if held < limit:
            want = READ_AHEAD_BATCHES * (-(-limit // self._per_entry)) + 1
            more = await self.spool.read(
                ahead[-1].id if ahead else cursor, want, max_items=READ_AHEAD_BATCHES * limit
            )
            if more:
                self._per_entry = max(1, more[-1].count)
                ahead.extend(more)
                held += sum(map(_COUNT, more))
        if held <= limit:
            return list(ahead)
        return within_items(ahead, limit)

    async def run(self) -> None:
        """Publish until cancelled."""
        while True:
            await self.link.connected.wait()
            await self._room.wait()
            self.spool.changed.clear()
            entries = await self._next_entries()
            if not entries:
                await self.spool.changed.wait()
                continue
            payload = join_batch(self.site, self.agent, self._seq, list(map(_DATA, entries)))
            self._seq += 1
            mid = self.link.publish(self.topic, payload, qos=1)
            count = sum(map(_COUNT, entries))
            self.inflight[mid] = InFlight(entries[0].id, entries[-1].id, count, len(entries))
            self._all_acked.clear()
            self._last_publish = asyncio.get_running_loop().time()
            self._cursor = max(self._cursor, entries[-1].id)
            self.metrics.published += count
            self.metrics.publish_batches += 1
            if len(self.inflight) >= self.config.window:
                self._room.clear()

    def idle(self) -> bool:
        """Nothing in flight and nothing spooled."""
        return not self.inflight and not self._ack_tasks and self.spool.depth == 0

    async def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the spool to empty; True if it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.idle() and loop.time() < deadline:
            self.spool.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.spool.changed.wait(), deadline - loop.time())
        if self._ack_tasks:  # within the same deadline: a stop never waits on the spool
            await asyncio.wait(self._ack_tasks, timeout=max(0.0, deadline - loop.time()))
        return self.idle()
