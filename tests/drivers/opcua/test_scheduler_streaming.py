"""The streaming extension of the driver contract, as the instrument runner consumes it.

The driver here is a stand-in that implements the contract (not a protocol): the OPC UA tests
exercise the same path with a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from core.clock import SystemClock
from core.errors import NotConnected
from drivers.base import StreamingDriver
from drivers.reading import Reading
from drivers.sim.inprocess import SimChannel, SimInstrument
from edge_agent.metrics import AgentMetrics
from edge_agent.scheduler import InstrumentRunner


class PushingDriver:
    """Pushes channel 'pushed' from a queue the test feeds; polls the others."""

    def __init__(self) -> None:
        self.pushes: asyncio.Queue[list[Reading] | NotConnected] = asyncio.Queue()
        self.connects = 0
        self.streams = 0
        self.polled: list[str] = []
        self.failing_polls = 0

    async def connect(self) -> None:
        self.connects += 1

    async def read(self, channels: Sequence[SimChannel]) -> list[Reading]:
        self.polled.extend(c.name for c in channels)
        if self.failing_polls:
            self.failing_polls -= 1
            raise NotConnected("bench", "connection reset")
        return [Reading("bench", c.name, 1_800_000_000_000_000_000, 1.0, c.unit) for c in channels]

    async def close(self) -> None:
        pass

    def describe(self) -> dict[str, str]:
        return {}

    def streamed_channels(self) -> frozenset[str]:
        return frozenset({"pushed"})

    async def stream(self) -> AsyncIterator[list[Reading]]:
        self.streams += 1
        while True:
            item = await self.pushes.get()
            if isinstance(item, NotConnected):
                raise item
            yield item

    def stream_gap(self, reason: str) -> list[Reading]:
        return [Reading.bad("bench", "pushed", 1_800_000_000_200_000_000, "°C", reason)]


def _config(polled_interval_s: float = 0.05) -> SimInstrument:
    return SimInstrument.model_validate(
        {
            "name": "bench",
            "protocol": "sim",
            "model": {"kind": "room"},
            "reconnect": {"initial_s": 0.05, "max_s": 0.05},
            "channels": [
                {"name": "pushed", "quantity": "temperature", "unit": "K", "offset": 273.15},
                {
                    "name": "polled",
                    "quantity": "humidity",
                    "unit": "%rh",
                    "interval_s": polled_interval_s,
                },
            ],
        }
    )


async def test_streamed_channels_are_consumed_and_the_others_polled() -> None:
    driver = PushingDriver()
    assert isinstance(driver, StreamingDriver)
    readings: list[Reading] = []
    states: list[str] = []
    metrics = AgentMetrics()
    runner = InstrumentRunner(
        _config(),
        driver,
        SystemClock(),
        readings.extend,
        metrics,
        lambda _name, state, _reason: states.append(state),
    )
    task = asyncio.create_task(runner.run())
    try:
        pushed = Reading("bench", "pushed", 1_800_000_000_123_000_000, 20.0, "°C")
        await driver.pushes.put([pushed])
        await asyncio.sleep(0.3)
        streamed = [r for r in readings if r.channel == "pushed"]
        assert len(streamed) == 1, "each pushed value arrives exactly once"
        assert streamed[0].value == 293.15  # the channel's offset applied
        assert streamed[0].unit == "K"
        assert streamed[0].ts_ns == 1_800_000_000_123_000_000  # the instrument's timestamp
        assert "pushed" not in driver.polled
        assert driver.polled.count("polled") >= 3

        await driver.pushes.put(NotConnected("bench", "subscription lost"))
        await asyncio.sleep(0.3)
        assert "unavailable" in states
        assert driver.connects == 2
        assert driver.streams == 2  # the stream is consumed again on the new connection
        assert states[-1] == "connected"
        assert metrics.readings_read == len(readings)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t.get_name() for t in leftovers if not t.done()]


async def test_a_loss_found_by_the_poll_still_marks_the_streamed_gap_once() -> None:
    # Whichever side notices a lost connection first, the streamed channel gets one gap marker:
    # here the poll fails while the stream is quiet, so the stream is cancelled, not ended.
    driver = PushingDriver()
    readings: list[Reading] = []
    states: list[str] = []
    reconnected = asyncio.Event()

    def on_state(_name: str, state: str, _reason: str | None) -> None:
        states.append(state)
        if state == "connected" and "unavailable" in states:
            reconnected.set()

    runner = InstrumentRunner(
        _config(), driver, SystemClock(), readings.extend, AgentMetrics(), on_state
    )
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.sleep(0.15)
        driver.failing_polls = 1
        async with asyncio.timeout(5):
            await reconnected.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "unavailable" in states
    gaps = [r for r in readings if r.channel == "pushed"]
    assert len(gaps) == 1, "one gap marker for the streamed channel"
    assert gaps[0].quality.value == "bad"
    assert gaps[0].reason is not None and "connection reset" in gaps[0].reason
