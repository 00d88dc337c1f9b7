"""The hil_tests harness on a "real" bench: ETALON_BENCH names instruments, here simulators on
loopback reached exactly as hardware would be, so the bench path of the harness is exercised."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import yaml

from drivers.sim.modbus_server import ModbusSimServer, load_register_map

ROOT = Path(__file__).resolve().parents[3]


def bench_file(tmp_path: Path, port: int, supply_min: float) -> Path:
    bench = {
        "bench": "loopback",
        "instruments": [
            {
                "instrument": {
                    "name": "chiller-1",
                    "protocol": "modbus",
                    "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port},
                    "device_id": 2,
                    "order": "CDAB",
                    "channels": [
                        {"name": "supply", "address": 0, "type": "float32", "unit": "°C"},
                        {"name": "remote", "address": 20, "type": "bit", "bit": 3, "unit": "1"},
                    ],
                },
                "expect": {"supply": {"min": supply_min, "max": 30}, "remote": {"equals": True}},
                "probes": {"illegal": {"table": "holding", "address": 44}},
            }
        ],
    }
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(bench, allow_unicode=True), encoding="utf-8")
    return path


async def run_hil(bench: Path) -> tuple[int, str]:
    env = {**os.environ, "ETALON_BENCH": str(bench), "PYTHONPATH": str(ROOT / "src")}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "hil_tests/test_modbus.py",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await child.communicate()
    assert child.returncode is not None
    return child.returncode, output.decode()


async def test_bench_file_drives_the_scenarios(tmp_path: Path) -> None:
    async with ModbusSimServer(load_register_map("lab-bus")) as server:
        code, output = await run_hil(bench_file(tmp_path, server.port, supply_min=5))
        assert code == 0, output
        assert "7 passed" in output  # the illegal-address probe ran too
        served = server.requests_received
        assert served > 20

        code, output = await run_hil(bench_file(tmp_path, server.port, supply_min=25))
        assert code == 1, output
        assert "below 25" in output
