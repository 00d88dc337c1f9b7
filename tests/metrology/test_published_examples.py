"""Published worked examples reproduced to their printed digits.

Sources, and how far each number could be checked here (no copy of EA-4/02 or the GUM was
available offline; see each test):

* EA-4/02 M:2022 (and M:1999) Supplement, example S3 "Calibration of a nominal 10 kΩ standard
  resistor". Inputs as the example states them; the result is cross-checked against Metrodata's
  GUM Workbench rendering of the same example (file S03.smu, published on metrodata.de):
  ``Vnom=10000.1780007665``, ``Ustd=0.00832800405259282`` -- our u agrees to 14 digits,
  which proves the reconstructed inputs are the example's.
* EA-4/02 Supplement, example S2 "Calibration of a weight of nominal value 10 kg": inputs and
  printed results from memory of the text (u(δm) = 25 mg/√3 = 14.4 mg, u(m_X) = 29.3 mg,
  U = 59 mg). NOT verified against the EA text: GUM Workbench's rendering (metrodata.de,
  s02_en) evaluates the pooled Type A term as 14.2 mg and prints u = 29.1 mg, U = 58 mg.
* JCGM 100:2008 (GUM) H.1 "End-gauge calibration", first-order budget (Table H.1): u_c = 32 nm,
  ν_eff truncated to 16, t_99(16) = 2.92; cross-checked with GTC's own H.1 example
  (docs/API/GUM_H1.rst: "l=50000838(32)", components 25, 16.599, 6.7, 5.8, 3.9, 2.88679 nm).
* JCGM 100:2008 H.3 "Calibration of a thermometer": the straight-line correction, as GTC's
  GUM_H3 example reproduces it (−0.1712(29) °C, 0.00218(67), r = −0.930, b(30 °C) =
  −0.1494(41) °C, s = 0.0035 °C) -- the polynomial method of metrology.correction.
* GUM Table G.2 / EA-4/02 Table E.1: Student-t coverage factors (also checked against scipy).
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from GTC import dof as gtc_dof
from GTC import reporting, type_a, type_b, ureal
from GTC import uncertainty as gtc_uncertainty
from GTC import value as gtc_value

from metrology import dcc
from metrology.correction import PolynomialCorrection, correction_from_points
from metrology.uncertainty import (
    Budget,
    arcsine,
    coverage_factor,
    normal,
    rectangular,
    round_result,
    standard,
    triangular,
)
from metrology.uncertainty import (
    type_a as type_a_contribution,
)

REL = 1e-12


def printed(value: float, decimals: int) -> float:
    """A number as a table prints it (to ``decimals`` places)."""
    return round(value, decimals)


# -- EA-4/02 S3: 10 kΩ standard resistor ----------------------------------------------------------

# R_X = (R_S + δR_D + δR_TS)·r_C·r − δR_TX
R_S, DR_D, R_C, RATIO = 10_000.053, 0.020, 1.0, 1.000_010_5
U_RATIO = math.sqrt(2.5) * 1e-7 / math.sqrt(5)  # s(r̄) = 0.071×10⁻⁶ with 4 dof


def resistor_budget() -> Budget:
    """EA-4/02 S3, sensitivities the partial derivatives of the model at the estimates."""
    gain = R_C * RATIO
    return Budget(
        quantity="R_X",
        unit="Ω",
        estimate=(R_S + DR_D) * R_C * RATIO,
        contributions=(
            # certificate of the reference: 10 000.053 Ω, U = 5 mΩ (k = 2)
            normal("R_S", 0.005, 2.0, estimate=R_S, sensitivity=gain, unit="Ω"),
            # drift since its last calibration: +20 mΩ within ±10 mΩ
            rectangular("δR_D", 0.010, estimate=DR_D, sensitivity=gain, unit="Ω"),
            # temperature: ±0.055 K × 5×10⁻⁶/K × 10 kΩ = ±2.75 mΩ
            rectangular("δR_TS", 0.00275, sensitivity=gain, unit="Ω"),
            # DMM ratio correction: two readings each within ±0.5×10⁻⁶ -> triangular ±1×10⁻⁶
            triangular("r_C", 1e-6, estimate=R_C, sensitivity=(R_S + DR_D) * RATIO),
            # five observations of the ratio: mean 1.000 010 5, s(r̄) = 0.071×10⁻⁶
            standard(
                "r",
                U_RATIO,
                estimate=RATIO,
                sensitivity=(R_S + DR_D) * R_C,
                dof=4,
                evaluation="A",
            ),
            # the unknown's temperature: ±0.055 K × 10×10⁻⁶/K × 10 kΩ = ±5.5 mΩ
            rectangular("δR_TX", 0.0055, sensitivity=-1.0, unit="Ω"),
        ),
    )


def test_ea402_s3_standard_resistor_printed_digits() -> None:
    result = resistor_budget().evaluate()
    rows = {row.name: row for row in result.contributions}
    milli = {name: printed(row.contribution * 1e3, 1) for name, row in rows.items()}
    # EA-4/02 S3 budget table: u_i(R_X) in mΩ
    assert milli == {"R_S": 2.5, "δR_D": 5.8, "δR_TS": 1.6, "r_C": 4.1, "r": 0.7, "δR_TX": 3.2}
    assert rows["δR_TX"].sensitivity == -1.0
    assert printed(rows["r_C"].standard_uncertainty * 1e6, 2) == 0.41
    assert printed(rows["r"].standard_uncertainty * 1e6, 3) == 0.071
    assert printed(result.estimate, 3) == 10_000.178
    assert printed(result.combined_standard_uncertainty * 1e3, 1) == 8.3
    assert printed(result.coverage_factor, 2) == 2.00
    rounded = result.rounded()
    assert rounded.text == "10000.178 Ω ± 0.017 Ω (k = 2.00)"  # "(10 000.178 ± 0.017) Ω"


def test_ea402_s3_agrees_with_gum_workbench_and_gtc() -> None:
    result = resistor_budget().evaluate()
    # GUM Workbench, S03.smu: Vnom=10000.1780007665 Ustd=0.00832800405259282
    assert result.estimate == pytest.approx(10_000.1780007665, rel=1e-15)
    assert result.combined_standard_uncertainty == pytest.approx(0.00832800405259282, rel=1e-13)
    # GTC evaluates the model equation itself (its own derivatives)
    r_s = ureal(R_S, 0.0025)
    r_d = ureal(DR_D, type_b.uniform(0.010))
    r_ts = ureal(0.0, type_b.uniform(0.00275))
    r_c = ureal(R_C, type_b.triangular(1e-6))
    ratio = ureal(RATIO, U_RATIO, 4)  # mean of five ratio readings (their values not used)
    r_tx = ureal(0.0, type_b.uniform(0.0055))
    r_x = (r_s + r_d + r_ts) * r_c * ratio - r_tx
    assert result.estimate == pytest.approx(gtc_value(r_x), rel=REL)
    assert result.combined_standard_uncertainty == pytest.approx(gtc_uncertainty(r_x), rel=REL)
    assert result.effective_dof == pytest.approx(gtc_dof(r_x), rel=REL)


# -- EA-4/02 S2: 10 kg weight -------------------------------------------------------------------


def test_ea402_s2_weight_printed_digits() -> None:
    """m_X = m_S + δm_D + δm + δm_C + δB (unverified against the EA text: see module doc)."""
    budget = Budget(
        quantity="m_X",
        unit="g",
        contributions=(
            normal("m_S", 0.045, 2.0, estimate=10_000.005, unit="g"),  # U = 45 mg, k = 2
            rectangular("δm_D", 0.015, unit="g"),  # drift: zero within ±15 mg
            type_a_contribution("δm", [0.010, 0.030, 0.020], pooled_sd=0.025, unit="g"),
            rectangular("δm_C", 0.010, unit="g"),  # eccentricity, magnetic: ±10 mg
            rectangular("δB", 0.010, unit="g"),  # air buoyancy: ±1×10⁻⁶ of 10 kg
        ),
    )
    result = budget.evaluate()
    milli = {row.name: printed(row.contribution * 1e3, 1) for row in result.contributions}
    assert milli == {"m_S": 22.5, "δm_D": 8.7, "δm": 14.4, "δm_C": 5.8, "δB": 5.8}
    assert printed(result.estimate, 3) == 10_000.025
    assert printed(result.combined_standard_uncertainty * 1e3, 1) == 29.3
    assert result.rounded().text == "10000.025 g ± 0.059 g (k = 2.00)"  # "10.000 025 kg ± 59 mg"


# -- GUM H.1: end gauge -------------------------------------------------------------------------

L_S = 50_000_623.0  # nm
ALPHA_S, THETA = 11.5e-6, -0.1  # /°C, °C


def end_gauge_budget(p: float = 0.99) -> Budget:
    """GUM H.1, first order: l = l_s + d − l_s(δα·θ + α_s·δθ), in nm."""
    return Budget(
        quantity="l",
        unit="nm",
        estimate=L_S + 215.0,
        coverage_probability=p,
        contributions=(
            standard("l_s", 25.0, estimate=L_S, dof=18),  # calibration certificate
            standard("d̄", 5.8, estimate=215.0, dof=24, evaluation="A"),  # mean of 25 readings
            standard("d1", 3.9, dof=5),  # comparator random effects
            standard("d2", 6.7, dof=8),  # comparator systematic effects
            rectangular("α_s", 2e-6, estimate=ALPHA_S, sensitivity=0.0),  # c = −l_s·δθ = 0
            standard("θ̄", 0.2, estimate=THETA, sensitivity=0.0),  # c = −l_s·δα = 0
            arcsine("Δ", 0.5, sensitivity=0.0),  # cyclic variation of the room: ±0.5 °C
            # δα within ±1×10⁻⁶/°C, reliable to 10 % (ν = 50): c = −l_s·θ
            rectangular("δα", 1e-6, sensitivity=-L_S * THETA, reliability=0.1),
            # δθ within ±0.05 °C, reliable to 50 % (ν = 2): c = −l_s·α_s
            rectangular("δθ", 0.05, sensitivity=-L_S * ALPHA_S, reliability=0.5),
        ),
    )


def test_gum_h1_end_gauge_printed_digits() -> None:
    result = end_gauge_budget().evaluate()
    rows = {row.name: row for row in result.contributions}
    assert rows["δα"].dof == pytest.approx(50.0) and rows["δθ"].dof == pytest.approx(2.0)
    # Table H.1: c_i u(x_i) of δα and δθ; GTC's example prints 2.88679 and 16.599
    assert printed(rows["δα"].contribution, 1) == 2.9
    assert printed(rows["δθ"].contribution, 1) == 16.6
    assert printed(result.combined_standard_uncertainty, 0) == 32  # H.1.5: u_c(l) = 32 nm
    assert 16.0 < result.effective_dof < 17.0 and result.dof_used == 16  # H.1.6: ν_eff = 16
    assert printed(result.coverage_factor, 2) == 2.92  # t_99(16)
    # H.1.6 prints U_99 = 2.92 × (32 nm) = 93 nm from the rounded factors; unrounded it is
    # 92.5 nm, which the GUM's own rule (two digits) writes 92 nm
    assert printed(2.92 * 32, 0) == 93
    assert result.expanded_uncertainty == pytest.approx(92.48, abs=0.01)
    assert printed(result.estimate * 1e-6, 6) == 50.000838  # l = 50.000 838 mm


def test_gum_h1_agrees_with_gtc() -> None:
    d0, d1, d2 = ureal(215, 5.8, 24), ureal(0.0, 3.9, 5), ureal(0.0, 6.7, 8)
    alpha_s = ureal(ALPHA_S, type_b.uniform(2e-6))
    d_alpha = ureal(0.0, type_b.uniform(1e-6), 50)
    d_theta = ureal(0.0, type_b.uniform(0.05), 2)
    theta = ureal(THETA, 0.2) + ureal(0.0, type_b.arcsine(0.5))
    l_s = ureal(L_S, 25, 18)
    length = l_s + (d0 + d1 + d2) - (l_s * d_alpha * theta + l_s * alpha_s * d_theta)
    result = end_gauge_budget().evaluate()
    assert result.estimate == pytest.approx(gtc_value(length), rel=REL)
    assert result.combined_standard_uncertainty == pytest.approx(gtc_uncertainty(length), rel=REL)
    assert result.effective_dof == pytest.approx(gtc_dof(length), rel=REL)
    assert result.coverage_factor == pytest.approx(reporting.k_factor(16, 99), rel=REL)


# -- GUM H.3: thermometer calibration curve -------------------------------------------------------

READINGS = (21.521, 22.012, 22.512, 23.003, 23.507, 23.999, 24.513, 25.002, 25.503, 26.010, 26.511)
CORRECTIONS = (-0.171, -0.169, -0.166, -0.159, -0.164, -0.165, -0.156, -0.157, -0.159, -0.161, -0.160)  # fmt: skip  # noqa: E501


def thermometer() -> PolynomialCorrection:
    """GUM H.3: b = y1 + y2(t − t0), OLS (equal weights, scatter from the residuals)."""
    correction = correction_from_points(
        "thermometer", READINGS, CORRECTIONS, [0.001] * len(READINGS), coverage_factor=1.0,
        method="polynomial", degree=1, weighting="relative", residual_component=False,
        unit="°C",
    )  # fmt: skip
    assert isinstance(correction, PolynomialCorrection)
    return correction


def test_gum_h3_thermometer_printed_digits() -> None:
    correction = thermometer()
    summary = correction.summary(x0=20.0)
    assert summary.coefficients is not None and summary.coefficient_uncertainties is not None
    assert summary.covariance is not None and summary.residual_sd is not None
    (y1, y2), (u1, u2) = summary.coefficients, summary.coefficient_uncertainties
    assert (printed(y1, 4), printed(u1, 4)) == (-0.1712, 0.0029)  # y1 = −0.1712(29) °C
    assert (printed(y2, 5), printed(u2, 5)) == (0.00218, 0.00067)  # y2 = 0.00218(67)
    assert printed(summary.covariance[0][1] / (u1 * u2), 3) == -0.930  # r(y1, y2)
    assert printed(summary.residual_sd, 4) == 0.0035  # s
    assert summary.dof == 9
    b30, u30 = correction.correction_at(30.0)
    assert (printed(b30, 4), printed(u30, 4)) == (-0.1494, 0.0041)  # b(30 °C) = −0.1494(41)
    corrected, u, in_range = correction.apply(30.0)
    assert corrected == pytest.approx(30.0 + b30, rel=REL) and u == pytest.approx(u30, rel=REL)
    assert not in_range  # 30 °C lies beyond the calibrated 21.5 … 26.5 °C


def test_gum_h3_agrees_with_gtc_line_fit() -> None:
    fit = type_a.line_fit([t - 20.0 for t in READINGS], CORRECTIONS)
    summary = thermometer().summary(x0=20.0)
    assert summary.coefficients is not None and summary.coefficient_uncertainties is not None
    assert summary.coefficients[0] == pytest.approx(gtc_value(fit.intercept), rel=REL)
    assert summary.coefficients[1] == pytest.approx(gtc_value(fit.slope), rel=1e-11)
    assert summary.coefficient_uncertainties[0] == pytest.approx(
        gtc_uncertainty(fit.intercept), rel=1e-11
    )
    assert summary.coefficient_uncertainties[1] == pytest.approx(
        gtc_uncertainty(fit.slope), rel=1e-11
    )
    b30 = fit.intercept + fit.slope * 10.0
    assert thermometer().correction_at(30.0)[1] == pytest.approx(gtc_uncertainty(b30), rel=1e-11)


# -- coverage factors -------------------------------------------------------------------------

# GUM Table G.2 (the 95.45 % column is EA-4/02 Table E.1's)
TABLE_G2 = {
    0.90: (6.31, 2.92, 2.35, 2.13, 2.02, 1.94, 1.89, 1.86, 1.83, 1.81),
    0.95: (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23),
    None: (13.97, 4.53, 3.31, 2.87, 2.65, 2.52, 2.43, 2.37, 2.32, 2.28),
    0.99: (63.66, 9.92, 5.84, 4.60, 4.03, 3.71, 3.50, 3.36, 3.25, 3.17),
}
TABLE_G2_LARGE = {  # ν = 20, 50, ∞
    0.90: (1.72, 1.68, 1.645),
    0.95: (2.09, 2.01, 1.960),
    None: (2.13, 2.05, 2.000),
    0.99: (2.85, 2.68, 2.576),
}


@pytest.mark.parametrize("p", list(TABLE_G2))
def test_coverage_factors_of_gum_table_g2(p: float | None) -> None:
    probability = {} if p is None else {"p": p}
    for nu, k in enumerate(TABLE_G2[p], start=1):
        assert printed(coverage_factor(nu, **probability), 2) == k, (p, nu)
    for nu, k in zip((20, 50, math.inf), TABLE_G2_LARGE[p], strict=True):
        digits = 3 if math.isinf(nu) else 2
        assert printed(coverage_factor(nu, **probability), digits) == k, (p, nu)


def test_a_rounded_result_of_a_worked_example() -> None:
    assert round_result(50_000_838.0, 92.48, unit="nm").text == "50000838 nm ± 92 nm"


def test_a_rounded_budget_result_is_what_a_dcc_value_takes() -> None:
    rounded = resistor_budget().evaluate().rounded()
    assert rounded.coverage_probability == Decimal("0.9545")
    value = dcc.Value.of(
        rounded.value,
        "Ω",
        uncertainty=rounded.expanded_uncertainty,
        k=rounded.coverage_factor,
        probability=rounded.coverage_probability,
    )
    assert (value.value, value.unit) == ("10000.178", r"\ohm")
    assert value.uncertainty is not None
    assert (value.uncertainty.value, value.uncertainty.coverage_factor) == ("0.017", "2.00")
    assert value.uncertainty.coverage_probability == "0.9545"
