"""Real parts for the alert tests: an SMTP server (aiosmtpd, STARTTLS, AUTH LOGIN), an HTTP
server receiving webhooks, a gateway in the test's loop, agents as processes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.support.certs import make_ca_and_server
from tests.support.gateway import api_settings, token_env
from tests.support.processes import EtalonProcess, write_yaml
from tests.support.services import Mosquitto, free_port

T = TypeVar("T")
SITE = "lab-1"
AGENT = "bench-1"
TOKENS = {
    **token_env("ALERTS_"),
    "ALERTS_SMTP_PASSWORD": "smtp-secret-pw",
    "ALERTS_WEBHOOK_SECRET": "webhook-signing-secret",
}
SMTP_USER = "etalon-gw"


# -- SMTP ---------------------------------------------------------------------------------------


@dataclass
class Mail:
    """One message the SMTP server accepted."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    mechanism: str | None
    tls: bool

    @property
    def body(self) -> str:
        """The plain-text body."""
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())


class SmtpReceiver:
    """aiosmtpd on a free loopback port: STARTTLS required, AUTH LOGIN (PLAIN not offered)."""

    def __init__(self, directory: Path) -> None:
        self.ca, cert, key = make_ca_and_server(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.mails: list[Mail] = []
        self.logins: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=True,
            auth_exclude_mechanism=["PLAIN"],
        )

    def _authenticate(
        self, _server: Any, session: Session, _envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        with self._lock:
            self.logins.append((mechanism, login))
        ok = login == SMTP_USER and password == TOKENS["ALERTS_SMTP_PASSWORD"]
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, _server: Any, session: Session, envelope: Envelope) -> str:
        """Keep the message."""
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(message, EmailMessage)
        mechanism = self.logins[-1][0] if self.logins else None
        with self._lock:
            self.mails.append(
                Mail(
                    envelope.mail_from or "",
                    list(envelope.rcpt_tos),
                    message,
                    mechanism,
                    session.ssl is not None,
                )
            )
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        """Messages for one address."""
        with self._lock:
            return [m for m in self.mails if address in m.recipients]

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()

    def config(self, **extra: Any) -> dict[str, Any]:
        """The gateway's ``alerts.smtp`` for this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "starttls",
            "username": SMTP_USER,
            "password": {"env": "ALERTS_SMTP_PASSWORD"},
            "sender": "etalon@lab.example",
            "ca_file": str(self.ca),
            "retry": {"initial_s": 0.2, "max_s": 1.0},
            **extra,
        }


# -- webhooks -------------------------------------------------------------------------------------


@dataclass
class Hook:
    """One POST the webhook server received."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        """The decoded body."""
        return json.loads(self.body)

    def signed(self, secret: str) -> bool:
        """Whether X-Etalon-Signature is the HMAC of the body."""
        digest = hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return self.headers.get("x-etalon-signature") == f"sha256={digest}"


@dataclass
class WebhookReceiver:
    """http.server on a free loopback port; ``fail_first`` requests are answered 503."""

    fail_first: int = 0
    requests: list[Hook] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1 if failing else 0
                    status = 503 if failing else 200
                    receiver.requests.append(
                        Hook(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, status
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-test")

    def delivered(self, path: str | None = None) -> list[Hook]:
        """Requests answered 200 (on ``path``)."""
        with self._lock:
            return [r for r in self.requests if r.status == 200 and path in (None, r.path)]

    def url(self, path: str = "/hook") -> str:
        """URL of the server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# -- gateway and agents ---------------------------------------------------------------------------


def mqtt_settings(broker: Mosquitto, keepalive_s: int = 5) -> dict[str, Any]:
    """Short keepalive and reconnect, for tests."""
    return {
        "host": "127.0.0.1",
        "port": broker.port,
        "keepalive_s": keepalive_s,
        "reconnect": {"initial_s": 0.5, "max_s": 2.0},
    }


def gateway_settings(tmp: Path, broker: Mosquitto, alerts: dict[str, Any]) -> dict[str, Any]:
    """A gateway config (as data) with the API on a free port and the given alerts."""
    return {
        "site": SITE,
        "mqtt": mqtt_settings(broker),
        "spool": {"path": str(tmp / "gateway" / "spool.db")},
        "store": {"kind": "sqlite", "path": str(tmp / "gateway" / "readings.db")},
        "records": {"path": str(tmp / "gateway" / "records.db")},
        "write": {"batch_max_delay_ms": 100, "retry": {"initial_s": 0.2, "max_s": 1.0}},
        "api": api_settings("ALERTS_"),
        "alerts": {"tick_s": 0.1, **alerts},
    }


