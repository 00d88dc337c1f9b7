"""``etalon agent`` on uvloop when it is installed (the ``fast`` extra), on the standard loop with
``ETALON_EVENT_LOOP=asyncio``: either way a Modbus device is read and its readings reach the
broker, and a stop is clean. An unknown value is said in the log, and the default is used."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from drivers.sim.modbus_server import MapDevice, MapPoint, ModbusSimServer, RegisterMap
from tests.support.processes import EtalonProcess, write_yaml
from tests.support.services import Mosquitto

pytest.importorskip("uvloop")

REGISTERS = RegisterMap(
    devices=[
        MapDevice(
            device_id=1,
            points=[
                MapPoint(name=f"ch{c}", address=2 * c, type="float32", value=c + 0.5)
                for c in range(4)
            ],
        )
    ]
)


def agent_config(tmp_path: Path, broker: Mosquitto, port: int) -> Path:
    return write_yaml(
        tmp_path / "agent.yaml",
        {
            "site": "lab",
            "id": "loop",
            "mqtt": {"port": broker.port},
            "spool": {"path": str(tmp_path / "spool.db")},
            "instruments": [
                {
                    "name": "meter",
                    "protocol": "modbus",
                    "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port},
                    "device_id": 1,
                    "channels": [
                        {
                            "name": f"ch{c}",
                            "table": "holding",
                            "address": 2 * c,
                            "type": "float32",
                            "unit": "V",
                            "interval_s": 0.1,
                        }
                        for c in range(4)
                    ],
                }
            ],
        },
    )


async def run_agent(tmp_path: Path, broker: Mosquitto, env: dict[str, str]) -> EtalonProcess:
    """The agent for about a second on a simulated device, stopped cleanly."""
    async with ModbusSimServer(REGISTERS) as server:
        agent = EtalonProcess(
            "agent", agent_config(tmp_path, broker, server.port), tmp_path / "agent.log", env
        )
        agent.start()
        try:
            await asyncio.to_thread(agent.wait_log, "agent started", 60)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:  # noqa: ASYNC110 - the simulator runs on this loop
                await asyncio.sleep(0.05)
            assert await asyncio.to_thread(agent.stop) == 0
        finally:
            agent.ensure_stopped()
    return agent


@pytest.mark.parametrize(
    ("choice", "loop"), [(None, "uvloop"), ("asyncio", "asyncio"), ("uvloop", "uvloop")]
)
async def test_the_agent_runs_on_the_loop_asked_for(
    tmp_path: Path, mosquitto: Mosquitto, choice: str | None, loop: str
) -> None:
    env = {} if choice is None else {"ETALON_EVENT_LOOP": choice}
    agent = await run_agent(tmp_path, mosquitto, env)
    assert f"event_loop={loop}" in agent.log()
    metrics = agent.final_metrics()
    assert metrics["readings_read"] >= 20 and metrics["readings_bad"] == 0
    assert metrics["acknowledged"] == metrics["readings_read"]
    assert metrics["spool_depth"] == 0


async def test_an_unknown_loop_is_said_and_the_default_used(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    agent = await run_agent(tmp_path, mosquitto, {"ETALON_EVENT_LOOP": "tokio\nfake"})
    log = agent.log()
    assert "unknown event loop asked for, using the default" in log
    assert "variable=ETALON_EVENT_LOOP" in log and "known=" in log
    assert "event_loop=uvloop" in log
    assert agent.final_metrics()["readings_read"] >= 20
