"""Bounds on what people are told: shelving ends by itself when its time is up (and the
notifications resume), a recipient's ``max_messages_per_hour`` holds a storm back and merges it
into the next message allowed, and a site that does not require a comment can acknowledge
without one. The engine's clocks are moved forward by the test (``ShiftedClock``) instead of
waiting hours."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.alerts.lifecycle import ACTIVE, RETURNED
from tests.gateway.alerts.harness import (
    FakeAgent,
    ShiftedClock,
    WebhookReceiver,
    bearer,
    gateway_settings,
    in_thread,
    set_secrets,
    wait_for,
)
from tests.support.gateway import running_gateway
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto

ROOM = "lab-1/bench-9/room-a/temperature"
ROOM_RULE = {
    "id": "room",
    "kind": "limits",
    "channels": [ROOM],
    "levels": [{"severity": "alarm", "high": 24.0}],
}


async def feed(agent: FakeAgent, value: float) -> None:
    await in_thread(agent.send, [("temperature", value)])


def events(hooks: WebhookReceiver, path: str) -> list[str]:
    """The notification events delivered to ``path``, in order."""
    return [e["event"] for h in hooks.delivered(path) for e in h.json()["events"]]


async def test_shelving_ends_by_itself_and_notifications_resume(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    client = RawClient(mosquitto.port, "fake-agent")
    agent = FakeAgent(client)
    with WebhookReceiver() as hooks:
        alerts: dict[str, Any] = {
            "rules": [ROOM_RULE],
            "recipients": [
                {"id": "lims", "name": "LIMS", "webhook": "lims", "group_window_s": 0.1},
                {"id": "chief", "name": "Lab chief", "webhook": "chief", "group_window_s": 0.1},
            ],
            "webhooks": [
                {"id": "lims", "url": hooks.url("/lims")},
                {"id": "chief", "url": hooks.url("/chief")},
            ],
            "policies": [
                {
                    "id": "lab",
                    "levels": [
                        {"after_s": 0, "recipients": ["lims"]},
                        {"after_s": 600, "recipients": ["chief"]},
                    ],
                }
            ],
            "default_policy": "lab",
            "ack": {"comment_required": False},
        }
        try:
            async with (
                running_gateway(gateway_settings(tmp_path, mosquitto, alerts)) as gateway,
                httpx.AsyncClient(base_url=gateway.api_url or "") as http,
            ):
                engine = gateway.alerts
                assert engine is not None
                clock = ShiftedClock(engine)
                await in_thread(agent.birth, {"temperature": ("°C", 1.0)})
                await feed(agent, 30.0)
                await wait_for(lambda: events(hooks, "/lims") == ["raised"], what="raised")
                [alert] = engine.tracker.alerts.values()

                shelved = await http.post(
                    f"/api/v1/alerts/{alert.id}/shelve",
                    json={"duration_s": 1800, "reason": "bench under maintenance"},
                    headers=bearer("ALERTS_OPS_TOKEN"),
                )
                assert shelved.status_code == 200, shelved.text
                # Past the escalation delay, then cleared and raised again: all while shelved.
                clock.advance(700)
                await asyncio.sleep(0.3)
                await feed(agent, 23.0)
                await wait_for(lambda: alert.state == RETURNED, what="returned while shelved")
                await feed(agent, 31.0)
                await wait_for(lambda: alert.occurrences == 2, what="active again")
                await asyncio.sleep(1.0)  # enough for anything that would be sent to arrive
                assert alert.state == ACTIVE and alert.shelved_until_ns is not None
                assert events(hooks, "/lims") == ["raised"]
                assert events(hooks, "/chief") == []

                # Time is up: the gateway unshelves it, and the first level is told again.
                clock.advance(1200)
                await wait_for(lambda: alert.shelved_until_ns is None, what="unshelved")
                await wait_for(
                    lambda: events(hooks, "/lims") == ["raised", "raised"], what="raised again"
                )
                assert events(hooks, "/chief") == []
                # ... and escalation runs again from there.
                clock.advance(601)
                await wait_for(lambda: events(hooks, "/chief") == ["escalated"], what="escalated")

                # alerts.ack.comment_required: false — an acknowledgement without a comment.
                acked = await http.post(
                    f"/api/v1/alerts/{alert.id}/ack", json={}, headers=bearer("ALERTS_OPS_TOKEN")
                )
                assert acked.status_code == 200, acked.text
                assert acked.json()["state"] == "active_acknowledged"
                assert acked.json()["acked_by"] == "nguyen"
                trail = (
                    await http.get(
                        f"/api/v1/alerts/{alert.id}", headers=bearer("ALERTS_VIEW_TOKEN")
                    )
                ).json()["history"]
        finally:
            client.close()

    assert [(h["action"], h["actor"]) for h in trail] == [
        ("alert active", "gateway"),
        ("alert shelved", "nguyen"),
        ("alert returned", "gateway"),
        ("alert active", "gateway"),
        ("alert unshelved", "gateway"),
        ("alert escalated", "gateway"),
        ("alert acknowledged", "nguyen"),
    ]
    unshelved = trail[4]
    assert unshelved["details"]["comment"] == "shelving time is up"
    shelved_until = trail[1]["details"]["until_ns"]
    assert unshelved["ts_ns"] >= shelved_until
    assert trail[6]["details"]["comment"] is None


async def test_a_storm_beyond_the_hourly_limit_is_held_and_merged_not_flooded(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    client = RawClient(mosquitto.port, "fake-agent")
    agent = FakeAgent(client)
    with WebhookReceiver() as hooks:
        alerts: dict[str, Any] = {
            "rules": [ROOM_RULE],
            "recipients": [
                {
                    "id": "duty",
                    "name": "Duty officer",
                    "webhook": "duty",
                    "group_window_s": 0.1,
                    "max_messages_per_hour": 2,
                }
            ],
            "webhooks": [{"id": "duty", "url": hooks.url("/duty")}],
            "policies": [{"id": "lab", "levels": [{"after_s": 0, "recipients": ["duty"]}]}],
            "default_policy": "lab",
        }
        try:
            async with running_gateway(gateway_settings(tmp_path, mosquitto, alerts)) as gateway:
                engine = gateway.alerts
                assert engine is not None
                clock = ShiftedClock(engine)
                await in_thread(agent.birth, {"temperature": ("°C", 1.0)})
                # Five raise-and-clear cycles, each well apart from the others' grouping window:
                # ten notifications that would be ten messages.
                for cycle in range(5):
                    await feed(agent, 30.0)
                    await wait_for(
                        lambda c=cycle: (
                            engine.list_alerts() and engine.list_alerts()[0]["occurrences"] == c + 1
                        ),
                        what="raised",
                    )
                    await asyncio.sleep(0.3)
                    await feed(agent, 23.0)
                    await wait_for(
                        lambda: engine.list_alerts()[0]["state"] == RETURNED, what="cleared"
                    )
                    await asyncio.sleep(0.3)
                await asyncio.sleep(0.5)
                held = len(hooks.delivered("/duty"))
                # An hour later the next notification goes out with everything held back.
                clock.advance(3601)
                await feed(agent, 30.0)
                await wait_for(lambda: len(hooks.delivered("/duty")) >= 3, what="merged message")
                await asyncio.sleep(0.5)
                delivered = hooks.delivered("/duty")
                stats = engine.notifier.stats
        finally:
            client.close()

    assert held == 2
    assert len(delivered) == 3 and stats.messages_sent == 3
    first, second, merged = ([e["event"] for e in h.json()["events"]] for h in delivered)
    assert first == ["raised"] and second == ["cleared"]
    # None dropped: the eight held back and the one that came after the hour, in one message.
    assert merged == ["raised", *["cleared", "raised"] * 4]
    assert stats.notifications_sent == 11
