"""The record-store commands (``etalon records``, ``standards``, ``instruments``) refuse a bad
config, and a request they cannot do, each problem on its own line after ``etalon COMMAND:``,
with exit status 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from tests.support.processes import write_yaml

COMMANDS = [("records", "key"), ("standards", "list"), ("instruments", "list")]


@pytest.mark.parametrize(("command", "word"), COMMANDS)
def test_a_bad_config_is_refused_line_by_line(
    command: str, word: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_yaml(
        tmp_path / "bad.yaml", {"site": "not a name!", "id": "", "records": {"path": "r.db"}}
    )
    assert main([command, "-c", str(bad), word]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith(f"etalon {command}: {bad}") for line in lines), lines
    assert any(": site: " in line for line in lines) and any(": id: " in line for line in lines)
    assert not (tmp_path / "r.db").exists()


def test_a_request_that_cannot_be_done_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_yaml(
        tmp_path / "gateway.yaml", {"site": "lab", "records": {"path": str(tmp_path / "r.db")}}
    )
    assert main(["standards", "-c", str(config), "show", "NOPE-1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("etalon standards: ") and "NOPE-1" in err
