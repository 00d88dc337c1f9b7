"""The order files run in: the longest first, so that the pytest-xdist workers end together.

``scripts/check`` runs the suite with ``--dist loadfile --no-loadscope-reorder``: each file goes
whole to the next free worker, in collection order. pytest-xdist's own order (most tests first)
left the files of a few slow tests (the demo, the wheel, the browser) to the end, one worker
busy for minutes while the other had nothing left. The list is measured (``--durations``, summed
per file, on the 2-core reference machine); a file missing from it only runs later, it is never
skipped.
"""

from __future__ import annotations

import pytest

LONGEST_FIRST = (
    "tests/gateway/web/test_openapi_fuzz.py",
    "tests/app/test_demo.py",
    "tests/packaging/test_wheel.py",
    "tests/edge_agent/test_wire_fast.py",
    "tests/integration/test_chain_failures.py",
    "tests/gateway/records/test_tampering.py",
    "tests/gateway/web/test_browser.py",
    "tests/calibration/test_process.py",
    "tests/hub/test_end_to_end.py",
    "tests/gateway/web/test_standard_page.py",
    "tests/integration/test_signals.py",
    "tests/fuzz/test_parsers.py",
    "tests/integration/test_chain_protocols.py",
    "tests/metrology/test_uncertainty.py",
    "tests/gateway/tsdb/test_row_lines.py",
    "tests/gateway/alerts/test_restart_scenario.py",
    "tests/app/test_check.py",
    "tests/gateway/ingest/test_fuzz.py",
    "tests/hub/test_admin.py",
    "tests/app/test_ctrl_c.py",
    "tests/integration/test_fleet.py",
    "tests/drivers/test_registry.py",
    "tests/drivers/modbus/test_plan.py",
    "hil_tests/test_opcua.py",
    "tests/gateway/web/test_api.py",
    "tests/hub/test_cli.py",
    "tests/gateway/api/test_api_security.py",
    "tests/integration/test_hostile_chain.py",
    "tests/app/test_once.py",
    "tests/ledger/test_canonical.py",
    "tests/gateway/web/test_calibration_page.py",
    "tests/gateway/standards/test_service.py",
    "tests/calibration/test_chain.py",
    "tests/integration/test_mqtt_identity.py",
    "tests/drivers/sim/bench/test_cli.py",
    "tests/calibration/test_faults.py",
    "tests/hub/test_registry.py",
    "tests/drivers/opcua/test_opcua_driver.py",
    "tests/gateway/web/test_alerts_page.py",
)


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: the listed files first (in the list's order), then the others
    by their number of tests, most first (pytest-xdist's own order), each file's tests together
    and in their own order."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    sizes: dict[str, int] = {}
    for item in items:
        sizes[_file_of(item)] = sizes.get(_file_of(item), 0) + 1
    position = {id(item): i for i, item in enumerate(items)}

    def key(item: pytest.Item) -> tuple[int, int, str, int]:
        path = _file_of(item)
        return (rank.get(path, len(rank)), -sizes[path], path, position[id(item)])

    items.sort(key=key)


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]
