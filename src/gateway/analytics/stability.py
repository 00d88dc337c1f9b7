"""Frequency stability: Allan, overlapping Allan and modified Allan deviation with confidence
intervals (IEEE 1139; NIST SP 1065, W. J. Riley, "Handbook of Frequency Stability Analysis").

The input is either frequency-type data -- fractional frequency of a frequency standard, or any
quantity averaged over each sample interval, such as the voltage of a Zener reference (the
deviation is then in volts) -- or phase (time-error) data in seconds. Frequency data are
integrated to phase after removing their mean, and phase data have the line through their end
points removed: both are exact for these deviations (a second difference of phase ignores a
constant frequency offset) and keep the cumulative sums well conditioned at 10⁶ points.

Confidence intervals follow SP 1065 §5.3: the noise type at each averaging time is identified by
the lag-1 autocorrelation method (Riley & Greenhall 2004), the equivalent degrees of freedom by
Greenhall's algorithm (Greenhall & Riley, PTTI 2003, "Uncertainty of stability variances based
on finite differences"), and the interval from the chi-squared distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats

from gateway.analytics.arrays import FloatArray, finite_array
from gateway.analytics.errors import AnalyticsError
from metrology._common import MetrologyModel

DeviationKind = Literal["adev", "oadev", "mdev"]
DataType = Literal["frequency", "phase"]
TauSpacing = Literal["octave", "decade", "all"]
AlphaSource = Literal["identified", "carried", "assumed", "given"]

ONE_SIGMA = math.erf(1.0 / math.sqrt(2.0))
"""0.6827: the 1-sigma confidence level customary for stability plots (SP 1065, Stable32)."""
NOISE_ID_MIN_POINTS = 30
"""The lag-1 autocorrelation noise identification needs at least this many decimated points."""
NOISE_NAMES: dict[int, str] = {
    2: "white PM",
    1: "flicker PM",
    0: "white FM",
    -1: "flicker FM",
    -2: "random-walk FM",
}
"""Power-law noise of fractional frequency, S_y(f) ∝ f^alpha."""


class StabilityPoint(MetrologyModel):
    """The deviation at one averaging time, with its equivalent dof and confidence interval."""

    tau: float
    """Averaging time in seconds: m / rate."""
    m: int
    """Averaging factor."""
    deviation: float
    n_terms: int
    """Number of (overlapping) differences averaged."""
    alpha: int
    """Power-law noise exponent used for the dof (2 white PM ... -2 random-walk FM)."""
    noise: str
    alpha_source: AlphaSource
    """identified at this tau; carried from the longest tau with enough data; assumed white FM
    (too little data anywhere); or given by the caller."""
    edf: float
    ci_low: float
    ci_high: float


class StabilityResult(MetrologyModel):
    """A stability analysis: the deviation at each averaging time."""

    format: Literal["etalon.drift.adev/1"] = "etalon.drift.adev/1"
    deviation: DeviationKind
    data_type: DataType
    rate_hz: float
    tau0: float
    n: int
    """Number of input values."""
    confidence: float
    points: list[StabilityPoint]


def _to_phase(values: FloatArray, data_type: DataType, tau0: float) -> FloatArray:
    if data_type == "frequency":
        integrated = np.concatenate(([0.0], np.cumsum(values - np.mean(values))))
        return integrated * tau0
    ramp = np.linspace(values[0], values[-1], values.size)
    return values - ramp


def _second_differences(phase: FloatArray, m: int) -> FloatArray:
    n = phase.size
    return phase[2 * m :] - 2.0 * phase[m : n - m] + phase[: n - 2 * m]


def _variance(phase: FloatArray, m: int, tau0: float, kind: DeviationKind) -> tuple[float, int]:
    """The (modified) Allan variance at averaging factor m and the number of terms averaged."""
    differences = _second_differences(phase, m)
    if kind == "oadev":
        terms = differences
    elif kind == "adev":
        terms = differences[::m]
    else:
        cumulative = np.concatenate(([0.0], np.cumsum(differences)))
        terms = (cumulative[m:] - cumulative[:-m]) / m
    return float(np.mean(terms * terms)) / (2.0 * (m * tau0) ** 2), int(terms.size)


def max_averaging_factor(n_phase: int, kind: DeviationKind) -> int:
    """The largest m with at least one term (n_phase phase points)."""
    return n_phase // 3 if kind == "mdev" else (n_phase - 1) // 2


def averaging_factors(n_phase: int, kind: DeviationKind, spacing: TauSpacing) -> list[int]:
    """Averaging factors: powers of two (octave), 1-2-5 per decade, or every one (all)."""
    top = max_averaging_factor(n_phase, kind)
    if spacing == "all":
        return list(range(1, top + 1))
    factors: list[int] = []
    if spacing == "octave":
        m = 1
        while m <= top:
            factors.append(m)
            m *= 2
        return factors
    decade = 1
    while decade <= top:
        factors.extend(step * decade for step in (1, 2, 5) if step * decade <= top)
        decade *= 10
    return factors


def lag1_autocorrelation(series: FloatArray) -> float:
    """Lag-1 autocorrelation r1 = Σ(x_i-x̄)(x_{i+1}-x̄) / Σ(x_i-x̄)² (Riley & Greenhall eq. 2)."""
    centred = series - np.mean(series)
    denominator = float(centred @ centred)
    if denominator == 0.0:
        return 0.0
    return float(centred[:-1] @ centred[1:]) / denominator


def identify_noise(phase: FloatArray, m: int, max_differences: int = 2) -> int | None:
    """The power-law noise exponent alpha at averaging factor m, or None with too few points.

    Lag-1 autocorrelation method: decimate the phase by m, remove a quadratic, and difference
    until rho = r1/(1+r1) < 0.25 (at most ``max_differences`` times); alpha = 2 - round(2 rho) - 2d,
    clamped to the range 2..-2 that the dof algorithm covers.
    """
    series = phase[::m]
    if series.size < NOISE_ID_MIN_POINTS:
        return None
    index = np.arange(series.size, dtype=np.float64)
    series = series - np.polyval(np.polyfit(index, series, 2), index)
    differences = 0
    while True:
        r1 = lag1_autocorrelation(series)
        rho = r1 / (1.0 + r1) if r1 > -1.0 else -0.5
        if rho < 0.25 or differences >= max_differences:
            alpha = 2 - round(2.0 * rho) - 2 * differences
            return max(-2, min(2, alpha))
        series = np.diff(series)
        differences += 1


# Greenhall & Riley (2003): EDF of variances built on second differences of phase (d = 2).
_D = 2
_J_MAX = 100
# Table 1 (modified variances) and Table 2 (unmodified), column d = 2: (a0, a1) by alpha.
_TABLE1 = {2: (7.0 / 9.0, 0.5), 1: (0.997, 0.616), 0: (1.033, 0.607), -1: (1.048, 0.534),
           -2: (1.302, 0.535)}  # fmt: skip
_TABLE2 = {2: (35.0 / 18.0, 1.0), 1: (790.0, 410.0), 0: (2.0 / 3.0, 1.0 / 3.0),
           -1: (0.852, 0.375), -2: (1.079, 0.368)}  # fmt: skip
_TABLE3_D2 = (15.23, 12.0)  # (b0, b1) for alpha = 1


def _sw(t: FloatArray, alpha: int) -> FloatArray:
    """Greenhall's generalised autocovariance of the phase noise, eq. (7)."""
    magnitude = np.abs(t)
    if alpha % 2 == 0:
        # alpha = 2, 0, -2, -4: -|t|, |t|³, |t|⁵, |t|⁷
        power = 3 - alpha
        result: FloatArray = magnitude**power
        return -result if alpha == 2 else result
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(magnitude > 0.0, t ** (3 - alpha) * np.log(magnitude), 0.0)
    return result


