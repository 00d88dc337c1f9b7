"""The MQTT link both processes use: paho-mqtt 2.x behind an async face.

paho runs its network loop on its own thread; every callback is handed to the asyncio loop,
in the order paho made them, through one inbox (:meth:`MqttLink._post`), so the rest of etalon
only ever touches state from the loop thread. The loop works the inbox in slices of
:data:`INBOX_SLICE_S`, so a flood of messages does not hold back the rest of the process: with
a handle per message, a gateway decoding a backlog ran every message already queued before its
writer's next step, and wrote to the store only once the flood was over.

- ``start()`` fails with a clear :class:`TransportError` when the broker refuses the credentials
  or TLS cannot be established; an unreachable broker is not fatal (readings keep spooling and
  paho keeps retrying with a capped, jittered backoff).
- ``start()`` returns once the broker has acknowledged the subscriptions made before it (or its
  connect timeout passed): a process that says it started receives what is published next.
  A subscription the broker refuses (its ACL) is logged with the topic.
- QoS 1 publishes that were in flight when the connection dropped are resent by paho after the
  reconnect (it does so whether or not the broker kept the session).
- With ``manual_ack``, a received message is acknowledged only by :meth:`MqttLink.ack` — the
  gateway calls it after the message is in its spool. Acks for messages received on an earlier
  connection are not sent: the broker redelivers those, and the store absorbs the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# imports for the config models (ruff sorts)
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import Field, model_validator

from core.backoff import Backoff
from core.errors import TransportError
from core.logs import log_event
from core.models import FrozenModel
from core.secrets import Secret, check_login

log = logging.getLogger("etalon.mqtt")

INBOX_SLICE_S = 0.002
"""The longest the loop works paho's callbacks in one go before the other work that is ready
(a writer's next batch, a thread's result, a timer) gets its turn; the inbox goes on after it.
A gateway message of 500 readings takes ~1 ms to decode: two or three a slice."""


class TlsConfig(FrozenModel):
    """TLS to the broker: the CA that signed it and, for client-certificate auth, ours."""

    ca_file: Path | None = Field(None, description="CA bundle; None uses the system's.")
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        for path in (self.ca_file, self.cert_file, self.key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"file not found: {path}")
        return self


class MqttConfig(FrozenModel):
    """Connection to the MQTT broker."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    version: Literal["3.1.1", "5"] = Field(
        "3.1.1", description="MQTT protocol version; '5' is needed for shared subscriptions."
    )
    client_id: str | None = Field(
        None, max_length=128, description="Fixed per process: the broker keeps its session by it."
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    connect_timeout_s: float = Field(10.0, gt=0)
    session_expiry_s: int = Field(
        7 * 86_400, ge=0, description="MQTT 5: how long the broker keeps our session offline."
    )
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig | None = None
    topic_prefix: str = Field("etalon", pattern=r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
    reconnect: Backoff = Field(default_factory=lambda: Backoff(initial_s=1.0, max_s=30.0))

    @model_validator(mode="after")
    def _secret_resolves(self) -> MqttConfig:
        check_login(self.username, self.password)
        return self


def check_certificate_identity(mqtt: MqttConfig, expected: str, issue_hint: str) -> None:
    """With a client certificate and no user name, the broker knows this process by the
    certificate's CN (``use_identity_as_username``): it must be ``expected``, or the broker's ACL
    would silently drop what the process publishes. Raises ValueError naming both."""
    if mqtt.tls is None or mqtt.tls.cert_file is None or mqtt.username is not None:
        return
    from core.pki import PkiError, certificate_identity  # cryptography: only when it is needed

    try:
        actual = certificate_identity(mqtt.tls.cert_file)
    except PkiError as exc:
        raise ValueError(f"mqtt.tls.cert_file: {exc}") from None
    if actual != expected:
        raise ValueError(
            f"mqtt.tls.cert_file: the certificate's identity (CN) is {actual!r} but this process "
            f"is {expected!r}: the broker's ACL would refuse its topics "
            f"(a certificate for it: {issue_hint})"
        )


def check_client_identity(
    mqtt: MqttConfig, role: Literal["agent", "gateway"], site: str, name: str
) -> None:
    """:func:`check_certificate_identity` for the agent or gateway ``name`` of ``site``: the CN
    :mod:`core.pki` gives its role (``SITE/ID``, ``SITE/gateways/ID``; not imported here, as
    it loads cryptography) and the command that issues such a certificate."""
    expected = f"{site}/{name}" if role == "agent" else f"{site}/gateways/{name}"
    check_certificate_identity(mqtt, expected, f"etalon pki issue {role} --site {site} --id {name}")


_AUTH_REFUSED = {
    4,
    5,
    134,
    135,
    140,
}  # bad user name or password / not authorized / bad auth method


@dataclass(frozen=True, slots=True)
class Message:
    """A received message, with what is needed to acknowledge it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    generation: int


class MqttLink:
    """One MQTT connection; see the module doc."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        *,
        will: tuple[str, bytes] | None = None,
        manual_ack: bool = False,
    ) -> None:
        self.config = config
        self.client_id = config.client_id or client_id
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        """Set when the broker has answered every subscription of the current connection."""
        self.generation = 0
        self.reconnects = 0
        self.on_connected: list[Callable[[bool], None]] = []
        self.on_message: Callable[[Message], None] | None = None
        self.on_ack: Callable[[int, str | None], None] | None = None
        self._subscriptions: list[tuple[str, int]] = []
        # mid → topic, under the lock: paho may answer a SUBACK before subscribe() returns.
        self._pending_subscriptions: dict[int, str] = {}
        self._subscription_lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._first_connack: asyncio.Future[tuple[bool, str]] = self._loop.create_future()
        self._refused: str | None = None
        self._stopping = False
        # loop_stop() blocks: a thread of our own, gone after stop(), so no thread outlives the
        # link. The first connect() runs on a daemon thread of its own (see _connect_in_thread).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqtt-blocking")
        self._inbox: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._inbox_scheduled = False
        """Whether a :meth:`_run_inbox` is due on the loop (set by paho's thread, cleared by the
        loop once the inbox is empty)."""
        self._v5 = config.version == "5"
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
            clean_session=None if self._v5 else False,
            manual_ack=manual_ack,
        )
        self._client.enable_logger(logging.getLogger("etalon.mqtt.paho"))
        logging.getLogger("etalon.mqtt.paho").setLevel(logging.CRITICAL)
        if config.username is not None:
            password = config.password.resolve() if config.password else None
            self._client.username_pw_set(config.username, password)
        if config.tls is not None:
            self._client.tls_set(
                ca_certs=str(config.tls.ca_file) if config.tls.ca_file else None,
                certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
                keyfile=str(config.tls.key_file) if config.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            self._client.tls_insecure_set(not config.tls.verify_hostname)
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        self._jitter_backoff()
        self._client.on_connect = self._paho_connect
        self._client.on_disconnect = self._paho_disconnect
        self._client.on_publish = self._paho_publish
        self._client.on_message = self._paho_message
        self._client.on_subscribe = self._paho_subscribe

    # -- paho thread ---------------------------------------------------------------------------

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Hand ``callback(*args)`` to the loop, after every callback posted before it."""
        self._inbox.append((callback, args))
        if not self._inbox_scheduled:
            self._inbox_scheduled = True
            self._loop.call_soon_threadsafe(self._run_inbox)

    def _paho_connect(self, _c: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        code = int(getattr(reason, "value", reason))
        if code == 0:
            self.generation += 1
            with self._subscription_lock:
                self._pending_subscriptions.clear()
                for topic, qos in self._subscriptions:
                    self._subscribe_now(topic, qos)
                answered = not self._pending_subscriptions
            if answered:
                self._post(self.subscribed.set)
        self._post(
            self._connected_in_loop,
            code,
            str(reason),
            bool(getattr(flags, "session_present", False)),
        )

    def _subscribe_now(self, topic: str, qos: int) -> None:
        # Holding the lock: the SUBACK's callback waits until the mid is recorded.
        rc, mid = self._client.subscribe(topic, qos)
        if rc == paho.MQTT_ERR_SUCCESS and mid is not None:
            self._pending_subscriptions[mid] = topic

    def _paho_subscribe(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        with self._subscription_lock:
            topic = self._pending_subscriptions.pop(mid, None)
            answered = not self._pending_subscriptions
        if topic is None:
            return  # an answer to an earlier connection's subscription
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            self._post(self._refused_subscription, topic, ", ".join(refused))
        if answered:
            self._post(self.subscribed.set)

    def _paho_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._jitter_backoff()
        self._post(self._disconnected_in_loop, str(reason))

    def _paho_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        failure = str(reason) if getattr(reason, "is_failure", False) else None
        self._post(self._acked_in_loop, mid, failure)

    def _paho_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        message = Message(
            msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.retain), self.generation
        )
        self._post(self._message_in_loop, message)

    # -- loop thread ---------------------------------------------------------------------------

    def _run_inbox(self) -> None:
        """Run the posted callbacks in order for up to :data:`INBOX_SLICE_S`; what is left runs
        after the work that became ready meanwhile."""
        inbox = self._inbox
        deadline = time.perf_counter() + INBOX_SLICE_S
        try:
            while inbox:
                callback, args = inbox.popleft()
                try:
                    callback(*args)
                except Exception as exc:  # noqa: BLE001 - as the loop does with a handle's
                    self._loop.call_exception_handler(
                        {
                            "message": f"MQTT callback {callback.__qualname__} failed",
                            "exception": exc,
                        }
                    )
                if time.perf_counter() > deadline:
                    break
        finally:
            self._inbox_scheduled = False
            # Left over by the slice, or posted by paho after the last pop while it saw the flag
            # still set: this run's successor takes it.
            if inbox:
                self._inbox_scheduled = True
                self._loop.call_soon(self._run_inbox)

    def _jitter_backoff(self) -> None:
        # paho doubles from min to max without jitter; a jittered floor spreads a fleet of agents
        # reconnecting to a restarted broker.
        backoff = self.config.reconnect
        low = backoff.initial_s * random.uniform(0.5, 1.5)
        self._client.reconnect_delay_set(
            min_delay=max(1, round(low)), max_delay=max(1, round(backoff.max_s))
        )

    def _connected_in_loop(self, code: int, reason: str, session_present: bool) -> None:
        if code != 0:
            if code in _AUTH_REFUSED:
                self._refused = reason
            if not self._first_connack.done():
                self._first_connack.set_result((False, reason))
            log_event(log, logging.ERROR, "mqtt refused", broker=self._where(), reason=reason)
            return
        if not self._first_connack.done():
            self._first_connack.set_result((True, reason))
        elif not self.connected.is_set():
            self.reconnects += 1
            log_event(log, logging.INFO, "mqtt reconnected", broker=self._where())
        self.connected.set()
        for callback in self.on_connected:
            callback(session_present)

    def _refused_subscription(self, topic: str, reason: str) -> None:
        log_event(
            log, logging.ERROR, "mqtt subscription refused", broker=self._where(), topic=topic,
            reason=reason,
        )  # fmt: skip

    def _disconnected_in_loop(self, reason: str) -> None:
        self.subscribed.clear()
        if self.connected.is_set() and not self._stopping:
            log_event(
                log, logging.WARNING, "mqtt disconnected", broker=self._where(), reason=reason
            )
        self.connected.clear()

    def _acked_in_loop(self, mid: int, failure: str | None) -> None:
        if self.on_ack is not None:
            self.on_ack(mid, failure)

    def _message_in_loop(self, message: Message) -> None:
        if self.on_message is not None:
            self.on_message(message)

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    # -- public --------------------------------------------------------------------------------

    def _connect_in_thread(self, kwargs: dict[str, Any]) -> asyncio.Future[None]:
        """paho's blocking connect on a daemon thread: a stop during it (SIGINT while a broker
        does not answer) neither waits for it nor keeps the process alive at exit."""
        future: asyncio.Future[None] = self._loop.create_future()

        def settle(error: BaseException | None) -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        def connect() -> None:
            error: BaseException | None = None
            try:
                self._client.connect(self.config.host, self.config.port, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop as it is
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(settle, error)

        threading.Thread(target=connect, name="mqtt-connect", daemon=True).start()
        return future

    async def start(self) -> None:
        """Connect; raises TransportError if the broker refuses us or TLS fails."""
        cfg = self.config
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = cfg.session_expiry_s
        kwargs: dict[str, Any] = {"keepalive": cfg.keepalive_s}
        if self._v5:
            kwargs.update(clean_start=False, properties=props)
        try:
            await asyncio.wait_for(self._connect_in_thread(kwargs), cfg.connect_timeout_s)
        except ssl.SSLError as exc:
            raise TransportError(f"MQTT {self._where()}: TLS failed: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            log_event(
                log,
                logging.WARNING,
                "mqtt unreachable, will retry",
                broker=self._where(),
                reason=str(exc) or type(exc).__name__,
            )
            self._client.connect_async(cfg.host, cfg.port, **kwargs)
        if self._stopping:
            return
        self._client.loop_start()
        try:
            ok, reason = await asyncio.wait_for(
                asyncio.shield(self._first_connack), cfg.connect_timeout_s
            )
        except TimeoutError:
            return  # unreachable for now: paho keeps trying in the background
        if not ok and self._refused is not None:
            await self.stop()
            raise TransportError(f"MQTT {self._where()}: connection refused: {reason}")
        if ok:
            # A broker that takes longer is not an error: the subscriptions stay pending.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.subscribed.wait(), cfg.connect_timeout_s)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe now and again after every reconnect (:attr:`subscribed` is clear until the
        broker has answered)."""
        self._subscriptions.append((topic, qos))
        if self.connected.is_set():
            self.subscribed.clear()
            with self._subscription_lock:
                self._subscribe_now(topic, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a publish; returns its message id (acknowledged through ``on_ack``)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return int(info.mid)

    def ack(self, message: Message) -> None:
        """Acknowledge a message received with manual ack (no-op for QoS 0 or a past connection)."""
        if message.qos > 0 and message.generation == self.generation:
            self._client.ack(message.mid, message.qos)

    async def stop(self) -> None:
        """Disconnect cleanly (the broker keeps our session) and stop paho's thread; idempotent."""
        if self._stopping:
            return
        self._stopping = True
        self._client.disconnect()
        await self._loop.run_in_executor(self._executor, self._client.loop_stop)
        self._executor.shutdown(wait=False)
        self.connected.clear()
