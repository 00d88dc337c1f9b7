"""The physical models behind the counter and the thermometer readout."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from drivers.sim.models import (
    QUANTITIES,
    FrequencyStandard,
    FrequencyStandardParams,
    Thermometer,
    ThermometerParams,
    build_model,
)

T0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1e9)


def _fractional(params: FrequencyStandardParams, n: int, step_s: float = 1.0) -> np.ndarray:
    standard = FrequencyStandard(params)
    values = [
        standard.sample("frequency", T0 + int(i * step_s * 1e9)) / params.nominal_hz - 1
        for i in range(n)
    ]
    return np.array(values)


def _adev(y: np.ndarray, m: int) -> float:
    """Overlapping Allan deviation at τ = m·τ0 from fractional-frequency samples."""
    cumulative = np.cumsum(np.insert(y, 0, 0.0))
    averages = (cumulative[m:] - cumulative[:-m]) / m
    differences = averages[m:] - averages[:-m]
    return float(np.sqrt(0.5 * np.mean(differences**2)))


QUIET = {"offset": 0.0, "drift_per_day": 0.0, "tempco_per_k": 0.0}


def test_white_fm_averages_down_as_one_over_root_tau() -> None:
    params = FrequencyStandardParams(
        white_fm_adev_1s=1e-11, flicker_fm_floor=0, random_walk_fm_adev_1s=0, **QUIET
    )
    y = _fractional(params, 20_000)
    assert _adev(y, 1) == pytest.approx(1e-11, rel=0.1)
    assert _adev(y, 100) == pytest.approx(1e-12, rel=0.25)


def test_flicker_fm_is_a_floor() -> None:
    params = FrequencyStandardParams(
        white_fm_adev_1s=0, flicker_fm_floor=1e-13, random_walk_fm_adev_1s=0, seed=21, **QUIET
    )
    y = _fractional(params, 40_000)
    for m in (2, 10, 100, 1000):
        assert _adev(y, m) == pytest.approx(1e-13, rel=0.35), m


def test_random_walk_fm_grows_as_root_tau() -> None:
    params = FrequencyStandardParams(
        white_fm_adev_1s=0, flicker_fm_floor=0, random_walk_fm_adev_1s=1e-14, **QUIET
    )
    y = _fractional(params, 40_000)
    assert _adev(y, 100) == pytest.approx(1e-13, rel=0.3)
    assert _adev(y, 1000) / _adev(y, 10) == pytest.approx(10, rel=0.4)


def test_ageing_moves_the_true_frequency() -> None:
    params = FrequencyStandardParams(offset=1e-12, drift_per_day=-1e-13, tempco_per_k=0)
    standard = FrequencyStandard(params)
    epoch_ns = int(params.epoch.timestamp() * 1e9)
    ten_days = epoch_ns + 10 * 86_400 * 10**9
    assert standard.true_value("frequency", epoch_ns) == pytest.approx(10e6 * (1 + 1e-12))
    assert standard.true_value("frequency", ten_days) == pytest.approx(10e6 * (1 + 0.0))


def test_thermometer_resistance_follows_callendar_van_dusen() -> None:
    probe = Thermometer(ThermometerParams(noise_mk=0.0, drift_mk_per_year=0.0))
    temperature = probe.true_value("temperature", T0)
    resistance = probe.true_value("resistance", T0)
    assert resistance == pytest.approx(
        25.5 * (1 + 3.9083e-3 * temperature - 5.775e-7 * temperature**2)
    )
    assert probe.resistance_at(0.0) == pytest.approx(25.5)


def test_thermometer_probe_error_shows_in_the_indication() -> None:
    params = ThermometerParams(noise_mk=0.0, probe_offset_mk=0.8, drift_mk_per_year=0.0)
    probe = Thermometer(params)
    bath = params.bath.true_c(T0)
    assert probe.true_value("temperature", T0) - bath == pytest.approx(0.8e-3)
    noisy = [Thermometer(ThermometerParams(seed=s)).sample("temperature", T0) for s in range(200)]
    spread_mk = float(np.std(noisy)) * 1e3
    assert spread_mk == pytest.approx(0.2, rel=0.3)


def test_new_models_are_registered() -> None:
    assert QUANTITIES["frequency"] == {"frequency": "Hz"}
    assert QUANTITIES["thermometer"] == {"temperature": "°C", "resistance": "Ω"}
    assert math.isfinite(build_model(FrequencyStandardParams()).sample("frequency", T0))
    assert build_model(ThermometerParams()).kind == "thermometer"
