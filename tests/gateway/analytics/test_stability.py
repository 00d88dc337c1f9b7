"""Allan and modified Allan deviation against the NBS14 reference values, and against allantools.

Sources:
- W. J. Riley, "Handbook of Frequency Stability Analysis", NIST SP 1065 (2008), pp. 107-108:
  the NBS14 test suite. The 1000-point frequency set is defined by its generator
  (n_{i+1} = 16807 n_i mod 2147483647, n_0 = 1234567890, normalised by 2147483647); its ADEV,
  overlapping ADEV and MDEV at tau = 1, 10, 100 are printed to 7 significant digits. The 10-point
  phase set (and its 9 frequency values, data/nbs14_10point.csv) with its deviations at tau = 1, 2.
- allantools 2024.6 (aewallin/allantools), the reference implementation in Python, as an oracle
  for the deviations, for Greenhall's equivalent degrees of freedom and for the lag-1
  autocorrelation noise identification.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import allantools
import numpy as np
import pytest
from allantools import ci as allantools_ci

from gateway.analytics import AnalyticsError, StabilityResult, allan_deviation
from gateway.analytics.stability import (
    ONE_SIGMA,
    chi2_interval,
    greenhall_edf,
    identify_noise,
)

DATA = Path(__file__).parent / "data"


def nbs14_1000() -> np.ndarray:
    numbers = [1234567890]
    for _ in range(999):
        numbers.append((16807 * numbers[-1]) % 2147483647)
    # SP 1065 prints the first three, to check the generator.
    assert numbers[1:4] == [395529916, 1209410747, 633705974]
    return np.array(numbers, dtype=np.float64) / 2147483647.0


NBS14_1000 = {
    "adev": [2.922319e-01, 9.965736e-02, 3.897804e-02],
    "oadev": [2.922319e-01, 9.159953e-02, 3.241343e-02],
    "mdev": [2.922319e-01, 6.172376e-02, 2.170921e-02],
}
NBS14_10 = {
    "adev": [91.22945, 115.8082],
    "oadev": [91.22945, 85.95287],
    "mdev": [91.22945, 74.78849],
}


@pytest.mark.parametrize("kind", ["adev", "oadev", "mdev"])
def test_nbs14_1000_point_set(kind: str) -> None:
    result = allan_deviation(nbs14_1000(), 1.0, kind=kind, taus=[1, 10, 100])  # type: ignore[arg-type]
    assert [p.tau for p in result.points] == [1.0, 10.0, 100.0]
    for point, reference in zip(result.points, NBS14_1000[kind], strict=True):
        assert point.deviation == pytest.approx(reference, rel=1e-6), point.tau


def nbs14_10() -> tuple[list[float], list[float]]:
    with (DATA / "nbs14_10point.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    phase = [float(row["phase"]) for row in rows]
    frequency = [float(row["frequency"]) for row in rows if row["frequency"]]
    return phase, frequency


@pytest.mark.parametrize("kind", ["adev", "oadev", "mdev"])
@pytest.mark.parametrize("data_type", ["phase", "frequency"])
def test_nbs14_10_point_set(kind: str, data_type: str) -> None:
    phase, frequency = nbs14_10()
    values = phase if data_type == "phase" else frequency
    result = allan_deviation(values, 1.0, kind=kind, data_type=data_type, taus=[1, 2])  # type: ignore[arg-type]
    for point, reference in zip(result.points, NBS14_10[kind], strict=True):
        assert point.deviation == pytest.approx(reference, rel=1e-6), point.tau


def white_fm(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1e-11, n)


@pytest.mark.parametrize("kind", ["adev", "oadev", "mdev"])
def test_deviations_agree_with_allantools_at_every_octave(kind: str) -> None:
    rng = np.random.default_rng(1)
    # White FM plus random-walk FM on a large offset, as a real oscillator's readings.
    y = 5e-9 + rng.normal(0.0, 1e-11, 4096) + np.cumsum(rng.normal(0.0, 1e-13, 4096))
    ours = allan_deviation(y, 10.0, kind=kind)  # type: ignore[arg-type]
    function = {"adev": allantools.adev, "oadev": allantools.oadev, "mdev": allantools.mdev}[kind]
    taus, devs, _, ns = function(y, rate=10.0, data_type="freq", taus=[p.tau for p in ours.points])
    # allantools leaves out the last octave when it has a single term; we keep it.
    assert len(taus) >= len(ours.points) - 1
    compared = ours.points[: len(taus)]
    np.testing.assert_allclose(taus, [p.tau for p in compared])
    np.testing.assert_allclose([p.deviation for p in compared], devs, rtol=1e-8)
    assert [p.n_terms for p in compared] == list(ns)


def test_phase_and_frequency_input_give_the_same_deviation() -> None:
    y = white_fm(2000, 2)
    phase = np.concatenate(([0.0], np.cumsum(y))) * 0.5  # rate 2 Hz
    from_frequency = allan_deviation(y, 2.0, kind="mdev")
    from_phase = allan_deviation(phase, 2.0, kind="mdev", data_type="phase")
    np.testing.assert_allclose(
        [p.deviation for p in from_phase.points],
        [p.deviation for p in from_frequency.points],
        rtol=1e-9,
    )


@pytest.mark.parametrize("kind", ["adev", "oadev", "mdev"])
@pytest.mark.parametrize("alpha", [2, 1, 0, -1, -2])
def test_greenhall_edf_agrees_with_allantools(kind: str, alpha: int) -> None:
    overlapping = kind != "adev"
    modified = kind == "mdev"
    for n_phase in (50, 1001, 100_000):
        for m in (1, 2, 3, 5, 8, 16, 33, 34, 64, 100, 256, 1000, 4096, 30_000):
            if (3 * m > n_phase - 1) if modified else (2 * m > n_phase - 2):
                continue
            try:
                expected = allantools_ci.edf_greenhall(
                    alpha, 2, m, n_phase, overlapping=overlapping, modified=modified
                )
            except NotImplementedError:  # allantools lacks one corner of case 4
                continue
            assert greenhall_edf(alpha, m, n_phase, kind) == pytest.approx(  # type: ignore[arg-type]
                expected, rel=1e-10
            ), (n_phase, m)


def test_chi2_interval_agrees_with_allantools() -> None:
    for edf in (1.5, 7.0, 120.0):
        for confidence in (ONE_SIGMA, 0.95):
            expected = allantools_ci.confidence_interval(2.5e-12, edf, ci=confidence)
            assert chi2_interval(2.5e-12, edf, confidence) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "expected_alpha"),
    [("white PM", 2), ("white FM", 0), ("random-walk FM", -2)],
)
def test_noise_identification(name: str, expected_alpha: int) -> None:
    rng = np.random.default_rng(9)
    white = rng.normal(0.0, 1.0, 20_000)
    phase = {
        "white PM": white,
        "white FM": np.cumsum(white),
        "random-walk FM": np.cumsum(np.cumsum(white)),
    }[name]
    for m in (1, 4, 16):
        alpha = identify_noise(phase, m)
        assert alpha == expected_alpha
        reference = allantools_ci.autocorr_noise_id(phase, m, data_type="phase")[0]
        assert alpha == reference


def test_confidence_intervals_bracket_the_deviation_and_follow_the_edf() -> None:
    result = allan_deviation(white_fm(10_000, 4), 1.0, kind="oadev", confidence=0.95)
    for point in result.points:
        assert point.ci_low < point.deviation < point.ci_high
        assert (point.ci_low, point.ci_high) == pytest.approx(
            chi2_interval(point.deviation, point.edf, 0.95)
        )
    identified = [p for p in result.points if p.alpha_source == "identified"]
    assert identified
    assert all(p.alpha == 0 for p in identified)
    # Taus with fewer than 30 decimated points carry the longest identified noise type.
    assert all(p.alpha_source == "carried" for p in result.points if 10_000 / p.m < 30)
    # The edf at each tau is Greenhall's for the noise type used there.
    assert result.points[0].edf == pytest.approx(greenhall_edf(0, 1, 10_001, "oadev"), rel=1e-12)


def test_too_little_data_for_noise_identification_assumes_white_fm() -> None:
    phase, _ = nbs14_10()
    result = allan_deviation(phase, 1.0, data_type="phase", taus=[1, 2])
    assert {p.alpha_source for p in result.points} == {"assumed"}
    given = allan_deviation(phase, 1.0, data_type="phase", taus=[1, 2], alpha=-1)
    assert {(p.alpha, p.alpha_source) for p in given.points} == {(-1, "given")}


def test_tau_spacings() -> None:
    y = white_fm(1000, 5)
    assert [p.m for p in allan_deviation(y, 1.0).points] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert [p.m for p in allan_deviation(y, 1.0, taus="decade").points] == [
        1, 2, 5, 10, 20, 50, 100, 200, 500
    ]  # fmt: skip
    assert [p.m for p in allan_deviation(y, 1.0, kind="mdev", taus="all").points][-1] == 333


def test_result_json_round_trips() -> None:
    result = allan_deviation(white_fm(500, 6), 1.0, kind="mdev")
    document = json.loads(result.model_dump_json())
    assert document["format"] == "etalon.drift.adev/1"
    assert set(document["points"][0]) == {
        "tau", "m", "deviation", "n_terms", "alpha", "noise", "alpha_source", "edf", "ci_low",
        "ci_high",
    }  # fmt: skip
    assert StabilityResult.model_validate_json(result.model_dump_json()) == result


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": [1.0], "rate_hz": 1.0}, "too few"),
        ({"values": [1.0, 2.0, 3.0, 4.0], "rate_hz": 0.0}, "rate"),
        ({"values": [1.0, math.nan, 3.0, 4.0], "rate_hz": 1.0}, "not a finite"),
        ({"values": [1.0, 2.0, 3.0, 4.0, 5.0], "rate_hz": 1.0, "taus": [9]}, "between 1 and"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AnalyticsError, match=message):
        allan_deviation(**kwargs)  # type: ignore[arg-type]
