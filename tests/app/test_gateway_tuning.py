"""The interpreter's settings a gateway process runs with (``tune_for_gateway``)."""

from __future__ import annotations

import gc
import sys

from app.run_commands import GATEWAY_SWITCH_INTERVAL_S, tune_for_gateway


def test_a_gateway_collects_rarely_and_hands_the_gil_over_within_a_millisecond() -> None:
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        tune_for_gateway()
        assert gc.get_threshold() == (10_000, 10, 10)
        assert sys.getswitchinterval() == GATEWAY_SWITCH_INTERVAL_S == 0.001
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)
