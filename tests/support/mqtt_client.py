"""A plain paho client for tests: publish raw payloads, collect what arrives on a topic."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class ConnectRefused(Exception):
    """The broker did not let the client in (TLS handshake or CONNACK)."""


class RawClient:
    """Connects to 127.0.0.1:port; ``messages`` collects (topic, payload) of subscriptions.

    With ``ca`` it speaks TLS (and shows ``cert``/``key`` if given); with ``v5`` it speaks MQTT 5,
    so :meth:`publish` returns the broker's PUBACK reason code (135: not authorised). With
    ``keep_session`` (MQTT 3.1.1) the broker keeps its subscriptions and queues messages for it
    while it is away, across broker restarts (persistence). Mosquitto
    2.0 sometimes also drops an MQTT 5 client whose publish it refused (its issue #2579): paho
    reconnects, resends, and :meth:`publish` waits for that."""

    def __init__(
        self,
        port: int,
        client_id: str = "test-client",
        *,
        ca: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        v5: bool = False,
        keep_session: bool = False,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._acks: dict[int, int] = {}
        self._subacks: dict[int, threading.Event] = {}
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else not keep_session,
        )
        if ca is not None:
            self._client.tls_set(
                ca_certs=str(ca),
                certfile=str(cert) if cert else None,
                keyfile=str(key) if key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._connected = threading.Event()
        self._online = threading.Event()
        self._refused: str | None = None
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        try:
            self._client.connect("127.0.0.1", port)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectRefused(f"{type(exc).__name__}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(10) or self._refused is not None:
            self._client.loop_stop()
            self._client._reset_sockets()
            raise ConnectRefused(self._refused or "no CONNACK within 10 s")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            self._refused = str(reason)
        else:
            self._online.set()
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._online.clear()
        if not self._connected.is_set():
            self._refused = f"disconnected before CONNACK: {reason}"
            self._connected.set()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            self._acks[mid] = int(getattr(reason, "value", 0))

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        with self._lock:
            answered = self._subacks.pop(mid, None)
        if answered is not None:
            answered.set()

    @property
    def online(self) -> bool:
        """Whether the client is connected now."""
        return self._online.is_set()

    def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 and wait for the broker's SUBACK (what is published after this
        returns reaches us)."""
        with self._lock:  # the SUBACK's callback waits until the mid is recorded
            _rc, mid = self._client.subscribe(topic, 1)
            answered = self._subacks[mid] = threading.Event()
        assert answered.wait(10), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """Publish with QoS 1, wait for the broker's acknowledgement, return its reason code
        (always 0 on MQTT 3.1.1, where a broker that drops a message still acknowledges it)."""
        deadline = time.monotonic() + 20
        while True:
            assert self._online.wait(10), "test client not reconnected within 10 s"
            info = self._client.publish(topic, payload, qos=1, retain=retain)
            if info.rc != paho.MQTT_ERR_NO_CONN:
                break
            # Dropped after the previous publish, and paho has not told us yet: wait for the
            # reconnect rather than for a PUBACK that cannot come.
            assert time.monotonic() < deadline, f"could not publish on {topic}"
            time.sleep(0.05)
        info.wait_for_publish(15)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._lock:
                if info.mid in self._acks:
                    return self._acks.pop(info.mid)
            time.sleep(0.01)
        raise AssertionError(f"no PUBACK for {topic}")

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
        """Disconnect, stop paho's thread and close its sockets (paho closes its wake-up socket
        pair only when the client is garbage collected, which in a reference cycle may come after
        the sockets themselves: a ResourceWarning)."""
        self._client.disconnect()
        self._client.loop_stop()
        self._client._reset_sockets()
