"""A gateway starts without the heavy libraries only some of its features use: scipy (the
analytics worker, polynomial corrections, uncertainty quantiles), xmlschema and signxml (reading
or writing a DCC). Each cost seconds of CPU at every start (more on a Raspberry-Pi-class box),
and the suite's processes wait 20 s for "gateway started"."""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import child_env

HEAVY = ("scipy", "xmlschema", "signxml", "elementpath")


def test_the_gateway_service_imports_no_heavy_library() -> None:
    child = (
        "import sys, gateway.service, app.cli; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
