"""The alerts API and ``etalon alerts``: who may do what, refusals with reasons, the audit trail
of operators' actions and of rule changes (before and after, across restarts), stale data."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main as etalon
from tests.gateway.alerts.harness import (
    TOKENS,
    FakeAgent,
    bearer,
    gateway_settings,
    in_thread,
    set_secrets,
    wait_for,
)
from tests.support.gateway import running_gateway
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto, free_port

ROOM = "lab-1/bench-9/room-a/temperature"


def alerts(high: float = 24.0, extra_rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "rules": [
            {
                "id": "room",
                "kind": "limits",
                "channels": [ROOM],
                "levels": [{"severity": "alarm", "high": high}],
            },
            {"id": "silent", "kind": "stale", "channels": ["lab-1/bench-9/*/*"], "intervals": 3},
            *(extra_rules or []),
        ],
        "shelve": {"max_s": 3600},
    }


async def feed(agent: FakeAgent, value: float, times: int = 3) -> None:
    for _ in range(times):
        await in_thread(agent.send, [("temperature", value)])
        await asyncio.sleep(0.05)


async def test_operators_act_viewers_read_admins_change_rules_all_audited(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    client = RawClient(mosquitto.port, "fake-agent")
    agent = FakeAgent(client)
    try:
        async with running_gateway(gateway_settings(tmp_path, mosquitto, alerts())) as gateway:
            url = gateway.api_url or ""
            async with httpx.AsyncClient(base_url=url) as http:
                await in_thread(agent.birth, {"temperature": ("°C", 0.2)})
                await feed(agent, 30.0)

                async def listed(token: str = "ALERTS_VIEW_TOKEN") -> list[dict[str, Any]]:
                    answer = await http.get("/api/v1/alerts", headers=bearer(token))
                    assert answer.status_code == 200, answer.text
                    result: list[dict[str, Any]] = answer.json()
                    return result

                async def one(rule: str) -> dict[str, Any] | None:
                    return next((a for a in await listed() if a["rule_id"] == rule), None)

                for _ in range(100):
                    if await one("room"):
                        break
                    await asyncio.sleep(0.05)
                room = await one("room")
                assert room is not None and room["state"] == "active_unacknowledged"
                assert room["message"] == "30 °C above the high limit 24 °C"
                alert_id = room["id"]

                async def post(action: str, token: str, **body: Any) -> httpx.Response:
                    return await http.post(
                        f"/api/v1/alerts/{alert_id}/{action}", json=body, headers=bearer(token)
                    )

                assert (await http.get("/api/v1/alerts")).status_code == 401
                refused = await post("ack", "ALERTS_VIEW_TOKEN", comment="x")
                assert refused.status_code == 403
                assert refused.json()["detail"] == "role viewer may not do this (needs operator)"
                no_comment = await post("ack", "ALERTS_OPS_TOKEN")
                assert no_comment.status_code == 422
                assert no_comment.json()["detail"] == "a comment is required"
                acked = await post("ack", "ALERTS_OPS_TOKEN", comment="door left open, closed")
                assert acked.json()["state"] == "active_acknowledged"
                again = await post("ack", "ALERTS_OPS_TOKEN", comment="again")
                assert again.status_code == 409
                assert "nothing to acknowledge" in again.json()["detail"]
                too_long = await post("shelve", "ALERTS_OPS_TOKEN", duration_s=7200, reason="x")
                assert too_long.status_code == 422
                assert "at most 3600 s" in too_long.json()["detail"]
                no_reason = await post("shelve", "ALERTS_OPS_TOKEN", duration_s=60, reason=" ")
                assert no_reason.json()["detail"] == "a reason is required"
                shelved = await post(
                    "shelve", "ALERTS_OPS_TOKEN", duration_s=600, reason="bench under maintenance"
                )
                assert shelved.json()["shelve_reason"] == "bench under maintenance"
                assert (await post("unshelve", "ALERTS_OPS_TOKEN")).status_code == 200
                assert (await post("unshelve", "ALERTS_OPS_TOKEN")).status_code == 409
                assert (
                    await post("comment", "ALERTS_OPS_TOKEN", comment="checked the probe")
                ).status_code == 200
                missing = await http.get("/api/v1/alerts/999", headers=bearer("ALERTS_VIEW_TOKEN"))
                assert (missing.status_code, missing.json()["detail"]) == (404, "no alert 999")

                # Rules: admins only, validated, audited with before and after.
                change = {
                    "rule": {
                        "id": "room",
                        "kind": "limits",
                        "channels": [ROOM],
                        "levels": [{"severity": "alarm", "high": 35.0}],
                    },
                    "comment": "summer set-point, per QM-17",
                }
                for token in ("ALERTS_VIEW_TOKEN", "ALERTS_OPS_TOKEN"):
                    assert (
                        await http.put(
                            "/api/v1/alerts/rules/room", json=change, headers=bearer(token)
                        )
                    ).status_code == 403
                bad = {
                    "rule": {
                        **change["rule"],
                        "levels": [{"severity": "alarm", "low": 40, "high": 35}],
                    }
                }
                invalid = await http.put(
                    "/api/v1/alerts/rules/room", json=bad, headers=bearer("ALERTS_ADMIN_TOKEN")
                )
                assert invalid.status_code == 422
                assert "low (40.0) must be below high (35.0)" in invalid.json()["detail"]
                put = await http.put(
                    "/api/v1/alerts/rules/room", json=change, headers=bearer("ALERTS_ADMIN_TOKEN")
                )
                assert put.status_code == 200, put.text
                assert put.json()["source"] == "api"
                history = (
                    await http.get(
                        "/api/v1/alerts/rules/room/history", headers=bearer("ALERTS_VIEW_TOKEN")
                    )
                ).json()
                assert history[-1]["actor"] == "quality-manager"
                assert history[-1]["details"]["before"]["levels"][0]["high"] == 24.0
                assert history[-1]["details"]["after"]["levels"][0]["high"] == 35.0
                assert history[-1]["details"]["comment"] == "summer set-point, per QM-17"

                await feed(agent, 30.0)  # inside the new limit: the acknowledged alert clears
                await wait_for(
                    lambda: gateway.alerts and gateway.alerts.get(alert_id).state == "normal",
                    what="clear",
                )
                trail = (
                    await http.get(
                        f"/api/v1/alerts/{alert_id}", headers=bearer("ALERTS_VIEW_TOKEN")
                    )
                ).json()["history"]
                assert [(h["action"], h["actor"]) for h in trail] == [
                    ("alert active", "gateway"),
                    ("alert acknowledged", "nguyen"),
                    ("alert shelved", "nguyen"),
                    ("alert unshelved", "nguyen"),
                    ("alert commented", "nguyen"),
                    ("alert normal", "gateway"),
                ]
                assert trail[0]["details"]["reading"]["value"] == 30.0
                assert trail[1]["details"]["comment"] == "door left open, closed"

                # Silence: no reading for 3 intervals (0.6 s) raises stale; readings clear it.
                stale = await wait_for(
                    lambda: [
                        a
                        for a in gateway.alerts.tracker.alerts.values()
                        if a.rule_id == "silent" and a.state == "active_unacknowledged"
                    ],
                    what="stale alert",
                )
                assert stale[0].subject == ROOM and stale[0].limit == pytest.approx(0.6)
                # The steps above may have been silent for 0.6 s already (a loaded machine): one
                # occurrence more from here on, not a count from the start.
                raised = stale[0].occurrences
                await feed(agent, 23.0, times=2)
                await wait_for(
                    lambda: stale[0].state == "returned_unacknowledged", what="stale cleared"
                )
                # Silent again; then an admin disables the rule: its alert clears, stays listed.
                await wait_for(lambda: stale[0].state == "active_unacknowledged", what="again")
                off = {
                    "rule": {
                        "id": "silent",
                        "kind": "stale",
                        "channels": ["lab-1/bench-9/*/*"],
                        "enabled": False,
                    },
                    "comment": "probe removed for calibration",
                }
                put = await http.put(
                    "/api/v1/alerts/rules/silent", json=off, headers=bearer("ALERTS_ADMIN_TOKEN")
                )
                assert put.status_code == 200, put.text
                assert stale[0].state == "returned_unacknowledged"
                assert stale[0].occurrences == raised + 1
                stats = (
                    await http.get("/api/v1/alerts/stats", headers=bearer("ALERTS_VIEW_TOKEN"))
                ).json()
                assert stats["readings_evaluated"] >= 8 and stats["flush_errors"] == 0
    finally:
        client.close()


async def test_rule_changes_survive_restarts_until_the_config_changes_them(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    extra = [{"id": "agents", "kind": "agent_offline"}]

    async def rules_of(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
        async with running_gateway(settings) as gateway:
            assert gateway.alerts is not None
            return {r["id"]: r for r in gateway.alerts.rules_view()}

    first = gateway_settings(tmp_path, mosquitto, alerts(extra_rules=extra))
    async with running_gateway(first) as gateway:
        assert gateway.alerts is not None
        changed = {
            "id": "room",
            "kind": "limits",
            "channels": [ROOM],
            "levels": [{"severity": "alarm", "high": 30.0}],
        }
        await gateway.alerts.put_rule("room", changed, "quality-manager", "trial")
    kept = await rules_of(first)
    assert kept["room"]["source"] == "api"
    assert kept["room"]["definition"]["levels"][0]["high"] == 30.0
    edited = await rules_of(gateway_settings(tmp_path, mosquitto, alerts(high=25.0)))
    assert edited["room"]["source"] == "config"
    assert edited["room"]["definition"]["levels"][0]["high"] == 25.0
    assert "agents" not in edited
    async with running_gateway(gateway_settings(tmp_path, mosquitto, alerts(25.0))) as gateway:
        assert gateway.alerts is not None
        history = await gateway.alerts.rule_history("room")
        removed = await gateway.alerts.rule_history("agents")
    assert [(h["action"], h["actor"]) for h in history] == [
        ("alert rule added", "config"),
        ("alert rule changed", "quality-manager"),
        ("alert rule changed", "config"),
    ]
    assert history[2]["details"]["before"]["levels"][0]["high"] == 30.0
    assert history[2]["details"]["after"]["levels"][0]["high"] == 25.0
    assert [h["action"] for h in removed] == ["alert rule added", "alert rule removed"]


async def test_the_command_line(
    tmp_path: Path,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_secrets(monkeypatch)
    client = RawClient(mosquitto.port, "fake-agent")
    agent = FakeAgent(client)
    token_file = tmp_path / "token"
    token_file.write_text(TOKENS["ALERTS_OPS_TOKEN"] + "\n")
    try:
        async with running_gateway(gateway_settings(tmp_path, mosquitto, alerts())) as gateway:
            url = gateway.api_url or ""
            await in_thread(agent.birth, {"temperature": ("°C", 5.0)})
            await feed(agent, 31.5, times=1)
            assert gateway.alerts is not None
            engine = gateway.alerts
            await wait_for(lambda: engine.list_alerts(), what="alert")
            alert_id = str(engine.list_alerts()[0]["id"])

            async def run(*args: str) -> tuple[int, str, str]:
                code = await in_thread(etalon, list(args))
                out, err = capsys.readouterr()
                return code, out, err

            base = ("alerts", "--url", url, "--token-file", str(token_file))
            code, out, _ = await run(*base, "list")
            assert code == 0
            assert f"{alert_id:<6} alarm     active_unacknowledged" in out
            assert "31.5 °C above the high limit 24 °C" in out
            code, out, _ = await run(
                *base, "shelve", alert_id, "--for", "30m", "--reason", "probe being replaced"
            )
            assert code == 0 and f"alert {alert_id} shelved until" in out
            code, out, _ = await run("--lang", "vi", *base, "show", alert_id)
            assert code == 0
            assert "Trạng thái:    đang kích hoạt, chưa xác nhận" in out
            assert "Tạm gác đến:" in out and "probe being replaced" in out
            # The audit log stores actions in English; people read them in their language.
            assert "nguyen           cảnh báo được tạm gác" in out
            assert "gateway          cảnh báo được kích hoạt" in out
            assert "alert shelved" not in out
            code, out, _ = await run(*base, "show", alert_id)
            assert code == 0 and "nguyen           alert shelved" in out
            code, out, _ = await run(*base, "rules")
            assert code == 0 and "room                     limits                 config  on" in out
            code, out, err = await run(*base, "ack", alert_id)
            assert (code, err.strip()) == (1, "etalon alerts: a comment is required (HTTP 422)")
            code, out, err = await run("--lang", "vi", *base, "ack", alert_id)
            assert (code, err.strip()) == (1, "etalon alerts: cần lời ghi chú (HTTP 422)")
            code, _, err = await run("alerts", "--url", url, "list")
            assert code == 1
            assert "refused the token: a token is required" in err
            assert "no token given: set ETALON_API_TOKEN or --token-file" in err
            monkeypatch.setenv("ETALON_API_TOKEN", "not-a-token-of-this-gateway")
            code, _, err = await run("alerts", "--url", url, "list")
            assert (code, err.strip()) == (
                1,
                "etalon alerts: the gateway refused the token: unknown token",
            )
            code, _, err = await run("--lang", "vi", "alerts", "--url", url, "list")
            assert (code, err.strip()) == (
                1,
                "etalon alerts: cổng từ chối token: token không hợp lệ",
            )
    finally:
        client.close()
    code, _, err = await run("alerts", "--url", f"http://127.0.0.1:{free_port()}", "list")
    assert code == 3
    assert "cannot reach the gateway at http://127.0.0.1:" in err
