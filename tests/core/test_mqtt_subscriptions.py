"""MqttLink's subscriptions: ``start()`` returns when the broker has answered them, so what is
published next reaches the process (a gateway that logged "started" and then lost the first
batch published after it was a CI failure); a subscription the broker refuses is logged with
its topic, not left silently empty."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from core.mqtt import Message, MqttConfig, MqttLink
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto


async def _until(condition: object, timeout_s: float = 5.0) -> None:
    assert callable(condition)
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_start_returns_with_the_subscriptions_answered(mosquitto: Mosquitto) -> None:
    publisher = RawClient(mosquitto.port, "publisher")
    received: list[Message] = []
    link = MqttLink(MqttConfig(host="127.0.0.1", port=mosquitto.port), "subscriber")
    link.on_message = received.append
    try:
        for topic in ("a/1", "a/2", "a/3"):
            link.subscribe(topic, qos=1)
        await link.start()
        assert link.subscribed.is_set()
        # Published the moment start() returned, not retained: delivered only to a
        # subscription the broker already holds.
        for topic in ("a/1", "a/2", "a/3"):
            publisher.publish(topic, topic.encode())
        await _until(lambda: len(received) == 3)
        assert sorted(m.payload for m in received) == [b"a/1", b"a/2", b"a/3"]
        # A subscription made later clears the flag until the broker has answered it.
        link.subscribe("a/late", qos=1)
        assert not link.subscribed.is_set()
        await asyncio.wait_for(link.subscribed.wait(), 5)
        publisher.publish("a/late", b"late")
        await _until(lambda: len(received) == 4)
        assert received[-1].payload == b"late"
    finally:
        await link.stop()
        publisher.close()


@contextlib.contextmanager
def refusing_broker(refused: bytes) -> Iterator[int]:
    """A scripted MQTT 3.1.1 server on loopback: CONNACK, then a SUBACK per SUBSCRIBE that
    refuses (0x80) any filter containing ``refused`` and grants QoS 1 to the others. Mosquitto
    2.0 grants every subscription and applies its ACL on delivery, so it cannot show this."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def read_packet(conn: socket.socket) -> tuple[int, bytes]:
        head = conn.recv(1)
        if not head:
            raise ConnectionError
        length, shift = 0, 0
        while True:
            byte = conn.recv(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        body = b""
        while len(body) < length:
            chunk = conn.recv(length - len(body))
            if not chunk:
                raise ConnectionError
            body += chunk
        return head[0], body

    def serve() -> None:
        with contextlib.suppress(OSError, ConnectionError, IndexError):
            conn, _ = server.accept()
            with conn:
                while True:
                    kind, body = read_packet(conn)
                    if kind >> 4 == 1:  # CONNECT
                        conn.sendall(b"\x20\x02\x00\x00")
                    elif kind >> 4 == 8:  # SUBSCRIBE: packet id, then one filter
                        code = b"\x80" if refused in body[2:] else b"\x01"
                        conn.sendall(b"\x90\x03" + body[:2] + code)
                    elif kind >> 4 == 12:  # PINGREQ
                        conn.sendall(b"\xd0\x00")
                    elif kind >> 4 == 14:  # DISCONNECT
                        return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.close()
        thread.join(5)


async def test_a_refused_subscription_is_logged_with_its_topic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with refusing_broker(b"forbidden") as port:
        link = MqttLink(MqttConfig(host="127.0.0.1", port=port), "subscriber")
        link.subscribe("allowed/a", qos=1)
        link.subscribe("forbidden/b", qos=1)
        try:
            with caplog.at_level(logging.ERROR, logger="etalon"):
                await link.start()
                assert link.subscribed.is_set()  # answered, if not granted
                await _until(
                    lambda: any("subscription refused" in r.getMessage() for r in caplog.records)
                )
        finally:
            await link.stop()
    refused = [r for r in caplog.records if r.getMessage() == "mqtt subscription refused"]
    assert [getattr(r, "topic", None) for r in refused] == ["forbidden/b"]
    assert getattr(refused[0], "reason", "")  # the broker's code, as paho names it
