"""The DCC size limit lives in one light module that every side shares."""

from __future__ import annotations

import subprocess
import sys

from calibration import reference
from metrology import dcc, limits
from metrology.dcc import safexml
from tests.support.processes import child_env

HEAVY = ("xmlschema", "signxml", "elementpath", "lxml")


def test_one_limit_serves_the_parser_and_the_bench() -> None:
    assert limits.MAX_DCC_BYTES == 32 * 1024 * 1024
    assert dcc.MAX_DCC_BYTES is limits.MAX_DCC_BYTES
    assert safexml.MAX_DCC_BYTES is limits.MAX_DCC_BYTES
    assert reference.MAX_DCC_BYTES is limits.MAX_DCC_BYTES


def test_the_limit_loads_no_xml_library() -> None:
    child = f"import sys, metrology.limits; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
