"""Spool → MQTT: batches of readings, QoS 1, a bounded window of unacknowledged publishes.

An entry leaves the spool only when the broker acknowledged the batch that carried it. The window
bounds the batches in flight well below paho's 65,535 message ids, past which paho silently
overwrites pending messages (NOTES.md). A batch the broker refuses (an MQTT 5 PUBACK with a failure
reason, e.g. not authorised for the topic) stays in the spool and is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from core.backoff import Backoff, BackoffTimer
from core.logs import log_event
from core.mqtt import MqttLink
from core.spool import Entry, Spool
from edge_agent.config import PublishConfig
from edge_agent.metrics import AgentMetrics
from edge_agent.wire import join_batch

log = logging.getLogger("etalon.agent")


@dataclass(frozen=True, slots=True)
class InFlight:
    """A published batch awaiting its PUBACK: the spool ids it carries."""

    first_id: int
    last_id: int
    count: int


class Publisher:
    """Publishes the spool in id order; see the module doc."""

    def __init__(
        self,
        link: MqttLink,
        spool: Spool,
        topic: str,
        site: str,
        agent: str,
        config: PublishConfig,
        metrics: AgentMetrics,
    ) -> None:
        self.link = link
        self.spool = spool
        self.topic = topic
        self.site = site
        self.agent = agent
        self.config = config
        self.metrics = metrics
        self.inflight: dict[int, InFlight] = {}
        self._cursor = 0
        self._seq = 0
        self._room = asyncio.Event()
        self._room.set()
        self._refused: list[InFlight] = []
        self._refusal_backoff = BackoffTimer(Backoff(initial_s=1.0, max_s=60.0))
        self._ack_tasks: set[asyncio.Task[None]] = set()
        link.on_ack = self._on_ack

    def _on_ack(self, mid: int, failure: str | None) -> None:
        batch = self.inflight.pop(mid, None)
        if batch is None:
            return  # a status or metrics message
        if len(self.inflight) < self.config.window:
            self._room.set()
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
        removed = await self.spool.ack(batch.first_id, batch.last_id)
        self.metrics.acknowledged += removed

    async def _next_entries(self) -> list[Entry]:
        if self._refused:
            await asyncio.sleep(self._refusal_backoff.next_delay())
            batch = self._refused.pop(0)
            entries = await self.spool.read(batch.first_id - 1, batch.count)
            return [e for e in entries if e.id <= batch.last_id]
        limit = self.config.batch_max_readings
        entries = await self.spool.read(self._cursor, limit)
        if 0 < len(entries) < limit and self.config.batch_max_delay_ms:
            # Let a partial batch fill for at most the configured delay.
            await asyncio.sleep(self.config.batch_max_delay_ms / 1000)
            entries = await self.spool.read(self._cursor, limit)
        return entries

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
            payload = join_batch(self.site, self.agent, self._seq, [e.data for e in entries])
            self._seq += 1
            mid = self.link.publish(self.topic, payload, qos=1)
            self.inflight[mid] = InFlight(entries[0].id, entries[-1].id, len(entries))
            self._cursor = max(self._cursor, entries[-1].id)
            self.metrics.published += len(entries)
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
        if self._ack_tasks:
            await asyncio.gather(*self._ack_tasks, return_exceptions=True)
        return self.idle()
