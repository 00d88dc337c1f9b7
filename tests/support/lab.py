"""A small lab for the API, dashboard and Grafana tests: a gateway serving its API and an agent
reading simulated instruments, both running in one thread of their own (with its own event loop)
so one lab serves a whole test package, against a real broker and a real store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from gateway.api import app as api_app
from gateway.config import GatewayConfig
from gateway.gateway import Gateway
from tests.support.chain import sim_instruments

T = TypeVar("T")

SITE = "lab-1"
AGENT = "bench-1"
TOKENS = {
    "ETALON_TEST_VIEWER_TOKEN": ("wall-screen", "viewer", "viewer-token-0123456789abcdef"),
    "ETALON_TEST_OPERATOR_TOKEN": ("nguyen", "operator", "operator-token-0123456789abcdef"),
    "ETALON_TEST_ADMIN_TOKEN": ("quality-manager", "admin", "admin-token-0123456789abcdef"),
}
ROLE_TOKENS = {role: secret for _, role, secret in TOKENS.values()}

ROOM_LIMITS = [
    {"match": {"tags": {"room": "A"}, "channel": "temperature"}, "low": 22.0, "high": 24.0},
    {"match": {"tags": {"room": "A"}, "channel": "humidity"}, "low": 30.0, "high": 70.0},
]


def lab_instruments() -> list[dict[str, Any]]:
    """The chain's simulated instruments, plus one that cannot be reached and one that answers
    garbage now and then (so the dashboard has every state to show)."""
    instruments = sim_instruments(fast=True)
    instruments.append(
        {
            "name": "dmm-spare",
            "protocol": "sim",
            "model": {"kind": "zener"},
            "faults": {"disconnected": True},
            "reconnect": {"initial_s": 0.5, "max_s": 2.0},
            "channels": [
                {"name": "voltage", "quantity": "voltage", "unit": "V", "interval_s": 1.0}
            ],
        }
    )
    instruments.append(
        {
            "name": "thermo-b",
            "protocol": "sim",
            "model": {"kind": "room"},
            "faults": {"garbage_rate": 0.3},
            "channels": [
                {
                    "name": "temperature",
                    "quantity": "temperature",
                    "unit": "°C",
                    "interval_s": 0.5,
                    "tags": {"room": "B"},
                }
            ],
        }
    )
    return instruments


class Lab:
    """See the module doc. ``start()``, use ``api_url`` (and ``call`` to run a coroutine in the
    lab's loop), ``stop()``."""

    def __init__(
        self,
        workdir: Path,
        broker_port: int,
        store: dict[str, Any],
        *,
        dashboard: dict[str, Any] | None = None,
        routers: list[APIRouter] | None = None,
        anonymous_read: bool = False,
        alerts: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = workdir
        self.routers = routers or []
        mqtt = {"host": "127.0.0.1", "port": broker_port, "keepalive_s": 5}
        self._env = {env: secret for env, (_, _, secret) in TOKENS.items()}
        with self._environment():
            self.gateway_config = GatewayConfig.model_validate(
                {
                    "site": SITE,
                    "mqtt": mqtt,
                    "spool": {"path": str(workdir / "gateway-spool.db")},
                    "store": store,
                    "records": {"path": str(workdir / "records.db")},
                    "write": {"batch_max_delay_ms": 100},
                    "metrics_interval_s": 1,
                    "api": {
                        "port": 0,
                        "anonymous_read": anonymous_read,
                        "tokens": [
                            {"name": name, "role": role, "token": {"env": env}}
                            for env, (name, role, _) in TOKENS.items()
                        ],
                    },
                    "dashboard": dashboard or {"limits": ROOM_LIMITS},
                    "alerts": alerts,
                }
            )
        self.agent_config = AgentConfig.model_validate(
            {
                "site": SITE,
                "id": AGENT,
                "mqtt": mqtt,
                "spool": {"path": str(workdir / "agent-spool.db")},
                "publish": {"batch_max_readings": 200, "batch_max_delay_ms": 50},
                "metrics_interval_s": 1,
                "instruments": lab_instruments(),
            }
        )
        self.gateway: Gateway | None = None
        self.agent: Agent | None = None
        self.api_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lab", daemon=True)

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        saved = {k: os.environ.get(k) for k in self._env}
        os.environ.update(self._env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the gateway, then the agent; return when the API answers."""
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the lab did not start in time")
        if self._error is not None:
            raise RuntimeError("the lab failed to start") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test through start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        saved = api_app.ROUTERS
        api_app.ROUTERS = [*saved, *self.routers]
        try:
            with self._environment():
                gateway = Gateway(self.gateway_config)
                self.gateway = gateway
                gateway_stop, agent_stop = asyncio.Event(), asyncio.Event()
                async with asyncio.TaskGroup() as group:
                    gateway_task = group.create_task(gateway.run(gateway_stop))
                    await asyncio.wait_for(gateway.started.wait(), 30)
                    assert gateway.api_url is not None
                    self.api_url = gateway.api_url
                    agent = Agent(self.agent_config)
                    self.agent = agent
                    agent_task = group.create_task(agent.run(agent_stop))
                    await asyncio.wait_for(agent.started.wait(), 30)
                    self._ready.set()
                    await self._stop.wait()
                    agent_stop.set()
                    await agent_task
                    gateway_stop.set()
                    await gateway_task
        finally:
            api_app.ROUTERS = saved

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        """Run a coroutine in the lab's loop (e.g. to reach the record store) and return its
        result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def stop(self) -> None:
        """Stop the agent, then the gateway, and wait for the thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if self._thread.is_alive():
            raise RuntimeError("the lab did not stop")
