"""``etalon sim bench`` as a user (or a runner's test) starts it: addresses printed and written,
every instrument answering, Ctrl-C stopping it; a bad description or flag refused with the file,
the field and the reason; the example bench description and agent config in config/."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from app.cli import build_parser
from core.config_loader import load_config
from core.errors import ConfigError
from drivers.sim.bench import (
    BenchConfig,
    BenchSimulator,
    config_from_arguments,
    load_bench_config,
)
from drivers.sim.catalog import load_all
from edge_agent.config import AgentConfig
from tests.support.processes import REPO, child_env, etalon_command


def ask(port: int, message: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(message.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = connection.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.decode().strip()


def test_the_bench_starts_prints_its_addresses_and_stops_on_sigint(tmp_path: Path) -> None:
    addresses_file = tmp_path / "bench.json"
    process = subprocess.Popen(
        etalon_command(
            "sim",
            "bench",
            "--port-base",
            "0",
            "--addresses",
            str(addresses_file),
            "--uut-gain-ppm",
            "250",
            "--tau",
            "0.05",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not addresses_file.exists() or not addresses_file.read_text().endswith("}\n"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no addresses within 60 s"
            time.sleep(0.1)
        addresses: dict[str, Any] = json.loads(addresses_file.read_text())
        assert ask(addresses["calibrator"]["port"], "*IDN?").startswith("ETALON-SIM,MFC5500-SIM")
        assert ask(addresses["uut-dmm"]["port"], "*IDN?").split(",")[2] == "MY12345"
        state = json.loads(ask(addresses["control"]["port"], "SIM:STATE?"))
        assert state["calibrator"]["output"] is False
        assert addresses["uut-xmtr"]["protocol"] == "modbus"
        with socket.create_connection(("127.0.0.1", addresses["uut-xmtr"]["port"]), timeout=5):
            pass
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"calibrator (calibrator): {addresses['calibrator']['resource']}" in out
    assert f"uut-xmtr (uut): modbus tcp 127.0.0.1:{addresses['uut-xmtr']['port']} device 1" in out


@pytest.mark.parametrize(
    ("args", "file_text", "expected"),
    [
        ([], "dmms: [{name: x}]\n", "{file}: dmms.0.serial: Field required"),
        (
            [],
            "calibrator: {physics: {tau_s: -1}}\n",
            "{file}: calibrator.physics.tau_s: Input should be greater than 0",
        ),
        ([], "calibrator: {name: control}\n", "is used twice (or is 'control')"),
        ([], "seed: [1\n", "{file}: not valid YAML or JSON"),
        ([], "[1, 2]\n", "{file}: (top level): Input should be a valid dictionary"),
        ([], "dmms: [{name: x, serial: 'a,b'}]\n", "dmms.0.serial: String should match"),
        ([], "dmms: [{name: x, serial: s, errors: {VOLT:XX: {}}}]\n", "dmms.0.errors.VOLT:XX"),
        (["--uut-gain-ppm", "nan"], None, "--uut-gain-ppm: nan is not a finite number"),
        (["--port-base", "70000"], None, "--port-base 70000: must be 0 or a port"),
        (["--tau", "0"], None, "command line: calibrator.physics.tau_s"),
        (["--host", ""], None, "command line: host"),
    ],
)
def test_a_bad_description_or_flag_is_refused_with_its_reason(
    tmp_path: Path, args: list[str], file_text: str | None, expected: str
) -> None:
    words = ["sim", "bench", *args]
    bench_file = tmp_path / "bench.yaml"
    if file_text is not None:
        bench_file.write_text(file_text)
        words += ["--config", str(bench_file)]
    parsed = build_parser("sim").parse_args(words)
    with pytest.raises(ConfigError) as refused:
        config_from_arguments(parsed)
    assert expected.format(file=bench_file) in str(refused.value)


def test_the_command_exits_1_with_the_problem_and_no_traceback(tmp_path: Path) -> None:
    bench_file = tmp_path / "bench.yaml"
    bench_file.write_text("dmms: [{name: x}]\n")
    result = subprocess.run(
        etalon_command("sim", "bench", "--config", str(bench_file)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == f"etalon sim bench: {bench_file}: dmms.0.serial: Field required\n"


async def test_a_port_in_use_is_refused_by_name_and_nothing_stays_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = BenchConfig.model_validate({"dmms": [{"name": "d", "serial": "s", "port": port}]})
        bench = BenchSimulator(config)
        with pytest.raises(ConfigError, match=f"d: cannot listen on 127.0.0.1:{port}"):
            await bench.start()
    assert bench.calibrator_sim._server is None  # the one started before it was stopped


def test_the_bench_is_in_the_simulator_catalogue() -> None:
    assert "bench" in load_all()


def test_the_example_bench_description_and_agent_config_fit_together() -> None:
    description = load_bench_config(REPO / "config" / "bench" / "simulated-bench.yaml")
    assert description.model_dump() != BenchConfig().model_dump()  # it says something
    agent = load_config(REPO / "config" / "agent-bench.yaml", AgentConfig)
    ports = {
        description.calibrator.port,
        *(d.port for d in description.dmms),
        *(t.port for t in description.transmitters),
    }
    used = set()
    for instrument in agent.instruments:
        if instrument.protocol == "visa":
            used.add(int(instrument.resource.split("::")[2]))
        elif instrument.protocol == "modbus":
            used.add(instrument.transport.port)  # type: ignore[union-attr]
    assert used == ports
    calibrator = next(i for i in agent.instruments if i.name == "calibrator")
    targets = calibrator.write_targets()  # type: ignore[union-attr]
    assert targets["voltage_dc"].max == 20


async def test_the_default_bench_agent_configs_validate_and_match_its_addresses() -> None:
    async with BenchSimulator() as bench:
        addresses = bench.addresses()
        config = AgentConfig.model_validate(
            {
                "site": "lab",
                "id": "bench",
                "spool": {"path": "/tmp/never-opened.db"},
                "instruments": bench.agent_instruments(),
            }
        )
    for instrument in config.instruments:
        where = addresses[instrument.name]
        if instrument.protocol == "visa":
            assert instrument.resource == where["resource"]  # type: ignore[union-attr]
        else:
            assert instrument.transport.port == where["port"]  # type: ignore[union-attr]
