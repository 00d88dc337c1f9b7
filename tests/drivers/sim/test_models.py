"""The simulators' physics: drift, temperature coefficients, steps, daily cycles, noise."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import AcceleratedClock, ManualClock
from drivers.sim.models import (
    Ambient,
    Excursion,
    ResistorParams,
    Room,
    RoomParams,
    Step,
    Zener,
    ZenerParams,
    build_model,
    datetime_ns,
)

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def ns(moment: datetime) -> int:
    return datetime_ns(moment)


def test_zener_drifts_at_its_rate_and_starts_at_its_offset() -> None:
    zener = Zener(
        ZenerParams(offset_uv_per_v=0.8, drift_uv_per_v_per_year=-0.4, tempco_uv_per_v_per_k=0.0)
    )
    v0 = zener.true_value("voltage", ns(EPOCH))
    v1 = zener.true_value("voltage", ns(EPOCH + timedelta(days=365.25)))
    assert (v0 / 10 - 1) * 1e6 == pytest.approx(0.8, abs=1e-9)
    assert (v1 - v0) / 10 * 1e6 == pytest.approx(-0.4, abs=1e-9)


def test_zener_follows_its_ambient_through_its_temperature_coefficient() -> None:
    ambient = Ambient(mean_c=23, daily_amplitude_k=2.0, peak_hour=15, utc_offset_h=7)
    zener = Zener(
        ZenerParams(drift_uv_per_v_per_year=0, tempco_uv_per_v_per_k=0.05, ambient=ambient)
    )
    peak = ns(EPOCH.replace(hour=8))  # 15:00 in Hanoi
    trough = ns(EPOCH.replace(hour=20))  # 03:00 in Hanoi
    assert zener.true_value("temperature", peak) == pytest.approx(25.0)
    assert zener.true_value("temperature", trough) == pytest.approx(21.0)
    swing_ppm = (zener.true_value("voltage", peak) - zener.true_value("voltage", trough)) / 10 * 1e6
    assert swing_ppm == pytest.approx(0.05 * 4.0, rel=1e-6)


def test_a_step_changes_the_value_from_its_instant_on() -> None:
    at = EPOCH + timedelta(days=100)
    zener = Zener(
        ZenerParams(
            drift_uv_per_v_per_year=0, tempco_uv_per_v_per_k=0, step=Step(at=at, size_ppm=2.5)
        )
    )
    before = zener.true_value("voltage", ns(at) - 1)
    after = zener.true_value("voltage", ns(at))
    assert (after - before) / 10 * 1e6 == pytest.approx(2.5, rel=1e-6)


def test_white_noise_has_the_configured_spread() -> None:
    zener = Zener(ZenerParams(noise_uv=0.3, drift_uv_per_v_per_year=0, tempco_uv_per_v_per_k=0))
    t = ns(EPOCH)
    samples = [
        (zener.sample("voltage", t) - zener.true_value("voltage", t)) * 1e6 for _ in range(20_000)
    ]
    assert statistics.stdev(samples) == pytest.approx(0.3, rel=0.03)
    assert abs(statistics.fmean(samples)) < 0.01


def test_resistor_temperature_coefficients() -> None:
    p = ResistorParams(
        nominal_ohm=1.0,
        offset_ppm=0,
        drift_ppm_per_year=0,
        alpha_ppm_per_k=2.0,
        beta_ppm_per_k2=-0.5,
        reference_temperature_c=25,
        ambient=Ambient(mean_c=27, daily_amplitude_k=0),
    )
    r = build_model(p).true_value("resistance", ns(EPOCH))
    assert (r - 1) * 1e6 == pytest.approx(2.0 * 2 - 0.5 * 4)


def test_room_cycles_daily_and_humidity_moves_against_temperature() -> None:
    room = Room(RoomParams(hvac_amplitude_k=0))
    hours = [ns(EPOCH + timedelta(hours=h)) for h in range(48)]
    temps = [room.true_value("temperature", t) for t in hours]
    hums = [room.true_value("humidity", t) for t in hours]
    assert temps[:24] == pytest.approx(temps[24:])
    assert temps.index(max(temps[:24])) == 8  # 15:00 local = 08:00 UTC
    assert hums.index(min(hums[:24])) == 8
    pressures = [room.true_value("pressure", t) for t in hours]
    assert 1000 < min(pressures) < max(pressures) < 1020


def test_room_hvac_ripple_and_excursion() -> None:
    start = EPOCH + timedelta(hours=2)
    room = Room(
        RoomParams(
            temperature=Ambient(daily_amplitude_k=0),
            hvac_amplitude_k=0.1,
            hvac_period_s=600,
            excursion=Excursion(start=start, rate_k_per_h=1.5, duration_h=2),
        )
    )
    ripple = [room.true_value("temperature", ns(EPOCH) + int(s * 1e9)) for s in range(0, 600, 5)]
    assert max(ripple) - min(ripple) == pytest.approx(0.2, abs=0.01)
    base = room.true_value("temperature", ns(start))
    assert room.true_value("temperature", ns(start + timedelta(hours=1))) - base == pytest.approx(
        1.5
    )
    assert room.true_value("temperature", ns(start + timedelta(hours=5))) - base == pytest.approx(
        3.0
    )


def test_room_excursion_that_comes_back() -> None:
    start = EPOCH + timedelta(hours=2)
    trip = Excursion(start=start, rate_k_per_h=2.0, duration_h=0.5, hold_h=1.0)
    at = [trip.offset_k(ns(start + timedelta(hours=h))) for h in (0, 0.25, 0.5, 1.5, 1.75, 2, 3)]
    assert at == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0])


def test_clocks() -> None:
    manual = ManualClock(0)
    manual.advance(1.5)
    assert manual.now_ns() == 1_500_000_000
    fast = AcceleratedClock(ns(EPOCH), rate=86_400.0)
    import time

    # Bracketed by the real clock, so a loaded machine's late wake-up is measured, not guessed:
    # the simulated time is the real time between the two readings times the rate.
    real_before = time.monotonic_ns()
    t0 = fast.now_ns()
    time.sleep(0.05)
    t1 = fast.now_ns()
    real_after = time.monotonic_ns()
    assert 50_000_000 * 86_400 - 1 <= t1 - t0 <= (real_after - real_before) * 86_400 + 1
    assert fast.describe()["source"] == "accelerated"