def _sx(t: FloatArray, f: float, alpha: int) -> FloatArray:
    if math.isinf(f):
        return _sw(t, alpha + 2)
    return f * f * (2.0 * _sw(t, alpha) - _sw(t - 1.0 / f, alpha) - _sw(t + 1.0 / f, alpha))


def _sz(t: FloatArray, f: float, alpha: int) -> FloatArray:
    return (
        6.0 * _sx(t, f, alpha)
        - 4.0 * _sx(t - 1.0, f, alpha)
        - 4.0 * _sx(t + 1.0, f, alpha)
        + _sx(t - 2.0, f, alpha)
        + _sx(t + 2.0, f, alpha)
    )


def _basic_sum(j_count: float, m_count: float, stride: float, f: float, alpha: int) -> float:
    j = np.arange(1, int(j_count), dtype=np.float64)
    zero = float(_sz(np.zeros(1), f, alpha)[0])
    last = float(_sz(np.array([j_count / stride]), f, alpha)[0])
    inner = float(np.sum(2.0 * (1.0 - j / m_count) * _sz(j / stride, f, alpha) ** 2))
    return zero**2 + (1.0 - j_count / m_count) * last**2 + inner


def _edf_direct(alpha: int, j_count: float, m_count: float, stride: float, f: float) -> float:
    zero = float(_sz(np.zeros(1), f, alpha)[0])
    return 1.0 / (_basic_sum(j_count, m_count, stride, f, alpha) / (zero**2 * m_count))


