"""A small lab for the API, dashboard and Grafana tests: a gateway serving its API and an agent
reading simulated instruments, both running in one thread of their own (with its own event loop)
so one lab serves a whole test package, against a real broker and a real store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import APIRouter

from drivers.sim.models import Zener, ZenerParams
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from gateway.api import app as api_app
from gateway.config import GatewayConfig
from gateway.service import Gateway
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


# The standards analytics on a lab's time scale: periods of a second (the Zener is read five times
# a second), a control-chart baseline of ten periods, an evaluation every two seconds. The
# monitored values are fitted with a mean: a line through a few minutes of noise would forecast
# nonsense years ahead; the certificates carry the drift.
LAB_STANDARDS = {
    "analytics_interval_s": 2,
    "period_s": 1,
    "window_days": 1,
    "baseline_periods": 10,
    "recent_periods": 3,
    "monitor_model": "mean",
}
YEAR_NS = int(365.25 * 86_400e9)


def lab_standard(now_ns: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The lab's Zener Z10-01 (the simulated zener-10v, tagged standard=Z10-01) and four yearly
    certificates on the simulator's own drift line: it drifts −0.4 µV/V a year towards its
    −2 µV/V tolerance limit, which the certificates' fit forecasts for the early 2030s."""
    now_ns = now_ns or time.time_ns()
    zener = Zener(ZenerParams())
    standard = {
        "id": "Z10-01",
        "kind": "dc_voltage",
        "description": "Zener 10 V reference",
        "nominal": 10.0,
        "unit": "V",
        "manufacturer": "Fluke",
        "model": "732C",
        "serial": "1234567",
        "owner_lab": "VMI Electrical",
        "tolerance": "±2 ppm",
        "channels": [
            {"agent": AGENT, "instrument": "zener-10v", "channel": "voltage", "unit": "V"}
        ],
    }
    certificates = []
    for number, years_ago in enumerate((3.0, 2.0, 1.0, 0.1), start=1):
        calibrated = now_ns - round(years_ago * YEAR_NS)
        day = datetime.fromtimestamp(calibrated / 1e9, UTC).date()
        certificates.append(
            {
                "number": f"VMI-{day.year}-{100 + number}",
                "issuer": "Viện Đo lường Việt Nam",
                "calibration_date": day.isoformat(),
                "due_date": (day + timedelta(days=365)).isoformat(),
                "value": zener.true_value("voltage", calibrated),
                "expanded_uncertainty": 2e-6,
                "coverage_factor": 2.0,
                "traceable_to": [{"lab": "VMI", "standard": "JVS-1", "national": True}],
            }
        )
    return standard, certificates


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
        standards: dict[str, Any] | None = None,
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
                        # The lab's tests send wrong tokens on purpose, all from 127.0.0.1, for
                        # as long as the package runs; throttling has its own tests.
                        "auth_failures": {"max_failures": 10_000},
                        "tokens": [
                            {"name": name, "role": role, "token": {"env": env}}
                            for env, (name, role, _) in TOKENS.items()
                        ],
                    },
                    "dashboard": dashboard or {"limits": ROOM_LIMITS},
                    "alerts": alerts,
                    **({"standards": standards} if standards is not None else {}),
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

    def register_standard(self, timeout_s: float = 60.0) -> None:
        """Register the lab's standard and its certificates through the API, as an admin, and
        wait for its first evaluation (which starts the analytics' worker: its threads belong
        to the lab, not to the test that happens to run next)."""
        standard, certificates = lab_standard()
        headers = {"Authorization": f"Bearer {ROLE_TOKENS['admin']}"}
        base = f"{self.api_url}/api/v1/standards"
        with httpx.Client(headers=headers, timeout=30) as http:
            http.post(base, json=standard).raise_for_status()
            for certificate in certificates:
                http.post(f"{base}/Z10-01/certificates", json=certificate).raise_for_status()
            deadline = time.monotonic() + timeout_s
            while http.get(f"{base}/Z10-01/drift").status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the lab's standard was not evaluated in time")
                time.sleep(0.5)

    def stop(self) -> None:
        """Stop the agent, then the gateway, and wait for the thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if self._thread.is_alive():
            raise RuntimeError("the lab did not stop")
