"""Faults on the bench, each switched on in the simulator mid-run: the calibrator refuses a
set-point, the UUT stops answering mid-point, the UUT is swapped, the declared unit is not the one
on the bench, the run is told to stop or its task is cancelled. Each time every source ends in its
safe state (checked on the simulator), the reason is kept, and a resumed run completes keeping
the points done before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from calibration.runner import Runner
from calibration.state import RunStore
from tests.calibration.conftest import Bench, procedure

Trigger = Callable[[str, dict[str, object]], bool]


def when(key: str, **expected: object) -> Trigger:
    """A test on a progress message."""

    def matches(seen: str, values: dict[str, object]) -> bool:
        return seen == key and all(values.get(k) == v for k, v in expected.items())

    return matches


def on(trigger: Trigger, action: Callable[[], None]) -> Callable[..., None]:
    """A progress callback that does ``action`` once, the first time ``trigger`` matches."""
    fired: list[bool] = []

    def progress(key: str, **values: object) -> None:
        if not fired and trigger(key, values):
            fired.append(True)
            action()

    return progress


def three_points() -> dict[str, object]:
    return procedure(
        points=[
            {"nominal": 1, "range": 10},
            {"nominal": 5, "range": 10},
            {"nominal": 9, "range": 10},
        ]
    )


async def _done(store: RunStore, run: str) -> list[int]:
    return sorted(await store.points(run))


async def test_the_calibrator_refusing_a_set_point_aborts_safely_and_resumes(
    bench: Bench, store: RunStore
) -> None:
    refuse = on(
        when("calibrate.point", i=3), lambda: bench.sim.set_fault("calibrator", "REFUSE", "ON")
    )
    run, outcome = await bench.run(store, bench.procedure(three_points()), progress=refuse)
    assert outcome.status == "aborted"
    assert outcome.reason is not None and "Settings conflict" in outcome.reason
    assert outcome.safe_state_failures == {}  # OUTP OFF always works, even refusing
    assert bench.sim.physics.output is False
    row = await store.get(run)
    assert row is not None and row.status == "aborted" and row.record is None
    assert await _done(store, run) == [0, 1]
    writes = await store.writes(run)
    refused = [w for w in writes if not w.ok]
    assert refused and refused[0].point == 2 and "Settings conflict" in (refused[0].error or "")
    before = {i: p.model_dump_json() for i, p in (await store.points(run)).items()}

    bench.sim.clear_faults("calibrator")
    resumed = await bench.resume(store, run)
    assert resumed.status == "completed", resumed
    assert bench.sim.physics.output is False
    points = await store.points(run)
    assert sorted(points) == [0, 1, 2]
    assert {i: points[i].model_dump_json() for i in (0, 1)} == before  # kept as they were


async def test_the_uut_going_silent_mid_point_aborts_safely_and_resumes(
    bench: Bench, store: RunStore
) -> None:
    silence = on(
        when("calibrate.reading", k=3),
        lambda: bench.sim.set_fault("uut-dmm", "SILENT", "ON"),
    )
    run, outcome = await bench.run(store, bench.procedure(three_points()), progress=silence)
    assert outcome.status == "aborted"
    assert outcome.reason is not None and outcome.reason.startswith("uut-dmm: stopped answering")
    assert bench.sim.physics.output is False
    assert await _done(store, run) == []  # the first point was under way: nothing of it kept

    bench.sim.clear_faults("uut-dmm")
    resumed = await bench.resume(store, run)
    assert resumed.status == "completed", resumed
    assert await _done(store, run) == [0, 1, 2]
    assert bench.sim.physics.output is False


async def test_a_uut_swapped_mid_run_aborts_and_voids_the_point_since_the_last_check(
    bench: Bench, store: RunStore
) -> None:
    swap = on(
        when("calibrate.result"), lambda: bench.sim.set_fault("uut-dmm", "SERIAL", "OTHER-777")
    )
    # the first point's result is printed, then the unit is swapped: the check before the
    # second point finds it, and the first point (measured since the last check) is void
    run, outcome = await bench.run(store, bench.procedure(three_points()), progress=swap)
    assert outcome.status == "aborted"
    assert outcome.reason is not None and "swapped" in outcome.reason
    assert "OTHER-777" in outcome.reason and "point 1" in outcome.reason
    assert bench.sim.physics.output is False
    assert await _done(store, run) == []

    # resumed with the other unit still on the bench: refused, safely
    again = await bench.resume(store, run)
    assert again.status == "aborted"
    assert again.reason == "the UUT says it is serial OTHER-777, not the declared MY12345"
    assert bench.sim.physics.output is False

    bench.sim.set_fault("uut-dmm", "SERIAL", "MY12345")  # the right unit is back
    resumed = await bench.resume(store, run)
    assert resumed.status == "completed", resumed
    row = await store.get(run)
    assert row is not None and row.identity_end == row.identity_start
    assert row.identity_start is not None and row.identity_start["serial"] == "MY12345"


async def test_a_unit_that_is_not_the_declared_one_is_refused_before_any_set_point(
    bench: Bench, store: RunStore
) -> None:
    run, outcome = await bench.run(store, bench.procedure(three_points()), serial="MY99999")
    assert outcome.status == "aborted"
    assert outcome.reason == "the UUT says it is serial MY12345, not the declared MY99999"
    writes = await store.writes(run)
    assert writes and all(w.purpose == "safe_state" for w in writes)
    assert bench.sim.physics.changes <= 2  # output off (already), nothing else reached it
    assert bench.sim.physics.output is False


async def test_a_stop_request_interrupts_safely_and_the_run_resumes(
    bench: Bench, store: RunStore
) -> None:
    stop = asyncio.Event()
    from calibration.procedure import load_procedure
    from calibration.start import start_run

    loaded = load_procedure(bench.procedure(three_points()))
    run = await start_run(loaded, store, bench.clock, operator="An", declared={"serial": "MY12345"})
    row = await store.get(run)
    assert row is not None
    seen: list[bool] = []

    def progress(key: str, **values: object) -> None:
        if key == "calibrate.settling" and values.get("seconds", 0) and not seen:  # type: ignore[operator]
            seen.append(bench.sim.physics.output)
            stop.set()

    outcome = await Runner(row, store, bench.clock, progress=progress).execute(stop)
    assert seen == [True]  # the output was on when the stop came
    assert outcome.status == "interrupted"
    assert bench.sim.physics.output is False
    stored = await store.get(run)
    assert stored is not None and stored.status == "interrupted"
    resumed = await bench.resume(store, run)
    assert resumed.status == "completed"


async def test_a_cancelled_run_still_puts_its_sources_in_their_safe_state(
    bench: Bench, store: RunStore
) -> None:
    from calibration.procedure import load_procedure
    from calibration.start import start_run

    loaded = load_procedure(bench.procedure(three_points()))
    run = await start_run(loaded, store, bench.clock, operator="An", declared={"serial": "MY12345"})
    row = await store.get(run)
    assert row is not None
    task: asyncio.Task[object] | None = None

    def progress(key: str, **values: object) -> None:
        if key == "calibrate.reading" and values.get("k") == 2 and task is not None:
            task.cancel()

    task = asyncio.create_task(Runner(row, store, bench.clock, progress=progress).execute())
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the run was not cancelled")
    assert bench.sim.physics.output is False
    writes = await store.writes(run)
    assert writes[-1].purpose == "safe_state" and writes[-1].ok
    resumed = await bench.resume(store, run)
    assert resumed.status == "completed"


async def test_without_a_declared_serial_the_unit_must_stay_the_one_the_run_began_with(
    bench: Bench, store: RunStore
) -> None:
    swap = on(
        when("calibrate.result"), lambda: bench.sim.set_fault("uut-dmm", "SERIAL", "OTHER-778")
    )
    run, outcome = await bench.run(
        store, bench.procedure(three_points()), serial=None, progress=swap
    )
    assert outcome.status == "aborted" and outcome.reason is not None
    assert "swapped" in outcome.reason
    again = await bench.resume(store, run)
    assert again.status == "aborted" and again.reason is not None
    assert again.reason == (
        "the UUT is not the unit the run began with: then manufacturer ETALON-SIM, model "
        "DMM6500-SIM, serial MY12345, firmware 1.9.4; now manufacturer ETALON-SIM, model "
        "DMM6500-SIM, serial OTHER-778, firmware 1.9.4"
    )
    assert bench.sim.physics.output is False
