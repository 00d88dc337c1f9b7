"""The result of one calibration point: reference value, indication, error, GUM budget, verdict.

The model of a point (``docs/calibration.md`` § budget):

With a **reference meter**, the UUT and the meter are read in pairs, back to back; with
``d_i = I_uut,i − I_ref,i``::

    E = d̄ − C_ref(Ī_ref) − δ_drift − δ_T + δ_res,uut − δ_res,ref + δ_stab

- ``d̄`` — mean of the n paired differences; Type A, ``s(d)/√n``, ν = n − 1
  (``repeatability``). Pairing removes what the source's noise does to both meters alike;
- ``C_ref`` — the meter's certificate correction at its mean indication (interpolated), with
  its U/k (``reference_certificate``);
- ``δ_drift`` — the meter's drift since its calibration: estimate 0, rectangular of half-width
  ``drift_per_year(x) × years`` (``reference_drift``; only when the procedure declares it);
- ``δ_T`` — the temperature effect on the reference: estimate 0 (no correction is applied),
  rectangular of half-width ``TC(x) × (|T̄ − T_ref| + u_sensor)`` from the room channel's mean
  over the point (``temperature``; only with a temperature coefficient);
- ``δ_res`` — rounding of each meter's indication: rectangular, half-width resolution/2
  (``uut_resolution``, ``reference_resolution``);
- ``δ_stab`` — the source moving between the two readings of a pair: rectangular, half-width
  ``|slope| × mean delay`` of the reference readings' fitted slope (``source_stability``).

With a **registered standard** (no source), ``E = Ī_uut − V_ref − δ_drift − δ_T + δ_res,uut``
with ``Ī_uut`` Type A (``repeatability``) and ``V_ref`` the value in use on the run date: the
prediction of the drift fit of its certificates (``reference_value``, ν of the fit) or the
latest certificate (``reference_certificate``) with the declared drift (``reference_drift``).

The budget is evaluated by :mod:`metrology.uncertainty` (ν_eff by Welch–Satterthwaite, k from
Student's t at the procedure's coverage probability, truncated ν); the conformity by
:mod:`metrology.conformity` against ± MPE of the UUT's specification at the indication.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from calibration.procedure import PointSpec, Procedure
from calibration.reference import ResolvedReference
from calibration.settling import fit_window
from metrology.certificate.record import EnvironmentStats, Settling, ToleranceBand
from metrology.conformity import Tolerance, Verdict, decide
from metrology.specification import parse_specification
from metrology.uncertainty import (
    Budget,
    BudgetResult,
    Contribution,
    rectangular,
    resolution,
    standard,
    type_a,
)


@dataclass(frozen=True)
class PointData:
    """What was measured at a point: readings with their times, the environment."""

    uut: Sequence[float]
    uut_ns: Sequence[int]
    reference: Sequence[float] = ()
    reference_ns: Sequence[int] = ()
    environment: Sequence[EnvironmentStats] = ()
    settling: Settling | None = None


@dataclass(frozen=True)
class PointComputation:
    """The computed point (fields of the record's PointResult)."""

    indication: float
    reference_value: float
    error: float
    budget: BudgetResult
    tolerance: ToleranceBand
    notes: tuple[str, ...]


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _temperature(data: PointData) -> EnvironmentStats | None:
    return next((e for e in data.environment if e.quantity == "temperature"), None)


def _years(reference: ResolvedReference, run_date: dt.date) -> float:
    return reference.years_since_calibration(run_date)


def contributions(
    procedure: Procedure,
    point: PointSpec,
    reference: ResolvedReference,
    data: PointData,
    run_date: dt.date,
) -> tuple[list[Contribution], float, tuple[str, ...]]:
    """The budget's rows for a point, the reference value, and notes."""
    unit = procedure.uut.unit
    notes: list[str] = []
    rows: list[Contribution] = []
    n = len(data.uut)
    if reference.kind == "meter":
        if len(data.reference) != n:
            raise ValueError("a reference meter's readings are paired with the UUT's")
        differences = [u - r for u, r in zip(data.uut, data.reference, strict=True)]
        rows.append(
            type_a(
                "repeatability",
                differences,
                unit=unit,
                note=f"{n} paired differences UUT − reference",
            )
        )
        reference_mean = _mean(data.reference)
        correction, u_correction, in_range = reference.correction_at(reference_mean)
        if not in_range:
            notes.append(
                f"point {point.nominal:g} {unit}: outside the reference certificate's points "
                "(correction extrapolated)"
            )
        certificate = reference.certificate
        rows.append(
            standard(
                "reference_certificate",
                u_correction,
                estimate=correction,
                sensitivity=-1.0,
                unit=unit,
                note=f"certificate {certificate.number}, U/k" if certificate else "U/k",
            )
        )
        reference_value = reference_mean + correction
        rows.append(
            resolution(
                "reference_resolution",
                point.reference_resolution or _reference_resolution(procedure),
                sensitivity=-1.0,
                unit=unit,
            )
        )
        delays = [
            (u_ns - r_ns) / 1e9 for u_ns, r_ns in zip(data.uut_ns, data.reference_ns, strict=True)
        ]
        slope = _slope(data.reference_ns, data.reference)
        rows.append(
            rectangular(
                "source_stability",
                slope * abs(_mean(delays)),
                unit=unit,
                note=f"|slope| {slope:.3g} {unit}/s × delay {abs(_mean(delays)):.3g} s",
            )
        )
    else:
        assert reference.value is not None and reference.standard_uncertainty is not None
        rows.append(type_a("repeatability", list(data.uut), unit=unit, note=f"{n} readings"))
        name = "reference_value" if reference.from_fit else "reference_certificate"
        rows.append(
            standard(
                name,
                reference.standard_uncertainty,
                estimate=reference.value,
                sensitivity=-1.0,
                unit=unit,
                dof=math.inf if reference.dof is None else reference.dof,
                note=reference.value_from,
            )
        )
        reference_value = reference.value
    if reference.drift_per_year is not None:
        drift = parse_specification(reference.drift_per_year, range=point.range, unit=unit)
        years = _years(reference, run_date)
        half_width = drift.mpe(reference_value) * years
        rows.append(
            rectangular(
                "reference_drift",
                half_width,
                sensitivity=-1.0,
                unit=unit,
                note=f"{reference.drift_per_year} per year × {years:.3f} years",
            )
        )
    rows.append(
        resolution("uut_resolution", point.resolution or procedure.uut.resolution, unit=unit)
    )
    environment = procedure.environment
    if environment.temperature_coefficient is not None:
        temperature = _temperature(data)
        if temperature is None:
            raise ValueError("the temperature was not recorded at this point")
        coefficient = parse_specification(
            environment.temperature_coefficient, range=point.range, unit=unit
        )
        deviation = abs(temperature.mean - environment.reference_temperature)
        deviation += environment.temperature_uncertainty
        rows.append(
            rectangular(
                "temperature",
                coefficient.mpe(reference_value) * deviation,
                sensitivity=-1.0,
                unit=unit,
                note=f"{environment.temperature_coefficient} per K × {deviation:.2f} K",
            )
        )
    return rows, reference_value, tuple(notes)


def _slope(times_ns: Sequence[int], values: Sequence[float]) -> float:
    """|slope| of the readings against time, unit per second."""
    if len(values) >= 3:
        return fit_window(list(times_ns), list(values)).slope_per_s
    span = (times_ns[-1] - times_ns[0]) / 1e9
    return abs(values[-1] - values[0]) / span if span > 0 else 0.0


def _reference_resolution(procedure: Procedure) -> float:
    reference = procedure.reference
    value = getattr(reference, "resolution", None)
    assert isinstance(value, float)
    return value


def compute_point(
    procedure: Procedure,
    point: PointSpec,
    reference: ResolvedReference,
    data: PointData,
    run_date: dt.date,
) -> PointComputation:
    """The point's result (see the module doc)."""
    rows, reference_value, notes = contributions(procedure, point, reference, data, run_date)
    budget = Budget(
        quantity="error",
        unit=procedure.uut.unit,
        contributions=tuple(rows),
        coverage_probability=procedure.coverage_probability,
    ).evaluate()
    indication = _mean(data.uut)
    specification = procedure.specification_at(point)
    band = specification.tolerance(indication)
    assert band.lower is not None and band.upper is not None
    return PointComputation(
        indication=indication,
        reference_value=reference_value,
        error=budget.estimate,
        budget=budget,
        tolerance=ToleranceBand(lower=band.lower, upper=band.upper, mpe=band.upper),
        notes=notes,
    )


def verdict_of(procedure: Procedure, computation: PointComputation) -> Verdict:
    """The statement of conformity of a computed point under the procedure's rule."""
    return decide(
        computation.error,
        computation.budget.expanded_uncertainty,
        Tolerance(lower=computation.tolerance.lower, upper=computation.tolerance.upper),
        procedure.decision_rule,
        computation.budget.coverage_factor,
    )
