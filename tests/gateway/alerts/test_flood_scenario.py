"""Fifty channels failing together (a simulator's fault hook makes every reply garbage): one
grouped message per recipient, escalation to the next recipient after its delay, a webhook that
fails twice and is retried with the same delivery id."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.alerts.payloads import WebhookNotification
from tests.gateway.alerts.harness import (
    SmtpReceiver,
    WebhookReceiver,
    agent_process,
    agent_settings,
    bearer,
    gateway_settings,
    set_secrets,
    wait_for,
)
from tests.support.gateway import running_gateway
from tests.support.services import Mosquitto

CHANNELS = 50
ESCALATE_AFTER_S = 2.0


def rack(control: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": "rack",
            "protocol": "sim",
            "model": {"kind": "room"},
            "faults": {"control_file": str(control)},
            "channels": [
                {"name": f"t{i:02d}", "quantity": "temperature", "unit": "°C", "interval_s": 0.2}
                for i in range(CHANNELS)
            ],
        }
    ]


def alerts(smtp: SmtpReceiver, hooks: WebhookReceiver) -> dict[str, Any]:
    return {
        "rules": [
            {
                "id": "rack-readings",
                "kind": "bad_quality",
                "count": 2,
                "severity": "alarm",
                "channels": ["lab-1/bench-1/rack/*"],
            }
        ],
        "recipients": [
            {
                "id": "an",
                "name": "Nguyễn Văn An",
                "email": "an@lab.example",
                "language": "vi",
                "group_window_s": 1.0,
            },
            {"id": "lims", "name": "LIMS", "webhook": "lims", "group_window_s": 1.0},
            {
                "id": "chief",
                "name": "Lab chief",
                "email": "chief@lab.example",
                "group_window_s": 1.0,
            },
        ],
        "webhooks": [{"id": "lims", "url": hooks.url(), "retry": {"initial_s": 0.1, "max_s": 0.2}}],
        "policies": [
            {
                "id": "lab",
                "levels": [
                    {"after_s": 0, "recipients": ["an", "lims"]},
                    {"after_s": ESCALATE_AFTER_S, "recipients": ["chief"]},
                ],
            }
        ],
        "default_policy": "lab",
        "smtp": smtp.config(),
    }


async def test_fifty_channels_failing_together_give_one_message_per_recipient_then_escalate(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    control = tmp_path / "faults.json"
    control.write_text("{}")
    with SmtpReceiver(tmp_path / "certs") as smtp, WebhookReceiver(fail_first=2) as hooks:
        settings = gateway_settings(tmp_path, mosquitto, alerts(smtp, hooks))
        async with (
            running_gateway(settings) as gateway,
            httpx.AsyncClient(
                base_url=gateway.api_url or "", headers=bearer("ALERTS_VIEW_TOKEN")
            ) as http,
        ):
            async with agent_process(tmp_path, agent_settings(tmp_path, mosquitto, rack(control))):
                assert gateway.alerts is not None
                engine = gateway.alerts
                await wait_for(
                    lambda: engine.stats.readings_evaluated > 3 * CHANNELS, what="readings"
                )
                control.write_text(json.dumps({"garbage_rate": 1.0}))
                await wait_for(
                    lambda: smtp.to("chief@lab.example"), timeout_s=20, what="escalation e-mail"
                )
                await wait_for(lambda: hooks.delivered(), what="webhook")
                listed = (await http.get("/api/v1/alerts")).json()
                one = (await http.get(f"/api/v1/alerts/{listed[0]['id']}")).json()
                await asyncio.sleep(1.5)  # nothing more may come
            assert engine.notifier.stats.messages_sent == 3

    assert len(listed) == CHANNELS
    assert {a["state"] for a in listed} == {"active_unacknowledged"}
    assert {a["escalation_level"] for a in listed} == {1}

    [first] = smtp.to("an@lab.example")
    assert first.message["Subject"] == (
        f"[etalon lab-1] {CHANNELS} thông báo cảnh báo: {CHANNELS} xuất hiện"
    )
    assert first.body.count("BÁO ĐỘNG xuất hiện") == CHANNELS
    assert "số đo chất lượng hỏng liên tiếp" in first.body

    [escalated] = smtp.to("chief@lab.example")
    assert escalated.message["Subject"] == (
        f"[etalon lab-1] {CHANNELS} alert notifications: {CHANNELS} escalated"
    )
    assert escalated.body.count("escalated: unacknowledged for 2 s") == CHANNELS

    # The webhook failed twice (503) and got the same message three times: one delivery id.
    assert [h.status for h in hooks.requests] == [503, 503, 200]
    assert len({h.headers["x-etalon-delivery"] for h in hooks.requests}) == 1
    [body] = [WebhookNotification.model_validate(h.json()) for h in hooks.delivered()]
    assert len(body.events) == CHANNELS and {e.event for e in body.events} == {"raised"}

    # Escalation came after its delay (gateway time, from the audit trail).
    trail = {h["action"]: h for h in one["history"]}
    delay_ns = trail["alert escalated"]["ts_ns"] - trail["alert active"]["ts_ns"]
    assert ESCALATE_AFTER_S * 1e9 <= delay_ns <= (ESCALATE_AFTER_S + 1.0) * 1e9
    assert trail["alert escalated"]["details"]["recipients"] == ["chief"]
