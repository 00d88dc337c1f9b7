"""`etalon demo` as a user runs it: the whole chain in one process, an exact count at the end."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.processes import child_env, etalon_command


def test_demo_runs_and_proves_every_reading_arrived_once(tmp_path: Path) -> None:
    result = subprocess.run(
        etalon_command("demo", "--duration", "4", "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        env=child_env({"ETALON_LANG": "en"}),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "etalon demo — site demo-lab" in out
    assert "every reading arrived exactly once" in out
    for channel in ("zener-10v", "resistor-10k", "room-a", "humidity", "%rh", "Ω"):
        assert channel in out
    assert (tmp_path / "readings.db").exists() and (tmp_path / "records.db").exists()
    assert "Traceback" not in result.stderr


def test_demo_speaks_vietnamese(tmp_path: Path) -> None:
    result = subprocess.run(
        etalon_command("--lang", "vi", "demo", "--duration", "3", "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mọi giá trị đã đến đúng một lần" in result.stdout
    assert "thiết bị" in result.stdout