def greenhall_edf(alpha: int, m: int, n_phase: int, kind: DeviationKind) -> float:
    """Equivalent degrees of freedom of the ADEV/OADEV/MDEV estimate (Greenhall & Riley 2003)."""
    if alpha not in _TABLE1:
        raise AnalyticsError(f"noise exponent alpha = {alpha} is outside 2..-2")
    modified = kind == "mdev"
    f = 1.0 if modified else float(m)
    stride = float(m) if kind in ("oadev", "mdev") else 1.0
    length = m / f + m * _D
    m_count = 1.0 + math.floor(stride * (n_phase - length) / m)
    if m_count < 1.0:
        raise AnalyticsError(f"averaging factor {m} is too large for {n_phase} phase points")
    j_count = min(m_count, (_D + 1) * stride)
    r = m_count / stride
    if modified:
        if j_count <= _J_MAX:
            return _edf_direct(alpha, j_count, m_count, stride, 1.0)
        if r > _D + 1:
            a0, a1 = _TABLE1[alpha]
            return 1.0 / ((a0 - a1 / r) / r)
        return _edf_direct(alpha, _J_MAX, _J_MAX, _J_MAX / r, 1.0)
    if alpha <= 0:
        if j_count <= _J_MAX:
            f_used = float(m) if m * (_D + 1) <= _J_MAX else math.inf
            return _edf_direct(alpha, j_count, m_count, stride, f_used)
        if r > _D + 1:
            a0, a1 = _TABLE2[alpha]
            return 1.0 / ((a0 - a1 / r) / r)
        return _edf_direct(alpha, _J_MAX, _J_MAX, _J_MAX / r, math.inf)
    if alpha == 1:
        if j_count <= _J_MAX:
            return _edf_direct(1, j_count, m_count, stride, float(m))
        b0, b1 = _TABLE3_D2
        if r > _D + 1:
            a0, a1 = _TABLE2[1]
            return 1.0 / ((a0 - a1 / r) / ((b0 + b1 * math.log(m)) ** 2 * r))
        m_prime = _J_MAX / r
        zero_scale = (b0 + b1 * math.log(m)) ** 2 * _J_MAX
        return 1.0 / (_basic_sum(_J_MAX, _J_MAX, m_prime, m_prime, 1) / zero_scale)
    # alpha = 2, unmodified: closed form when ceil(r) > d, else the direct sum.
    if math.ceil(r) > _D:
        a0 = math.comb(4 * _D, 2 * _D) / math.comb(2 * _D, _D) ** 2
        return 1.0 / ((a0 - (_D / 2.0) / r) / m_count)
    return _edf_direct(2, j_count, m_count, stride, float(m))


