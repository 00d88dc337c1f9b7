"""Stale data is the channels' silence, never the gateway's own delay (issue 12, finding 7).

The restart scenario flaked because the gateway raised ``stale`` for channels that kept
publishing: its event loop was held (the first API request, the first alert's HTTP client and TLS
context, a restart's imports) while the readings waited in its socket, and the timers, running
first when the loop was free, counted the wait as silence; after a restart they judged the
channels before the broker's backlog was read. Now ingest probes the broker: silence is judged
only up to the sending time of the latest probe that came back (everything the broker took before
it has been evaluated), and not at all before a first one is back.

These tests drive the real engine with a clock the test moves, the real Ingest with its probe,
and a real gateway slow to hand readings over while they keep coming. The engine and gateway
tests fail on the code before the fix (a stale alert raised).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.alerts.engine import AlertEngine
from gateway.config import GatewayConfig
from gateway.ingest import ingest as ingest_module
from gateway.ingest.events import EventHub, Heard, ReadingsArrived
from gateway.records.chain import LedgerSettings
from gateway.records.store import RecordStore
from tests.gateway.alerts.harness import (
    FakeAgent,
    gateway_settings,
    in_thread,
    set_secrets,
    wait_for,
)
from tests.gateway.ingest.harness import ROOT, IngestRig, batch, reading
from tests.support.gateway import running_gateway
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto

SITE, AGENT = "lab-1", "bench-1"
T0 = 1000.0
TICK = 0.1
MAX_AGE = 0.3


class Clock:
    """The engine's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def monotonic(self) -> float:
        return self.now


def config(tmp: Path, **alerts: Any) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "site": SITE,
            "spool": {"path": str(tmp / "spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp / "readings.db")},
            "records": {"path": str(tmp / "records.db")},
            "alerts": {
                "tick_s": TICK,
                "rules": [
                    {
                        "id": "silent",
                        "kind": "stale",
                        "channels": ["lab-1/*/*/*"],
                        "max_age_s": MAX_AGE,
                    }
                ],
                **alerts,
            },
        }
    )


async def open_engine(tmp: Path, clock: Clock, watermarked: bool) -> AlertEngine:
    cfg = config(tmp)
    records = RecordStore(cfg.records.path, LedgerSettings.of(cfg.records, cfg.site, cfg.id))
    await records.open()
    engine = AlertEngine(
        cfg, records, EventHub(), monotonic=clock.monotonic, watermarked=watermarked
    )
    await engine.open()
    return engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[AlertEngine, Clock]]:
    clock = Clock()
    engine = await open_engine(tmp_path, clock, watermarked=True)
    try:
        yield engine, clock
    finally:
        await engine.close()
        await engine.records.close()


def hear(engine: AlertEngine, index: int) -> None:
    """One reading of the channel handed over (as ingest does)."""
    engine.hub.publish(ReadingsArrived(SITE, AGENT, [reading(index)]))  # type: ignore[list-item]


def probe_back(engine: AlertEngine, sent: float) -> None:
    """A probe sent at ``sent`` handed over, after what the broker took before it."""
    engine.hub.publish(Heard(sent))


def tick(engine: AlertEngine, clock: Clock, at: float) -> None:
    """A turn of the engine's loop at ``at``: what is queued, then the timers."""
    clock.now = at
    engine._process()
    engine.timers.tick()


def stale(engine: AlertEngine) -> list[str]:
    return [a.state for a in engine.tracker.alerts.values() if a.rule_id == "silent"]


async def test_a_held_gateway_is_not_the_channels_silence(
    engine: tuple[AlertEngine, Clock],
) -> None:
    engine_, clock = engine
    hear(engine_, 1)
    probe_back(engine_, T0)
    tick(engine_, clock, T0 + TICK)
    # The gateway's loop is held for 1.5 s (readings wait in its socket, its probe with them):
    # the tick that runs first when it is free judges nothing beyond the last probe back.
    tick(engine_, clock, T0 + 1.6)
    assert stale(engine_) == []
    # Then what waited is handed over: the readings, then the probe sent before the hold.
    hear(engine_, 2)
    probe_back(engine_, T0 + TICK)
    tick(engine_, clock, T0 + 1.7)
    hear(engine_, 3)
    probe_back(engine_, T0 + 1.65)  # sent after the hold: behind reading 3 at the broker
    tick(engine_, clock, T0 + 1.8)
    assert stale(engine_) == []
    # Real silence is still silence: probes come back, no reading with them.
    for step in range(1, 6):
        probe_back(engine_, T0 + 1.8 + step * TICK)
        tick(engine_, clock, T0 + 1.85 + step * TICK)
    assert stale(engine_) == ["active_unacknowledged"]
    hear(engine_, 4)
    tick(engine_, clock, T0 + 2.5)
    assert stale(engine_) == ["returned_unacknowledged"]


