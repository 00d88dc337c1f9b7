"""Lost communication: an instrument made unavailable by its simulator's fault hook, then the
agent killed with SIGKILL (its MQTT will, sent by the broker after keepalive × 1.5), while
stale-data rules stay quiet because the agent's alert already says why its channels are silent.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.alerts.lifecycle import ACTIVE, RETURNED
from tests.gateway.alerts.harness import (
    agent_process,
    agent_settings,
    gateway_settings,
    in_thread,
    set_secrets,
    wait_for,
)
from tests.support.gateway import running_gateway
from tests.support.services import Mosquitto

KEEPALIVE_S = 5


def instruments(control: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": "dmm",
            "protocol": "sim",
            "model": {"kind": "zener"},
            "faults": {"control_file": str(control)},
            "reconnect": {"initial_s": 0.2, "max_s": 0.5},
            "channels": [
                {"name": "voltage", "quantity": "voltage", "unit": "V", "interval_s": 0.2}
            ],
        },
        {
            "name": "room-a",
            "protocol": "sim",
            "model": {"kind": "room"},
            "channels": [
                {"name": "temperature", "quantity": "temperature", "unit": "°C", "interval_s": 0.2}
            ],
        },
    ]


ALERTS = {
    "rules": [
        {"id": "agents", "kind": "agent_offline"},
        {"id": "instruments", "kind": "instrument_unavailable", "instruments": ["lab-1/*/*"]},
        {"id": "silent", "kind": "stale", "channels": ["lab-1/bench-1/*/*"], "intervals": 5},
    ]
}


async def test_instrument_unavailable_then_agent_killed_raises_offline_within_keepalive(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    control = tmp_path / "dmm-faults.json"
    control.write_text("{}")
    settings = agent_settings(tmp_path, mosquitto, instruments(control), keepalive_s=KEEPALIVE_S)
    async with running_gateway(gateway_settings(tmp_path, mosquitto, ALERTS)) as gateway:
        assert gateway.alerts is not None
        tracker = gateway.alerts.tracker

        def alert(rule: str, subject: str) -> Any:
            return next(
                (a for a in tracker.alerts.values() if a.rule_id == rule and a.subject == subject),
                None,
            )

        def in_state(rule: str, subject: str, state: str) -> Any:
            found = alert(rule, subject)
            return found if found is not None and found.state == state else None

        async with agent_process(tmp_path, settings) as agent:
            await wait_for(
                lambda: gateway.alerts and gateway.alerts.stats.readings_evaluated > 10,
                what="readings",
            )
            control.write_text(json.dumps({"disconnected": True}))
            unavailable = await wait_for(
                lambda: in_state("instruments", "lab-1/bench-1/dmm", ACTIVE), what="unavailable"
            )
            assert "simulated" in (unavailable.detail["reason"] or "")
            control.write_text(json.dumps({"disconnected": False}))
            await wait_for(
                lambda: in_state("instruments", "lab-1/bench-1/dmm", RETURNED),
                what="instrument back",
            )
            await asyncio.sleep(0.5)
            await in_thread(agent.kill9)
            killed = time.monotonic()
            await wait_for(
                lambda: in_state("agents", "lab-1/bench-1", ACTIVE),
                timeout_s=KEEPALIVE_S * 1.5 + 5,
                what="agent offline",
            )
            elapsed = time.monotonic() - killed
            offline = alert("agents", "lab-1/bench-1")
            await asyncio.sleep(1.5)  # five intervals of silence and more: stale stays quiet

    assert elapsed <= KEEPALIVE_S * 1.5 + 1.0, elapsed
    assert offline.detail == {"state": "offline", "reason": "connection lost"}
    assert [a.subject for a in tracker.alerts.values() if a.rule_id == "silent"] == []


@pytest.mark.slow
async def test_a_frozen_agent_is_declared_offline_by_its_keepalive(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGSTOP: the host hangs with its TCP connection open; only the keepalive notices."""
    import os
    import signal

    set_secrets(monkeypatch)
    control = tmp_path / "dmm-faults.json"
    control.write_text("{}")
    settings = agent_settings(tmp_path, mosquitto, instruments(control), keepalive_s=KEEPALIVE_S)
    async with running_gateway(gateway_settings(tmp_path, mosquitto, ALERTS)) as gateway:
        assert gateway.alerts is not None
        tracker = gateway.alerts.tracker
        async with agent_process(tmp_path, settings) as agent:
            await wait_for(
                lambda: gateway.alerts and gateway.alerts.stats.readings_evaluated > 10,
                what="readings",
            )
            assert agent.process is not None
            os.killpg(agent.process.pid, signal.SIGSTOP)
            frozen = time.monotonic()
            try:
                await wait_for(
                    lambda: any(
                        a.rule_id == "agents" and a.state == ACTIVE for a in tracker.alerts.values()
                    ),
                    timeout_s=KEEPALIVE_S * 1.5 + 5,
                    what="agent offline",
                )
                elapsed = time.monotonic() - frozen
            finally:
                os.killpg(agent.process.pid, signal.SIGCONT)
    # Mosquitto checks keepalives about once a second: up to a second more than 1.5 × keepalive.
    assert KEEPALIVE_S <= elapsed <= KEEPALIVE_S * 1.5 + 2.0, elapsed
