"""Fixtures of the calibration tests: the simulated bench on a manual clock (the truth is known at
every instant), an agent config that reaches it (with a simulated room), a procedure written as a
user writes one, and a run of it in process."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from calibration.outcome import Outcome
from calibration.pacing import Progress
from calibration.procedure import load_procedure
from calibration.runner import Runner
from calibration.start import start_run
from calibration.state import RunStore
from calibration.stream import RunStream
from core.clock import ManualClock
from drivers.sim.bench import BenchConfig, BenchSimulator
from drivers.sim.bench_physics import ErrorModel

START_NS = int(dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC).timestamp() * 1e9)
"""The manual clock's start: after the reference certificate's date, before its due date."""

UUT_OFFSET = 30e-6
UUT_GAIN_PPM = 120.0
"""The UUT DMM's known errors in the end-to-end test (DC volts): error = offset + gain·x."""

REFERENCE_CERTIFICATE = {
    "number": "REF-2026-0117",
    "issuer": "Vietnam Metrology Institute",
    "calibration_date": "2026-06-01",
    "due_date": "2027-06-01",
    # the simulated reference meter's real error is 5e-8 + 0.3e-6·x: its certificate says so
    "points": [
        {"value": -10, "correction": 2.95e-6, "expanded_uncertainty": 1.2e-6},
        {"value": -1, "correction": 2.5e-7, "expanded_uncertainty": 2.0e-7},
        {"value": 0, "correction": -5.0e-8, "expanded_uncertainty": 1.0e-7},
        {"value": 1, "correction": -3.5e-7, "expanded_uncertainty": 2.0e-7},
        {"value": 10, "correction": -3.05e-6, "expanded_uncertainty": 1.2e-6},
    ],
}


def bench_config(**uut: float) -> BenchConfig:
    """The default bench with the UUT DMM's DC volts error model given (no noise-free drift)."""
    data = BenchConfig().model_dump(mode="json")
    for dmm in data["dmms"]:
        if dmm["role"] == "uut":
            dmm["errors"]["VOLT:DC"] = ErrorModel(**uut).model_dump(mode="json")
    return BenchConfig.model_validate(data)


def agent_config(bench: BenchSimulator, spool: Path, mqtt_port: int = 1) -> dict[str, Any]:
    """An agent config reaching the bench, with short timeouts and a simulated room."""
    instruments = bench.agent_instruments()
    for instrument in instruments:
        instrument["timeout_s"] = 0.5
        instrument["connect_timeout_s"] = 2.0
        if instrument["protocol"] == "modbus":
            instrument["timeout_s"] = 0.5
    instruments.append(
        {
            "name": "room",
            "protocol": "sim",
            "model": {"kind": "room", "seed": 7},
            "channels": [
                {"name": "temperature", "quantity": "temperature", "unit": "°C"},
                {"name": "humidity", "quantity": "humidity", "unit": "%rh"},
            ],
        }
    )
    return {
        "site": "hanoi",
        "id": "dc-bench-1",
        "mqtt": {"port": mqtt_port, "connect_timeout_s": 2},
        "spool": {"path": str(spool)},
        "instruments": instruments,
    }