async def test_nothing_is_judged_before_a_first_probe_is_back(
    engine: tuple[AlertEngine, Clock],
) -> None:
    """A (re)started gateway: the channels are declared at start, the broker's backlog comes
    later, after the connection and the API's start-up: never judged before it is read."""
    engine_, clock = engine
    hear(engine_, 1)  # a channel known at start (the catalogue), its clock starts now
    for step in range(1, 30):
        tick(engine_, clock, T0 + step * TICK)
    assert stale(engine_) == []
    hear(engine_, 2)  # the backlog...
    probe_back(engine_, T0 + 2.95)  # ...and behind it the first probe
    tick(engine_, clock, T0 + 3.0)
    assert stale(engine_) == []
    # A channel that stays silent after the backlog is stale once a probe says so.
    probe_back(engine_, T0 + 3.4)
    tick(engine_, clock, T0 + 3.5)
    assert stale(engine_) == ["active_unacknowledged"]


async def test_probes_only_advance(engine: tuple[AlertEngine, Clock]) -> None:
    engine_, clock = engine
    hear(engine_, 1)
    tick(engine_, clock, T0 + TICK)
    probe_back(engine_, T0 + 5.0)
    probe_back(engine_, T0 + 0.1)  # an older one, redelivered: does not move the horizon back
    engine_._process()
    assert engine_.timers.heard_until == T0 + 5.0


async def test_an_engine_fed_directly_judges_up_to_now(tmp_path: Path) -> None:
    clock = Clock()
    engine = await open_engine(tmp_path, clock, watermarked=False)
    try:
        hear(engine, 1)
        tick(engine, clock, T0 + TICK)
        tick(engine, clock, T0 + TICK + MAX_AGE + 0.05)
        assert stale(engine) == ["active_unacknowledged"]
    finally:
        await engine.close()
        await engine.records.close()


# -- ingest's probe -----------------------------------------------------------------------------


async def test_ingest_hands_its_probe_over_after_what_came_before_it(tmp_path: Path) -> None:
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        ingest = rig.ingest
        assert ingest.probe_topic == "etalon/v1/lab-1/gateways/gw-1/probe"
        assert ingest.probe_topic in ingest.subscriptions()
        events: list[object] = []
        ingest.hub.subscribe(ReadingsArrived, events.append)
        ingest.hub.subscribe(Heard, events.append)
        sent = time.monotonic()
        rig.deliver(f"{ROOT}/data", batch(reading(1)))
        rig.deliver(ingest.probe_topic, orjson.dumps({"run": ingest.run_id, "sent": sent}))
        rig.deliver(f"{ROOT}/data", batch(reading(2)))
        await rig.settle()
        assert [type(e).__name__ for e in events] == ["ReadingsArrived", "Heard", "ReadingsArrived"]
        assert events[1] == Heard(sent)
        assert ingest.probe_back is not None and ingest.probe_back >= sent
        assert rig.metrics.messages_received == 2  # a probe is not an agent's message
        # A probe of an earlier run of the gateway (queued by the broker across a kill): heard
        # nothing new, acknowledged, not refused.
        events.clear()
        outcome = await rig.send(ingest.probe_topic, orjson.dumps({"run": "0" * 16, "sent": 1.0}))
        assert outcome.acked and outcome.letters == [] and events == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "a probe is JSON"),
        (b"[[[[[[[[[[" * 30, "at most 200 bytes"),
        (b"[]", "and nothing else"),
        (b'{"run": "x"}', "and nothing else"),
        (b'{"run": 1, "sent": 1.0}', "and nothing else"),
        (b'{"run": "RUN", "sent": 1}', "and nothing else"),
        (b'{"run": "RUN", "sent": true}', "and nothing else"),
        (b'{"run": "RUN", "sent": "1.0"}', "and nothing else"),
        (b'{"run": "RUN", "sent": 1.0, "more": 1}', "and nothing else"),
        (b'{"run": "RUN", "sent": 1e999}', "a probe is JSON"),
        (b'{"run": "RUN", "sent": 1e300}', "sent in the future"),
    ],
)
async def test_a_hostile_probe_is_refused_alone(
    tmp_path: Path, payload: bytes, reason: str
) -> None:
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        ingest = rig.ingest
        heard: list[Heard] = []
        ingest.hub.subscribe(Heard, heard.append)
        outcome = await rig.send(
            ingest.probe_topic, payload.replace(b"RUN", ingest.run_id.encode())
        )
        assert outcome.acked
        [letter] = outcome.letters
        assert reason in letter["reason"]
        assert heard == [] and ingest.probe_back is None
        assert rig.metrics.payloads_deadlettered == 1
        # Ingest goes on: a valid reading afterwards is spooled.
        after = await rig.send(f"{ROOT}/data", batch(reading(5)))
        assert after.acked and len(after.entries) == 1


class ProbingLink:
    """The link's face towards the probe: connected or not, what was published."""

    def __init__(self) -> None:
        self.on_message: Any = None
        self.connected = asyncio.Event()
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        self.published.append((topic, payload))
        return len(self.published)


