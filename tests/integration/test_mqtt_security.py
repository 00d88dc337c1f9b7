"""MQTT credentials and TLS against a real Mosquitto: a wrong password is a clear error and an
exit status; TLS with a test CA carries the chain; a certificate from another CA is refused."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.support.certs import make_ca_and_server
from tests.support.chain import Chain, stored_in_victoria, wait_for_count
from tests.support.processes import child_env, etalon_command, write_yaml
from tests.support.services import Mosquitto, VictoriaMetrics, mosquitto_password_file

EXIT_TRANSPORT = 3


def agent_yaml(tmp: Path, mqtt: dict[str, object]) -> Path:
    return write_yaml(
        tmp / "agent.yaml",
        {
            "site": "lab-1",
            "id": "bench-1",
            "mqtt": mqtt,
            "spool": {"path": str(tmp / "s.db")},
            "instruments": [
                {
                    "name": "z",
                    "protocol": "sim",
                    "model": {"kind": "zener"},
                    "channels": [{"name": "v", "quantity": "voltage", "unit": "V"}],
                }
            ],
        },
    )


def run_agent(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        etalon_command("agent", "-c", str(config)),
        capture_output=True,
        text=True,
        env=child_env(env),
        timeout=60,
    )


def test_wrong_mqtt_password_is_a_clear_error(tmp_path: Path) -> None:
    passwords = mosquitto_password_file(tmp_path / "passwd", "etalon", "right-password")
    broker = Mosquitto(tmp_path / "mq", password_file=passwords)
    broker.start()
    try:
        mqtt = {"port": broker.port, "username": "etalon", "password": {"env": "MQTT_PW"}}
        result = run_agent(agent_yaml(tmp_path, mqtt), {"MQTT_PW": "wrong-password"})
        assert result.returncode == EXIT_TRANSPORT, result.stderr
        assert "connection refused" in result.stderr
        assert "Bad user name or password" in result.stderr or "Not authorized" in result.stderr
        assert "wrong-password" not in result.stderr  # secrets never in messages
        # The right password is accepted (the agent starts and stays up until stopped).
        config = agent_yaml(tmp_path, mqtt)
        with open(tmp_path / "agent.log", "wb") as log:
            agent = subprocess.Popen(
                etalon_command("agent", "-c", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env({"MQTT_PW": "right-password"}),
            )
            time.sleep(3)
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            agent.terminate()
            assert agent.wait(20) == 0
    finally:
        broker.stop()


def test_missing_password_variable_is_a_config_error(tmp_path: Path) -> None:
    mqtt = {"port": 1883, "username": "etalon", "password": {"env": "ETALON_NOT_SET_ANYWHERE"}}
    result = run_agent(agent_yaml(tmp_path, mqtt), {})
    assert result.returncode == 1
    assert "mqtt: environment variable ETALON_NOT_SET_ANYWHERE is not set" in result.stderr


def test_tls_with_a_test_ca_carries_the_chain(tmp_path: Path, victoria: VictoriaMetrics) -> None:
    ca, cert, key = make_ca_and_server(tmp_path / "pki")
    broker = Mosquitto(tmp_path / "mq", tls=(ca, cert, key))
    broker.start()
    tls = {"tls": {"ca_file": str(ca)}}
    chain = Chain(
        tmp_path,
        broker,
        {"kind": "influxdb_v2", "url": victoria.url, "bucket": "b", "org": "o"},
        agent_extra={},
        gateway_extra={},
    )
    for path in (chain.agent_config, chain.gateway_config):
        import yaml

        data = yaml.safe_load(path.read_text())
        data["mqtt"].update(tls)
        write_yaml(path, data)
    try:
        chain.start()
        time.sleep(3)
        read = chain.stop_agent()["readings_read"]
        stored = wait_for_count(lambda: stored_in_victoria(victoria), read)
        assert chain.gateway.stop() == 0
        assert stored.distinct == read > 10
        # A CA that did not sign the broker's certificate is refused, clearly.
        other_ca, _, _ = make_ca_and_server(tmp_path / "other-pki", "another CA")
        bad = agent_yaml(tmp_path / "bad", {"port": broker.port, "tls": {"ca_file": str(other_ca)}})
        result = run_agent(bad, {})
        assert result.returncode == EXIT_TRANSPORT, result.stderr
        assert "TLS failed" in result.stderr and "certificate verify failed" in result.stderr
    finally:
        chain.close()
        broker.stop()
