"""Fixtures of the OPC UA tests: one simulated server per session (asyncua's init takes ~1.5 s),
its certificates, and drivers that are closed after each test.

Tests that use the session server run in the session's event loop
(``pytestmark = pytest.mark.asyncio(loop_scope="session")``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.clock import SystemClock
from drivers.opcua.certs import (
    CertificatePair,
    ensure_own_certificate,
    make_certificate,
    write_pair,
)
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver
from drivers.sim.opcua_server import OpcUaSimConfig, OpcUaSimulator

CLIENT_URI = "urn:etalon:agent:test-bench"
PASSWORD_ENV = "ETALON_TEST_OPCUA_PASSWORD"


@dataclass(frozen=True)
class Pki:
    """The certificates of the test session."""

    root: Path
    ca: Path
    """A CA that issued the server's certificate."""
    server: CertificatePair
    impostor: CertificatePair
    """Another server's certificate: trusting it must not let us talk to ours."""
    client_dir: Path
    """Our agent's certificate directory; the server trusts the certificate in it."""
    stranger_dir: Path
    """A client certificate directory the server does not trust."""


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, the server's certificate (issued by the CA), an impostor's, our agent's."""
    root = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = make_certificate("etalon test CA", "urn:etalon:test:ca", [], is_ca=True)
    ca = write_pair(root / "ca", ca_cert, ca_key).certificate
    server_cert, server_key = make_certificate(
        "etalon simulated lab",
        "urn:etalon:sim:server",
        ["127.0.0.1", "localhost"],
        issuer=(ca_cert, ca_key),
    )
    server = write_pair(root / "server", server_cert, server_key)
    impostor_cert, impostor_key = make_certificate(
        "etalon simulated lab", "urn:etalon:sim:server", ["127.0.0.1"]
    )
    impostor = write_pair(root / "impostor", impostor_cert, impostor_key)
    client_dir = root / "agent"
    ensure_own_certificate(client_dir, CLIENT_URI, ["localhost"])
    return Pki(root, ca, server, impostor, client_dir, root / "stranger")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ua_server(pki: Pki) -> AsyncIterator[OpcUaSimulator]:
    """The session's simulated server: every security mode, a trusted client, a user."""
    config = OpcUaSimConfig(
        security=["None", "Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt"],
        certificate=pki.server.certificate,
        private_key=pki.server.private_key,
        trusted_clients=[pki.client_dir / "cert.der"],
        users={"operator": "s3cret"},
        bulk_items=50,
        bulk_update_interval_s=0.2,
    )
    simulator = OpcUaSimulator(config, SystemClock())
    await simulator.start()
    yield simulator
    await simulator.stop()


def ua_config(endpoint: str, channels: list[dict[str, Any]], **overrides: Any) -> OpcUaInstrument:
    """An OPC UA instrument config against an endpoint."""
    data: dict[str, Any] = {
        "name": "chamber",
        "protocol": "opcua",
        "endpoint": endpoint,
        "namespace": "urn:etalon:sim",
        "timeout_s": 2.0,
        "channels": channels,
    }
    data.update(overrides)
    return OpcUaInstrument.model_validate(data)


def secure(pki: Pki, mode: str, **overrides: Any) -> dict[str, Any]:
    """A security section that trusts the server's CA and uses our agent's certificate."""
    section: dict[str, Any] = {
        "mode": mode,
        "certificate_dir": str(pki.client_dir),
        "application_uri": CLIENT_URI,
        "trusted_server_certificates": [str(pki.ca)],
    }
    section.update(overrides)
    return section


@pytest.fixture(name="ua_config")
def _ua_config() -> Callable[..., OpcUaInstrument]:
    """The :func:`ua_config` builder."""
    return ua_config


@pytest.fixture(name="secure")
def _secure(pki: Pki) -> Callable[..., dict[str, Any]]:
    """The :func:`secure` builder, bound to the session's certificates."""
    return lambda mode, **overrides: secure(pki, mode, **overrides)


@pytest_asyncio.fixture(loop_scope="session")
async def ua_drivers() -> AsyncIterator[Callable[[OpcUaInstrument], OpcUaDriver]]:
    """Build OPC UA drivers that are closed at the end of the test."""
    built: list[OpcUaDriver] = []

    def build(config: OpcUaInstrument) -> OpcUaDriver:
        driver = OpcUaDriver(config, SystemClock())
        built.append(driver)
        return driver

    yield build
    for driver in built:
        await driver.close()


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Set the password variable; returns its name, for the config."""

    def set_password(value: str) -> str:
        monkeypatch.setenv(PASSWORD_ENV, value)
        return PASSWORD_ENV

    return set_password


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves a task of its own running (the session server's are older)."""
    before = set(asyncio.all_tasks())
    yield
    for _ in range(20):  # tasks cancelled at close need a loop turn or two to finish
        await asyncio.sleep(0.01)
        current = asyncio.current_task()
        leftover = [
            t for t in asyncio.all_tasks() if t is not current and t not in before and not t.done()
        ]
        if not leftover:
            return
    raise AssertionError(f"tasks left running: {leftover}")
