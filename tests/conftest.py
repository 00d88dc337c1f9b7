"""Fixtures shared by the suite: real servers, and guards against leaked threads and tasks."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from core import i18n
from tests.support.order import longest_first
from tests.support.postgres import PASSWORD_ENV as PG_PASSWORD_ENV
from tests.support.postgres import PostgresServer
from tests.support.services import Influxd, Mosquitto, VictoriaMetrics

# Hypothesis fails an example that takes over 200 ms by default: a timed assertion, which on a
# loaded 2-core machine fails at random (tests/ledger/test_canonical.py did once). Speed is for
# benchmarks/; the suite checks what is computed.
settings.register_profile("etalon", deadline=None)
settings.load_profile("etalon")


@pytest.hookimpl(trylast=True)  # after pytest's own grouping by fixture, which it keeps
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (see tests/support/order.py): the workers end together."""
    longest_first(items)


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    """Each test starts in the default language. ``etalon --lang vi ...`` run in-process chooses
    the language of the whole process (``core.i18n.choose_language``, argparse's texts through
    ``app.parser_texts.use_language``), as a command line should; a later test on the same
    worker that calls a command's own ``main`` (``drift_main``) would speak Vietnamese."""
    texts, plural = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    yield
    i18n.choose_language(None)
    argparse._, argparse.ngettext = texts, plural  # type: ignore[attr-defined]


# -- leak guards (pymodbus / ophyd-async habit: a test must leave nothing running) ----------------


@pytest.fixture(autouse=True)
def _no_leaked_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    before = set(threading.enumerate())
    if inspect.iscoroutinefunction(getattr(request.node, "function", None)):
        request.getfixturevalue("_no_leaked_tasks")
    yield
    deadline = time.monotonic() + 3
    while True:
        # asyncio_N are the default-executor threads of the test's own event loop: the loop's
        # runner shuts them down when it closes the loop, which happens after this guard.
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith("asyncio_")
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"


@pytest.fixture
async def _no_leaked_tasks() -> AsyncIterator[None]:
    yield
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for _ in range(20):  # tasks being cancelled need a few loop turns to finish
        if not pending:
            break
        await asyncio.sleep(0.01)
        pending = [t for t in pending if not t.done()]
    assert not pending, f"test left tasks running: {[t.get_name() for t in pending]}"


# -- real servers ------------------------------------------------------------------------------


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto broker of this test's own."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """VictoriaMetrics keeping every duplicate: a strict detector of double writes."""
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def victoria_dedup(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """VictoriaMetrics with InfluxDB's semantics (one point per series and timestamp)."""
    server = VictoriaMetrics(tmp_path / "vm-dedup", dedup=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """One influxd 1.x for the session (tests use their own databases)."""
    server = Influxd(tmp_path_factory.mktemp("influxd"))
    server.start(timeout_s=40)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL for the session (tests use their own databases: ``hub_database``)."""
    server = PostgresServer()
    server.start()
    os.environ[PG_PASSWORD_ENV] = server.password
    yield server
    os.environ.pop(PG_PASSWORD_ENV, None)
    server.stop()


@pytest.fixture
def hub_database(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database of this test's own on the session's PostgreSQL."""
    name = postgres.create_database()
    yield name
    postgres.drop_database(name)
