"""A plain paho client for tests: publish raw payloads, collect what arrives on a topic."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class RawClient:
    """Connects to 127.0.0.1:port; ``messages`` collects (topic, payload) of subscriptions."""

    def __init__(self, port: int, client_id: str = "test-client", **tls: Any) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id
        )
        self._client.on_message = self._on_message
        self._connected = threading.Event()
        self._client.on_connect = lambda *_: self._connected.set()
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        assert self._connected.wait(10), "test client could not connect"

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 and give the broker a moment to register it."""
        self._client.subscribe(topic, 1)
        time.sleep(0.2)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def wait_messages(self, count: int, timeout_s: float = 15.0) -> list[tuple[str, bytes]]:
        """Wait until at least ``count`` messages arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        """Disconnect and stop paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()
