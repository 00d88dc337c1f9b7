"""The bench's physics on a manual clock: settling, the calibrator's own error, the noise every
meter shares, output off, the meters' error models, instability."""

from __future__ import annotations

import math
import statistics

import pytest

from core.clock import ManualClock
from drivers.sim.bench_physics import BenchPhysics, CalibratorModel, ErrorModel, Meter

QUIET = CalibratorModel(
    tau_s=0.5, gain_ppm=0.0, offsets={}, noise_ppm_of_range=0.0, unstable_ppm_of_range=500
)


def physics(model: CalibratorModel = QUIET) -> tuple[BenchPhysics, ManualClock]:
    clock = ManualClock()
    return BenchPhysics(model, clock, seed=3), clock


@pytest.mark.parametrize("taus", [0.5, 1, 2, 3, 5, 10])
def test_output_approaches_the_setpoint_with_the_time_constant(taus: float) -> None:
    bench, clock = physics()
    bench.set_level("VOLT:DC", 10.0)
    bench.set_output(True)
    clock.advance(taus * QUIET.tau_s)
    assert bench.true_output() == pytest.approx(10.0 * (1 - math.exp(-taus)), rel=1e-12)


def test_a_new_level_starts_from_where_the_output_is() -> None:
    bench, clock = physics()
    bench.set_level("VOLT:DC", 10.0)
    bench.set_output(True)
    clock.advance(QUIET.tau_s)  # 63 % of the way to 10 V
    start = bench.true_output()
    bench.set_level("VOLT:DC", 1.0)
    assert bench.true_output() == pytest.approx(start, rel=1e-12)  # no jump
    clock.advance(2 * QUIET.tau_s)
    expected = 1.0 + (start - 1.0) * math.exp(-2)
    assert bench.true_output() == pytest.approx(expected, rel=1e-12)


def test_output_off_decays_to_zero_and_another_function_starts_from_zero() -> None:
    bench, clock = physics()
    bench.set_level("VOLT:DC", 10.0)
    bench.set_output(True)
    clock.advance(20 * QUIET.tau_s)
    bench.set_output(False)
    clock.advance(QUIET.tau_s)
    assert bench.true_output() == pytest.approx(10.0 * math.exp(-1), rel=1e-6)
    assert bench.present("dcv") == 0.0  # nothing is sourced: the meters see no voltage
    bench.set_output(True)
    bench.set_level("RES", 1000.0)
    assert bench.true_output() == 0.0
    clock.advance(30 * QUIET.tau_s)
    assert bench.present("ohms") == pytest.approx(1000.0, rel=1e-9)
    assert bench.present("dcv") == 0.0
    bench.set_output(False)
    assert math.isinf(bench.present("ohms"))  # standby: open terminals


def test_the_calibrators_own_error_is_part_of_the_truth() -> None:
    model = QUIET.model_copy(update={"gain_ppm": 2.0, "offsets": {"VOLT:DC": 3e-6}})
    bench, clock = physics(model)
    bench.set_level("VOLT:DC", 10.0)
    bench.set_output(True)
    clock.advance(40 * model.tau_s)
    assert bench.true_output() == pytest.approx(10.0 * (1 + 2e-6) + 3e-6, abs=1e-12)


def test_the_source_noise_is_one_value_per_interval_seen_by_every_meter() -> None:
    model = QUIET.model_copy(update={"noise_ppm_of_range": 1.0, "noise_interval_s": 0.01})
    bench, clock = physics(model)
    bench.set_level("VOLT:DC", 10.0)
    bench.set_output(True)
    clock.advance(40 * model.tau_s)
    now = clock.now_ns()
    assert bench.present("dcv", now) == bench.present("dcv", now + 1_000_000)  # same 10 ms
    noise = []
    for _ in range(2000):
        clock.advance(0.01)
        noise.append(bench.present("dcv") - bench.true_output())
    assert statistics.fmean(noise) == pytest.approx(0, abs=5 * 1e-5 / math.sqrt(2000))
    assert statistics.stdev(noise) == pytest.approx(1e-5, rel=0.1)  # 1 ppm of the 10 V range


def test_automatic_and_fixed_ranges() -> None:
    bench, _ = physics()
    bench.set_level("VOLT:DC", 0.05)
    assert bench.range_in_use() == 0.1
    bench.set_level("VOLT:DC", 11.0)
    assert bench.range_in_use() == 10.0  # 20 % over-range
    bench.set_level("VOLT:DC", 13.0)
    assert bench.range_in_use() == 100.0
    bench.set_range("VOLT:DC", 1000.0)
    bench.set_level("VOLT:DC", 1.0)
    assert bench.range_in_use() == 1000.0