def chi2_interval(deviation: float, edf: float, confidence: float) -> tuple[float, float]:
    """The deviation's confidence interval from chi-squared with ``edf`` dof (SP 1065 eq. 45)."""
    low_p = (1.0 - confidence) / 2.0
    chi2_low = float(stats.chi2.ppf(low_p, edf))
    chi2_high = float(stats.chi2.ppf(1.0 - low_p, edf))
    variance = deviation * deviation
    return math.sqrt(edf * variance / chi2_high), math.sqrt(edf * variance / chi2_low)


def allan_deviation(
    values: Sequence[float] | FloatArray,
    rate_hz: float,
    *,
    kind: DeviationKind = "oadev",
    data_type: DataType = "frequency",
    taus: TauSpacing | Sequence[int] = "octave",
    confidence: float = ONE_SIGMA,
    alpha: int | None = None,
) -> StabilityResult:
    """Allan (``adev``), overlapping Allan (``oadev``) or modified Allan (``mdev``) deviation.

    ``values``: frequency-type data (readings averaged over each 1/rate interval) or phase in
    seconds (``data_type="phase"``). ``taus``: a spacing of averaging factors or an explicit list
    of factors m (tau = m / rate). ``alpha``: force the noise type for the confidence intervals
    instead of identifying it.
    """
    array = finite_array(values)
    if not (math.isfinite(rate_hz) and rate_hz > 0.0):
        raise AnalyticsError("the sample rate must be a positive number of hertz")
    if kind not in ("adev", "oadev", "mdev"):
        raise AnalyticsError(f"unknown deviation {kind!r}: adev, oadev or mdev")
    if data_type not in ("frequency", "phase"):
        raise AnalyticsError(f"unknown data type {data_type!r}: frequency or phase")
    if not 0.0 < confidence < 1.0:
        raise AnalyticsError("confidence must lie between 0 and 1")
    if alpha is not None and alpha not in NOISE_NAMES:
        raise AnalyticsError(f"noise exponent alpha = {alpha} is outside 2..-2")
    tau0 = 1.0 / rate_hz
    phase = _to_phase(array, data_type, tau0)
    n_phase = phase.size
    top = max_averaging_factor(n_phase, kind)
    if top < 1:
        raise AnalyticsError(f"{array.size} values are too few for a stability analysis")
    if isinstance(taus, str):
        if taus not in ("octave", "decade", "all"):
            raise AnalyticsError(f"unknown tau spacing {taus!r}: octave, decade or all")
        factors = averaging_factors(n_phase, kind, taus)
    else:
        factors = sorted({int(m) for m in taus})
        if not factors or factors[0] < 1 or factors[-1] > top:
            raise AnalyticsError(f"averaging factors must lie between 1 and {top}")
    identified: dict[int, int | None] = {}
    if alpha is None:
        identified = {m: identify_noise(phase, m) for m in factors}
    last_identified = next(
        (identified[m] for m in reversed(factors) if identified.get(m) is not None), None
    )
    points: list[StabilityPoint] = []
    for m in factors:
        variance, n_terms = _variance(phase, m, tau0, kind)
        deviation = math.sqrt(variance)
        source: AlphaSource
        if alpha is not None:
            noise, source = alpha, "given"
        elif (found := identified[m]) is not None:
            noise, source = found, "identified"
        elif last_identified is not None:
            noise, source = last_identified, "carried"
        else:
            noise, source = 0, "assumed"
        edf = greenhall_edf(noise, m, n_phase, kind)
        low, high = chi2_interval(deviation, edf, confidence)
        points.append(
            StabilityPoint(
                tau=m * tau0,
                m=m,
                deviation=deviation,
                n_terms=n_terms,
                alpha=noise,
                noise=NOISE_NAMES[noise],
                alpha_source=source,
                edf=edf,
                ci_low=low,
                ci_high=high,
            )
        )
    return StabilityResult(
        deviation=kind,
        data_type=data_type,
        rate_hz=rate_hz,
        tau0=tau0,
        n=int(array.size),
        confidence=confidence,
        points=points,
    )
