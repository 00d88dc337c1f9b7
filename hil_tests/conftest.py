"""Fixtures of the hardware-in-the-loop scenarios (see harness.py and docs/hil.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from hil_tests import harness


def pytest_report_header() -> str:
    """Say which bench the run qualifies."""
    path, real = harness.bench_path()
    kind = "REAL instruments" if real else "simulators (set ETALON_BENCH for hardware)"
    return f"etalon bench: {path} -> {kind}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each protocol module's scenarios once per bench instrument of its protocol."""
    if "bench_instrument" not in metafunc.fixturenames:
        return
    protocol = getattr(metafunc.module, "PROTOCOL")  # noqa: B009 - every scenario module sets it
    entries = harness.entries_for(protocol)
    if not entries:
        reason = f"no {protocol} instrument on the bench"
        metafunc.parametrize(
            "bench_instrument", [pytest.param(None, marks=pytest.mark.skip(reason))]
        )
        return
    metafunc.parametrize(
        "bench_instrument", entries, ids=[entry.instrument.name for entry in entries]
    )


@pytest.fixture
async def target(bench_instrument: harness.BenchInstrument) -> AsyncIterator[harness.Target]:
    """The instrument (or its simulator) for one scenario."""
    async with harness.open_target(bench_instrument) as opened:
        yield opened


@pytest.fixture
async def driver(target: harness.Target) -> AsyncIterator[Any]:
    """A connected driver for the target."""
    async with harness.connected(target.config) as connected:
        yield connected
