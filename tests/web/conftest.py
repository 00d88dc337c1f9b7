"""One lab for the whole package: a real Mosquitto, a real influxd, a gateway serving its API and
dashboard, and an agent reading simulated instruments (tests/support/lab.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.lab import ROLE_TOKENS, Lab
from tests.support.services import Influxd, Mosquitto


@pytest.fixture(scope="package")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker for the package's lab."""
    server = Mosquitto(tmp_path_factory.mktemp("web-mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def lab_database() -> str:
    """The influxd database the lab's gateway writes to."""
    return f"web_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="package")
def lab(
    tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto, influxd: Influxd, lab_database: str
) -> Iterator[Lab]:
    """The running lab (started once for the package)."""
    store = {
        "kind": "influxdb_v1",
        "url": influxd.url,
        "database": lab_database,
        "create_database": True,
    }
    running = Lab(tmp_path_factory.mktemp("web-lab"), broker.port, store)
    running.start()
    yield running
    running.stop()


def bearer(role: str) -> dict[str, str]:
    """The Authorization header of a role's token."""
    return {"Authorization": f"Bearer {ROLE_TOKENS[role]}"}
