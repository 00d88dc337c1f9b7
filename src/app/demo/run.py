"""``etalon demo``: the whole chain in one process on embedded defaults.

An in-process MQTT broker (amqtt on 127.0.0.1), simulated instruments, an agent and a gateway
writing to the embedded SQLite store (or to InfluxDB when asked), and a live view in the terminal.
The gateway serves its dashboard (read-only, loopback) with a lab's alert rules and the simulated
reference standards registered. At the end it checks that the store holds exactly the readings
the agent read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from app.demo.config import DemoConfig
from app.once import shown_value
from core.i18n import t
from core.mqtt import MqttConfig
from core.spool import SpoolConfig
from drivers.registry import DRIVERS
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.wire import WireReading
from gateway.config import GatewayConfig
from gateway.ingest.events import ReadingsArrived
from gateway.records.config import RecordsConfig
from gateway.service import Gateway
from gateway.tsdb.config import InfluxV1StoreConfig, InfluxV2StoreConfig, SqliteStoreConfig
from gateway.tsdb.sqlite import SqliteStore

log = logging.getLogger("etalon.demo")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_broker(port: int) -> AsyncIterator[str]:
    """An amqtt broker on 127.0.0.1:port (anonymous, in memory)."""
    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await broker.shutdown()


@contextlib.asynccontextmanager
async def simulated(instruments: list[Any]) -> AsyncIterator[list[Any]]:
    """Start each instrument's simulator (registry ``simulate`` hook); yield rewritten configs."""
    async with contextlib.AsyncExitStack() as stack:
        rewritten = [
            await stack.enter_async_context(DRIVERS[str(i.protocol)].simulate(i))
            for i in instruments
        ]
        yield rewritten


class LiveView:
    """The terminal view: latest reading of each channel, and the chain's counters."""

    def __init__(self, agent: Agent, gateway: Gateway, lang: str, out: Any = None) -> None:
        self.agent = agent
        self.gateway = gateway
        self.lang = lang
        self.out = out or sys.stdout
        self.latest: dict[tuple[str, str], WireReading] = {}
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.dashboard: str | None = None

    def on_readings(self, event: ReadingsArrived) -> None:
        """Keep the newest reading per channel."""
        for reading in event.readings:
            self.latest[(reading["instrument"], reading["channel"])] = reading

    def render(self) -> str:
        """The current screen."""
        lang = self.lang
        columns = dict(
            zip(
                ("instrument", "channel", "value", "unit", "quality", "age"),
                t("demo.columns", lang).split("|"),
                strict=True,
            )
        )
        lines = [t("demo.header", lang, **columns)]
        now = time.time_ns()
        for (instrument, channel), r in sorted(self.latest.items()):
            value = shown_value(r["value"], lang)
            age = f"{(now - r['ts']) / 1e9:.1f}s"
            lines.append(
                t(
                    "demo.header",
                    lang,
                    instrument=instrument[:16],
                    channel=channel[:18],
                    value=value,
                    unit=r["unit"],
                    quality=t(f"quality.{r['quality']}", lang),
                    age=age,
                )
            )
        am, gm = self.agent.metrics, self.gateway.metrics
        lines.append("")
        lines.append(
            t(
                "demo.counters",
                lang,
                read=am.readings_read,
                published=am.published,
                acked=am.acknowledged,
                written=gm.readings_written,  # readings, like the counts beside it
                refused=gm.readings_rejected,
                agent_spool=self.agent.spool.depth,
                gateway_spool=self.gateway.spool.depth,
            )
        )
        return "\n".join(lines)

    async def run(self, period_s: float = 1.0) -> None:
        """Redraw until cancelled (a TTY is redrawn in place; a pipe gets the counters line)."""
        while True:
            await asyncio.sleep(period_s if self.tty else 5 * period_s)
            screen = self.render()
            if self.tty:
                footer = t("demo.stop_hint", self.lang)
                if self.dashboard:
                    footer = t("demo.dashboard", self.lang, url=self.dashboard) + "\n" + footer
                self.out.write("\x1b[H\x1b[2J" + screen + "\n" + footer + "\n")
            else:
                self.out.write(screen.splitlines()[-1] + "\n")
            self.out.flush()