def test_a_meter_reads_gain_offset_nonlinearity_and_drift() -> None:
    bench, clock = physics()
    error = ErrorModel(offset=15e-6, gain_ppm=20.0, quadratic=1e-7, drift_per_hour=2e-6)
    meter = Meter(bench, {"VOLT:DC": error}, seed=1)
    bench.set_level("VOLT:DC", 10.0)
    bench.set_output(True)
    clock.advance(40 * QUIET.tau_s)
    truth = bench.true_output()
    expected = truth * (1 + 20e-6) + 15e-6 + 1e-7 * truth**2 + 2e-6 * 20 / 3600  # 20 s in
    assert meter.indicate("VOLT:DC", clock.now_ns()) == pytest.approx(expected, abs=1e-12)
    clock.advance(7200 - 20)
    truth = bench.true_output()
    drifted = truth * (1 + 20e-6) + 15e-6 + 1e-7 * truth**2 + 2 * 2e-6
    assert meter.indicate("VOLT:DC", clock.now_ns()) == pytest.approx(drifted, abs=1e-9)
    assert meter.expected("VOLT:DC", truth, clock.now_ns()) == pytest.approx(drifted, abs=1e-12)


def test_a_meters_noise_and_resolution() -> None:
    bench, clock = physics()
    meter = Meter(bench, {"VOLT:DC": ErrorModel(noise=2e-6)}, seed=5)
    bench.set_level("VOLT:DC", 1.0)
    bench.set_output(True)
    clock.advance(40 * QUIET.tau_s)
    readings = [meter.indicate("VOLT:DC", clock.now_ns()) for _ in range(3000)]
    assert statistics.stdev(readings) == pytest.approx(2e-6, rel=0.1)
    assert meter.rounded("VOLT:DC", 1.0000123, 1e-5) == pytest.approx(1.00001, abs=1e-15)
    coarse = Meter(bench, {"VOLT:DC": ErrorModel(resolution=1e-3)}, seed=5)
    assert coarse.rounded("VOLT:DC", 1.0004, 1e-6) == pytest.approx(1.0)  # its own wins


def test_off_means_the_meters_own_noise_around_its_zero_error() -> None:
    bench, clock = physics()
    meter = Meter(bench, {"VOLT:DC": ErrorModel(offset=5e-6, noise=1e-6)}, seed=2)
    readings = [meter.indicate("VOLT:DC", clock.now_ns()) for _ in range(500)]
    assert statistics.fmean(readings) == pytest.approx(5e-6, abs=5 * 1e-6 / math.sqrt(500))


def test_ac_volts_read_as_rms_and_a_dc_meter_sees_none() -> None:
    bench, clock = physics()
    meter = Meter(bench, {}, seed=1)
    bench.set_level("VOLT:AC", 5.0)
    bench.set_output(True)
    clock.advance(40 * QUIET.tau_s)
    assert meter.indicate("VOLT:AC", clock.now_ns()) == pytest.approx(5.0, rel=1e-9)
    assert meter.indicate("VOLT:DC", clock.now_ns()) == 0.0


def test_the_unstable_source_never_settles() -> None:
    bench, clock = physics()
    bench.set_level("VOLT:DC", 10.0)
    bench.set_output(True)
    clock.advance(40 * QUIET.tau_s)
    settled = bench.true_output()
    bench.unstable = True
    values = []
    for _ in range(60):
        clock.advance(0.1)
        values.append(bench.true_output())
    amplitude = 500e-6 * 10.0
    assert max(values) - settled == pytest.approx(amplitude, rel=0.05)
    assert settled - min(values) == pytest.approx(amplitude, rel=0.05)
    for start in range(0, 50, 10):  # no 1 s window is quiet
        assert statistics.stdev(values[start : start + 10]) > 100 * 1e-7


def test_reset_is_standby_at_zero() -> None:
    bench, clock = physics()
    bench.set_level("CURR:DC", 0.01)
    bench.set_output(True)
    bench.reset()
    state = bench.state()
    assert state["output"] is False and state["function"] == "VOLT:DC" and state["level"] == 0.0
    clock.advance(1)
    assert bench.present("dci") == 0.0
