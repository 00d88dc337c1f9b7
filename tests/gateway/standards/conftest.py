"""A gateway config and a registry seeded with tests/gateway/standards/cases/base.yaml."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import main
from tests.support.processes import write_yaml

CASES = Path(__file__).parent / "cases"


@pytest.fixture
def gateway_config(tmp_path: Path) -> Path:
    """A gateway config whose record store is this test's own."""
    return write_yaml(
        tmp_path / "gateway.yaml",
        {
            "site": "lab-1",
            "spool": {"path": str(tmp_path / "spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {"path": str(tmp_path / "records.db")},
            # Secrets the registry commands never need: they must not ask for them.
            "api": {"tokens": [{"name": "x", "role": "admin", "token": {"env": "UNSET_TOKEN"}}]},
        },
    )


@pytest.fixture
def standards(gateway_config: Path) -> Callable[..., int]:
    """``etalon standards ARGS -c CONFIG`` in this process; returns the exit status."""

    def run(*args: str) -> int:
        return main(["standards", *args, "-c", str(gateway_config)])

    return run


@pytest.fixture
def seeded(standards: Callable[..., int], capsys: pytest.CaptureFixture[str]) -> Callable[..., int]:
    """The registry with base.yaml imported."""
    assert standards("import", str(CASES / "base.yaml")) == 0
    capsys.readouterr()
    return standards


def snapshot(tmp_path: Path) -> dict[str, object]:
    """Everything an import could change: every table's rows, the certificate files."""
    db = sqlite3.connect(tmp_path / "records.db")
    try:
        tables = [
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        state: dict[str, object] = {
            table: sorted(map(repr, db.execute(f'SELECT * FROM "{table}"'))) for table in tables
        }
    finally:
        db.close()
    directory = tmp_path / "certificates"
    state["files"] = sorted(
        (p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in directory.glob("*")
    )
    return state