async def run_demo(
    config: DemoConfig,
    stop: asyncio.Event,
    *,
    duration_s: float | None,
    data_dir: Path | None,
    store: SqliteStoreConfig | InfluxV2StoreConfig | InfluxV1StoreConfig | None,
    lang: str,
    broker_port: int | None = None,
    dashboard: bool = True,
    dashboard_port: int | None = None,
    running: asyncio.Event | None = None,
) -> int:
    """Run the demo until ``stop`` or ``duration_s``; returns the exit status (0: exact).
    ``dashboard``: serve the API and dashboard (on ``dashboard_port``, by default 8080 or a
    free port), with alert rules and the simulated standards registered. ``running`` is set
    once the chain runs (until then a stop cancels the start-up, see ``core.signals``)."""
    started = time.monotonic()
    data = data_dir or Path(tempfile.mkdtemp(prefix="etalon-demo-"))
    port = broker_port or free_port()
    mqtt = MqttConfig(host="127.0.0.1", port=port, keepalive_s=10)
    store = store or SqliteStoreConfig(path=data / "readings.db")
    async with embedded_broker(port) as where, simulated(list(config.instruments)) as instruments:
        agent = Agent(
            AgentConfig(
                site=config.site,
                id="demo-agent",
                mqtt=mqtt,
                publish=config.publish,
                spool=SpoolConfig(path=data / "agent-spool.db", synchronous="normal"),
                instruments=instruments,
            )
        )
        records = RecordsConfig(path=data / "records.db")
        extras: dict[str, Any] = {}
        if dashboard:
            from app.demo.lab import api_port, demo_alerts, demo_api, register_standards
            from gateway.standards.config import StandardsConfig

            extras = {
                "api": demo_api(api_port(dashboard_port)),
                "alerts": demo_alerts(config.site),
                "standards": StandardsConfig(analytics_interval_s=60),
            }
            await register_standards(
                records, config.site, "demo-gateway", instruments, agent.config.id
            )
        gateway = Gateway(
            GatewayConfig(
                site=config.site,
                id="demo-gateway",
                mqtt=mqtt,
                spool=SpoolConfig(path=data / "gateway-spool.db", synchronous="normal"),
                store=store,
                records=records,
                **extras,
            )
        )
        view = LiveView(agent, gateway, lang)
        print(t("demo.title", lang, site=config.site, broker=where, store=store.kind), flush=True)
        agent_stop, gateway_stop = asyncio.Event(), asyncio.Event()
        async with asyncio.TaskGroup() as group:
            gateway_task = group.create_task(gateway.run(gateway_stop))
            await gateway.started.wait()
            if gateway.api_url is not None:
                view.dashboard = gateway.api_url + "/ui/"
                print(t("demo.dashboard", lang, url=view.dashboard), flush=True)
            gateway.hub.subscribe(ReadingsArrived, view.on_readings)
            agent_task = group.create_task(agent.run(agent_stop))
            view_task = group.create_task(view.run())
            if running is not None:
                running.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
            agent_stop.set()
            await agent_task
            # Let the gateway take in what the agent handed to the broker before it stops.
            deadline = time.monotonic() + 5
            behind = gateway.metrics.readings_received < agent.metrics.acknowledged
            while behind and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # counters have no event to wait on
                behind = gateway.metrics.readings_received < agent.metrics.acknowledged
            gateway_stop.set()
            await gateway_task
            view_task.cancel()
    read = agent.metrics.readings_read
    if isinstance(store, SqliteStoreConfig):
        stored = await count_stored(store)
    else:
        stored = gateway.metrics.readings_written
    print(view.render(), flush=True)
    print(
        t(
            "demo.summary",
            lang,
            seconds=time.monotonic() - started,
            read=read,
            stored=stored,
            store=store.kind,
            data_dir=data,
        ),
        flush=True,
    )
    if stored == read:
        print(t("demo.exact", lang), flush=True)
        return 0
    # Where the count broke tells the cause: short of received is the MQTT leg, short of
    # stored is two readings of one series with one time stamp (the store keeps one).
    received = gateway.metrics.readings_received
    print(t("demo.mismatch", lang, read=read, received=received, stored=stored), flush=True)
    return 1


async def count_stored(config: SqliteStoreConfig) -> int:
    """Readings in the embedded store."""
    store = SqliteStore(config)
    await store.open()
    try:
        rows = await store.query("SELECT COUNT(*) FROM readings")
        return int(rows[0][0])
    finally:
        await store.close()