def agent_settings(
    tmp: Path,
    broker: Mosquitto,
    instruments: list[dict[str, Any]],
    *,
    agent: str = AGENT,
    clock: dict[str, Any] | None = None,
    keepalive_s: int = 5,
) -> dict[str, Any]:
    """An agent config (as data)."""
    settings: dict[str, Any] = {
        "site": SITE,
        "id": agent,
        "mqtt": mqtt_settings(broker, keepalive_s),
        "spool": {"path": str(tmp / agent / "spool.db"), "synchronous": "normal"},
        "publish": {"batch_max_readings": 200, "batch_max_delay_ms": 50},
        "metrics_interval_s": 5,
        "instruments": instruments,
    }
    if clock is not None:
        settings["clock"] = clock
    return settings


@contextlib.asynccontextmanager
async def agent_process(tmp: Path, settings: dict[str, Any]) -> AsyncIterator[EtalonProcess]:
    """``etalon agent -c`` as a process; killed at the end if still running."""
    path = write_yaml(tmp / f"{settings['id']}.yaml", settings)
    process = EtalonProcess("agent", path, tmp / f"{settings['id']}.log")
    process.start()
    try:
        await in_thread(process.wait_log, "agent started", 30)
        yield process
    finally:
        await in_thread(process.ensure_stopped)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call on a thread that is gone when it returns (the suite's conftest
    fails tests that leave threads, such as the loop's default executor's, behind)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-blocking") as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


async def wait_for(
    predicate: Callable[[], Any], timeout_s: float = 20.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        await asyncio.sleep(0.05)


def events_of(messages: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """Decoded MQTT alert events (non-retained topic)."""
    return [json.loads(p) for topic, p in messages if topic.endswith("/alerts/events")]


def bearer(env: str) -> dict[str, str]:
    """Authorization header of one of the test tokens."""
    return {"Authorization": f"Bearer {TOKENS[env]}"}


def set_secrets(monkeypatch: Any) -> None:
    """The tokens and secrets in the environment (the gateway resolves them)."""
    for key, value in TOKENS.items():
        monkeypatch.setenv(key, value)


class FakeAgent:
    """Publishes an agent's birth message and readings from the test (exact values and times)."""

    def __init__(self, client: Any, agent: str = "bench-9", site: str = SITE) -> None:
        self.client, self.agent, self.site = client, agent, site
        self.seq = 0
        self.root = f"etalon/v1/{site}/{agent}"

    def birth(self, channels: dict[str, tuple[str, float]], instrument: str = "room-a") -> None:
        """Announce ``channel → (unit, interval_s)`` of one instrument (retained)."""
        status = {
            "schema": 1,
            "state": "online",
            "site": self.site,
            "agent": self.agent,
            "version": "test",
            "ts": time.time_ns(),
            "instruments": [
                {
                    "name": instrument,
                    "protocol": "sim",
                    "channels": [
                        {"name": name, "unit": unit, "interval_s": interval}
                        for name, (unit, interval) in channels.items()
                    ],
                }
            ],
        }
        self.client.publish(f"{self.root}/status", json.dumps(status).encode(), retain=True)

    def send(
        self,
        values: list[tuple[str, float | None]],
        unit: str = "°C",
        instrument: str = "room-a",
        ts: int | None = None,
    ) -> int:
        """One batch: ``(channel, value)`` pairs (None: a bad reading), stamped now."""
        stamp = ts or time.time_ns()
        readings = [
            {
                "instrument": instrument,
                "channel": channel,
                "ts": stamp,
                "value": value,
                "unit": unit,
                "quality": "good" if value is not None else "bad",
                **({"reason": "test"} if value is None else {}),
            }
            for channel, value in values
        ]
        self.seq += 1
        batch = {
            "schema": 1,
            "site": self.site,
            "agent": self.agent,
            "seq": self.seq,
            "readings": readings,
        }
        self.client.publish(f"{self.root}/data", json.dumps(batch).encode())
        return stamp


class ShiftedClock:
    """The gateway's clocks moved forward by the test: the engine's wall clock (shelving,
    escalation, audit times) and monotonic clock (grouping and rate limits), ``offset_s`` ahead
    of the real ones. Readings keep their own (real) time stamps."""

    def __init__(self, engine: Any) -> None:
        self.offset_s = 0.0
        engine.wall_ns = engine.tracker.wall_ns = engine.notifier.wall_ns = self.wall_ns
        engine.monotonic = engine.notifier.monotonic = self.monotonic

    def wall_ns(self) -> int:
        """Wall clock, shifted."""
        return time.time_ns() + int(self.offset_s * 1e9)

    def monotonic(self) -> float:
        """Monotonic clock, shifted."""
        return time.monotonic() + self.offset_s

    def advance(self, seconds: float) -> None:
        """Move both clocks ``seconds`` ahead (the engine notices at its next tick)."""
        self.offset_s += seconds
