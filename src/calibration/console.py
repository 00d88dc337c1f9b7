"""What the ``etalon calibrate`` commands share: where the bench keeps its runs, the exit
statuses of a run, problems printed to stderr (:mod:`calibration.cli`).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from core.exits import signal_status

EXIT_ABORTED = 6
"""A run aborted (an instrument refused or stopped answering, the UUT was swapped)."""
EXIT_SIGNAL = {sig: signal_status(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
"""A run interrupted by SIGINT (130) or SIGTERM (143): sources safe, resumable."""


def default_data_dir() -> Path:
    """Where the bench keeps its runs (see the module doc)."""
    given = os.environ.get("ETALON_CALIBRATION_DIR")
    if given:
        return Path(given)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "etalon" / "calibration"


def print_problems(title: str, problems: list[str]) -> None:
    print(title, file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