async def test_the_probe_is_sent_while_connected_and_its_loss_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ingest_module, "PROBE_LOST_S", 0.3)
    caplog.set_level(logging.INFO, "etalon.gateway")
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        ingest = rig.ingest
        link = ProbingLink()
        ingest.link = link  # type: ignore[assignment]
        task = asyncio.create_task(ingest.probe(0.01))
        try:
            await asyncio.sleep(0.1)
            assert link.published == []  # not connected: nothing sent
            link.connected.set()
            await wait_for(lambda: len(link.published) >= 3, what="probes")
            topic, body = link.published[0]
            probe = json.loads(body)
            assert topic == ingest.probe_topic and probe["run"] == ingest.run_id
            assert math.isfinite(probe["sent"]) and probe["sent"] <= time.monotonic()
            # None comes back (a broker that refuses the topic): said once, not per probe.
            await wait_for(
                lambda: any("probe not coming back" in r.getMessage() for r in caplog.records),
                what="loss said",
            )
            await asyncio.sleep(0.1)
            lost = [r for r in caplog.records if "probe not coming back" in r.getMessage()]
            assert len(lost) == 1
            # One comes back: said too.
            rig.deliver(ingest.probe_topic, link.published[-1][1])
            await wait_for(
                lambda: any(r.getMessage() == "probe back" for r in caplog.records),
                what="back said",
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


# -- the notifier does not hold the loop at the first alert ----------------------------------


async def test_senders_are_made_at_start_not_at_the_first_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    monkeypatch.setenv("MISSING_SECRET", "gone-before-start")
    cfg = config(
        tmp_path,
        recipients=[
            {"id": "an", "name": "An", "email": "an@lab.example"},
            {"id": "lims", "name": "LIMS", "webhook": "lims"},
            {"id": "erp", "name": "ERP", "webhook": "erp"},
        ],
        webhooks=[
            {"id": "lims", "url": "http://127.0.0.1:9/hook", "secret": {"env": "HOOK_SECRET"}},
            {"id": "erp", "url": "http://127.0.0.1:9/erp", "secret": {"env": "MISSING_SECRET"}},
        ],
        smtp={"host": "127.0.0.1", "port": 9, "sender": "etalon@lab.example"},
    )
    monkeypatch.delenv("MISSING_SECRET")  # after the config was read: the sender cannot be made
    records = RecordStore(cfg.records.path, LedgerSettings.of(cfg.records, cfg.site, cfg.id))
    await records.open()
    caplog.set_level(logging.WARNING, "etalon.gateway.alerts")
    engine = AlertEngine(cfg, records, EventHub())
    try:
        assert set(engine.notifier.webhooks) == {"lims"}
        assert engine.notifier.smtp is not None
        # One that cannot be made is said once, and left to its deliveries to fail and audit.
        [line] = [r for r in caplog.records if r.getMessage() == "webhook not ready"]
        assert "MISSING_SECRET" in str(line.__dict__)
    finally:
        await engine.close()
        await records.close()


# -- a real gateway, slow to hand readings over ----------------------------------------------------


async def test_a_gateway_slow_to_hand_over_raises_no_stale_alert_for_a_live_channel(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real gateway and broker; the gateway's spool takes 1 s per commit (a slow disk), so
    readings reach the alert engine in batches a second apart although the channel publishes
    every 0.1 s: never silent for its 0.6 s, the gateway is. Then the readings stop: stale."""
    set_secrets(monkeypatch)
    alerts = {
        "rules": [
            {"id": "silent", "kind": "stale", "channels": ["lab-1/bench-9/*/*"], "max_age_s": 0.6}
        ]
    }
    client = RawClient(mosquitto.port, "fake-agent")
    agent = FakeAgent(client)
    try:
        async with running_gateway(gateway_settings(tmp_path, mosquitto, alerts)) as gateway:
            assert gateway.alerts is not None
            engine = gateway.alerts
            tracker = engine.tracker

            def silent() -> list[str]:
                return [a.state for a in tracker.alerts.values() if a.rule_id == "silent"]

            agent.birth({"temperature": ("°C", 0.1)})
            await in_thread(agent.send, [("temperature", 21.0)])
            await wait_for(lambda: engine.timers.heard_until is not None, what="probe")
            append = gateway.spool.append

            async def slow_append(entries: list[bytes]) -> int:
                await asyncio.sleep(1.0)
                return await append(entries)

            gateway.spool.append = slow_append  # type: ignore[method-assign]
            evaluated = engine.stats.readings_evaluated
            for _ in range(40):
                await in_thread(agent.send, [("temperature", 21.0)])
                await asyncio.sleep(0.1)
            assert engine.stats.readings_evaluated - evaluated >= 20  # they did come, late
            assert silent() == []
            gateway.spool.append = append  # type: ignore[method-assign]
            await wait_for(lambda: silent() == ["active_unacknowledged"], what="stale alert")
    finally:
        client.close()
