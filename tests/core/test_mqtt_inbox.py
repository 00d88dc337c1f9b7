"""MqttLink hands paho's callbacks to the loop through one inbox, worked in slices: a flood of
messages leaves the rest of the process its turns (a gateway's writer wrote to the store only
once a backlog was decoded), the order is paho's, and a callback that fails stops no other."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from core.mqtt import INBOX_SLICE_S, Message, MqttConfig, MqttLink
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto

FLOOD = 60


def _busy(seconds: float) -> None:
    """Hold the loop's thread as decoding a large message does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _hold_the_loop(seconds: float) -> None:
    """Keep the loop's thread from the loop: paho's thread posts meanwhile."""
    time.sleep(seconds)


async def _link(broker: Mosquitto, received: list[Message], name: str) -> MqttLink:
    link = MqttLink(MqttConfig(host="127.0.0.1", port=broker.port), name)
    link.on_message = received.append
    link.subscribe("flood/#", qos=1)
    await link.start()
    return link


async def _until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_flood_of_messages_leaves_the_loop_its_turns(mosquitto: Mosquitto) -> None:
    received: list[Message] = []
    link = await _link(mosquitto, received, "flooded")

    def handle(message: Message) -> None:
        _busy(2 * INBOX_SLICE_S)  # longer than a slice: one message a slice
        received.append(message)

    link.on_message = handle
    seen: list[int] = []

    async def ticker() -> None:  # another task of the process: a writer's next step
        while len(received) < FLOOD:
            seen.append(len(received))
            await asyncio.sleep(0)

    publisher = RawClient(mosquitto.port, "publisher")
    try:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        # Published with the loop's thread held (each publish waits for its PUBACK), and held
        # on a while: paho's thread posts the whole flood before the loop takes any of it.
        for number in range(FLOOD):
            publisher.publish(f"flood/{number}", str(number).encode())
        _hold_the_loop(0.5)
        await asyncio.wait_for(task, 30)
    finally:
        await link.stop()
        publisher.close()
    assert [m.payload for m in received] == [str(n).encode() for n in range(FLOOD)]
    # With a loop callback per message the flood ran in one turn: the ticker saw 0, then all.
    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert len(set(seen)) > FLOOD // 2, seen
    assert max(steps) <= 3, seen


async def test_a_failing_callback_stops_no_other(mosquitto: Mosquitto) -> None:
    received: list[Message] = []
    link = await _link(mosquitto, received, "failing")
    failures: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: failures.append(context))

    def handle(message: Message) -> None:
        if message.payload == b"3":
            raise ValueError("a handler's bug")
        received.append(message)

    link.on_message = handle
    publisher = RawClient(mosquitto.port, "publisher")
    try:
        for number in range(8):
            publisher.publish(f"flood/{number}", str(number).encode())
        _hold_the_loop(0.3)  # all posted before the loop runs them: one inbox run meets the bug
        await _until(lambda: len(received) == 7)
        # and the inbox is still worked after it
        publisher.publish("flood/late", b"late")
        await _until(lambda: len(received) == 8)
    finally:
        await link.stop()
        publisher.close()
    assert [m.payload for m in received] == [b"0", b"1", b"2", b"4", b"5", b"6", b"7", b"late"]
    assert len(failures) == 1
    assert isinstance(failures[0]["exception"], ValueError)
    assert "MQTT callback" in failures[0]["message"]