PROCEDURE: dict[str, Any] = {
    "format": "etalon.procedure/1",
    "id": "dmm-dcv",
    "title": "DC voltage of a 6½-digit DMM",
    "version": "1.0",
    "agent": "agent.yaml",
    "laboratory": {
        "name": "Example Calibration Laboratory",
        "email": "lab@example.org",
        "city": "Hanoi",
        "country_code": "VN",
        "code": "VILAS 000",
    },
    "uut": {
        "instrument": "uut-dmm",
        "channel": "uut-dmm-dcv",
        "description": "Digital multimeter, DC voltage",
        "unit": "V",
        "resolution": 1e-5,
        "specification": "±(0.0035 % of reading + 0.0005 % of range)",
        "range_target": "voltage_dc_range",
    },
    "source": {
        "instrument": "calibrator",
        "setup": {"function": "VOLT:DC"},
        "level": "voltage_dc",
        "range_target": "voltage_dc_range",
        "output": "output",
    },
    "reference": {
        "kind": "meter",
        "instrument": "reference",
        "channel": "reference-dcv",
        "description": "Reference DMM, 8½ digits",
        "resolution": 1e-7,
        "range_target": "voltage_dc_range",
        "certificate": REFERENCE_CERTIFICATE,
        "drift_per_year": "±(2 ppm of reading + 0.05 µV)",
    },
    "points": [
        {"nominal": 0, "range": 10},
        {"nominal": 5, "range": 10},
        {"nominal": 10, "range": 10},
        {"nominal": -10, "range": 10},
        {"nominal": 1, "range": 1, "resolution": 1e-6, "reference_resolution": 1e-8},
        {"nominal": -1, "range": 1, "resolution": 1e-6, "reference_resolution": 1e-8},
    ],
    "readings": 8,
    "reading_interval_s": 0.1,
    "settling": {
        "interval_s": 0.1,
        "window_s": 1.0,
        "max_slope_per_s": 2e-6,
        "max_std": 2e-6,
        "timeout_s": 10,
    },
    "environment": {
        "temperature": {"instrument": "room", "channel": "temperature"},
        "humidity": {"instrument": "room", "channel": "humidity"},
        "reference_temperature": 23,
        "temperature_coefficient": "±(0.5 ppm of reading + 0.02 µV)",
    },
    "decision_rule": {"kind": "guarded_acceptance", "guard_factor": 1},
    "publish": {"drain_s": 0},
}


def procedure(**changes: Any) -> dict[str, Any]:
    """A copy of the procedure with top-level fields replaced."""
    data = copy.deepcopy(PROCEDURE)
    data.update(changes)
    return data


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """A YAML file as a user writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class Bench:
    """A running simulated bench, its clock, and where its configs are."""

    sim: BenchSimulator
    clock: ManualClock
    directory: Path

    def agent(self, **changes: Any) -> Path:
        """Write the agent config (with changes) next to the procedure."""
        data = agent_config(self.sim, self.directory / "agent-spool.db") | changes
        return write_yaml(self.directory / "agent.yaml", data)

    def procedure(self, data: dict[str, Any] | None = None, name: str = "procedure.yaml") -> Path:
        """Write a procedure (the default one unless given)."""
        if not (self.directory / "agent.yaml").exists():
            self.agent()
        return write_yaml(self.directory / name, data or procedure())

    async def run(
        self,
        store: RunStore,
        procedure_path: Path | None = None,
        *,
        serial: str | None = "MY12345",
        stream: RunStream | None = None,
        progress: Progress | None = None,
        run_id: str | None = None,
    ) -> tuple[str, Outcome]:
        """Start a run of a procedure and execute it to its end."""
        loaded = load_procedure(procedure_path or self.procedure())
        run = await start_run(
            loaded,
            store,
            self.clock,
            operator="Nguyễn Văn An",
            declared={} if serial is None else {"serial": serial},
            run_id=run_id,
        )
        return run, await self.resume(store, run, stream=stream, progress=progress)

    async def resume(
        self,
        store: RunStore,
        run: str,
        *,
        stream: RunStream | None = None,
        progress: Progress | None = None,
    ) -> Outcome:
        """Execute a stored run (first time or again)."""
        row = await store.get(run)
        assert row is not None
        runner = Runner(row, store, self.clock, stream=stream, progress=progress or _quiet)
        return await runner.execute()


def _quiet(key: str, **values: object) -> None:
    pass


async def start_bench(directory: Path, config: BenchConfig | None = None) -> Bench:
    """A started bench on a manual clock."""
    clock = ManualClock(START_NS)
    sim = BenchSimulator(config, clock)
    await sim.start()
    return Bench(sim, clock, directory)


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    """The default bench (UUT errors as the simulator ships them)."""
    started = await start_bench(tmp_path)
    yield started
    await started.sim.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RunStore]:
    """The bench's run store."""
    async with RunStore(tmp_path / "data" / "runs.db") as opened:
        yield opened
