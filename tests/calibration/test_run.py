"""A procedure run end to end on the simulated bench (over real sockets, on a manual clock): a UUT
of known gain and offset errors, every computed error checked against the truth within its own
expanded uncertainty, every budget rebuilt from the raw readings with GTC, the record, its hash,
its DCC (valid against the shipped XSD) and its report; the sources off at the end."""

from __future__ import annotations

import json
import math
from pathlib import Path

from GTC import dof as gtc_dof
from GTC import reporting, type_a, type_b, ureal, value
from GTC import uncertainty as gtc_uncertainty

from calibration.procedure import load_procedure
from calibration.reference import ResolvedReference
from calibration.state import RunStore
from metrology.certificate.dcc import build_dcc
from metrology.certificate.record import (
    CalibrationRecord,
    PointResult,
    load_record,
    record_sha256,
)
from metrology.certificate.report import render_html
from metrology.dcc import parse, validate
from metrology.specification import parse_specification
from metrology.uncertainty import truncate_dof
from tests.calibration.conftest import (
    UUT_GAIN_PPM,
    UUT_OFFSET,
    Bench,
    bench_config,
    procedure,
    start_bench,
)


def close(a: float, b: float, rel: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)


async def _record(store: RunStore, run: str) -> CalibrationRecord:
    row = await store.get(run)
    assert row is not None and row.record is not None and row.status == "completed"
    record = load_record(row.record)
    assert record_sha256(record) == row.record_sha256
    return record


def gtc_error(record: CalibrationRecord, point: PointResult, reference: ResolvedReference,
              path: Path) -> object:  # fmt: skip
    """The point's error built again with GTC, from its raw readings and the procedure."""
    spec = load_procedure(path).procedure
    differences = [u - r for u, r in zip(point.uut_readings, point.reference_readings, strict=True)]
    d = type_a.estimate(differences)
    reference_mean = math.fsum(point.reference_readings) / len(point.reference_readings)
    correction, u_correction, _ = reference.correction_at(reference_mean)
    c = ureal(correction, u_correction)
    years = reference.years_since_calibration(record.run_date)
    assert reference.drift_per_year is not None and point.reference_value is not None
    drift = parse_specification(reference.drift_per_year, range=point.range, unit="V")
    drift_term = ureal(0.0, type_b.uniform(drift.mpe(point.reference_value) * years))
    point_spec = spec.points[point.index]
    uut_resolution = point_spec.resolution or spec.uut.resolution
    ref_resolution = point_spec.reference_resolution or 1e-7
    temperature = next(e for e in point.environment if e.quantity == "temperature")
    tc = parse_specification("±(0.5 ppm of reading + 0.02 µV)", range=point.range, unit="V")
    deviation = abs(temperature.mean - 23.0) + 0.3
    temperature_term = ureal(0.0, type_b.uniform(tc.mpe(point.reference_value) * deviation))
    stability = next(c for c in point.budget.contributions if c.name == "source_stability")  # type: ignore[union-attr]
    stability_term = ureal(0.0, type_b.uniform(stability.quoted))
    return (
        d
        - c
        - drift_term
        - temperature_term
        + ureal(0.0, type_b.uniform(uut_resolution / 2))
        - ureal(0.0, type_b.uniform(ref_resolution / 2))
        + stability_term
    )


async def test_known_uut_errors_are_found_within_their_uncertainty(tmp_path: Path) -> None:
    bench = await start_bench(
        tmp_path, bench_config(offset=UUT_OFFSET, gain_ppm=UUT_GAIN_PPM, noise=3e-6)
    )
    try:
        path = bench.procedure()
        async with RunStore(tmp_path / "data" / "runs.db") as store:
            run, outcome = await bench.run(store, path)
            assert outcome.status == "completed", outcome
            assert outcome.safe_state_failures == {}
            # every source is in its safe state: the calibrator's output is off
            assert bench.sim.physics.output is False
            assert bench.sim.state()["calibrator"]["output"] is False  # type: ignore[index]
            record = await _record(store, run)
            row = await store.get(run)
            assert row is not None
            reference = ResolvedReference.model_validate(row.reference)
    finally:
        await bench.sim.stop()

    assert [p.nominal for p in record.points] == [0, 5, 10, -10, 1, -1]
    assert all(p.status == "ok" for p in record.points), [p.reason for p in record.points]
    uut_model = bench.sim.dmms["uut-dmm"].meter.error_model("VOLT:DC")
    for point in record.points:
        assert point.error is not None and point.budget is not None
        assert point.reference_value is not None
        # the truth: the UUT's own error model at the value the calibrator really put out
        truth = uut_model.apply(point.reference_value, 0.0) - point.reference_value
        assert math.isclose(truth, UUT_OFFSET + UUT_GAIN_PPM * 1e-6 * point.reference_value)
        U = point.budget.expanded_uncertainty
        assert abs(point.error - truth) <= U, (point.nominal, point.error, truth, U)
        assert U < 20e-6  # and the uncertainty is a useful one, not a wide net
        # the budget's arithmetic against GTC, rebuilt from the raw readings
        y = gtc_error(record, point, reference, path)
        assert (
            close(point.budget.estimate, value(y), rel=1e-12)
            or abs(point.budget.estimate - value(y)) < 1e-18
        )
        assert close(point.budget.combined_standard_uncertainty, gtc_uncertainty(y))
        assert close(point.budget.effective_dof, gtc_dof(y), rel=1e-11)
        k = reporting.k_factor(truncate_dof(gtc_dof(y)), record.coverage_probability * 100)
        assert close(point.budget.coverage_factor, k)
        assert close(U, k * gtc_uncertainty(y))
        # its decision follows from the error, U and the UUT's specification (guarded)
        assert point.verdict is not None and point.tolerance is not None
        inside = abs(point.error) + U <= point.tolerance.mpe
        assert point.verdict.decision == ("pass" if inside else "fail")
        names = [c.name for c in point.budget.contributions]
        assert names == [
            "repeatability",
            "reference_certificate",
            "reference_resolution",
            "source_stability",
            "reference_drift",
            "uut_resolution",
            "temperature",
        ]
    # 120 ppm of gain: far outside ±(35 ppm + 5 ppm of range) at 10 V, within it at 0 V
    decisions = {p.nominal: p.verdict.decision for p in record.points if p.verdict}
    assert decisions[10] == decisions[-10] == "fail" and decisions[0] == "pass"
    assert record.decision == "fail"

    # who, when, where, what: the record holds it all
    assert record.operator == "Nguyễn Văn An"
    assert record.uut.declared == {"serial": "MY12345"}
    assert record.uut.identity_start["serial"] == record.uut.identity_end["serial"] == "MY12345"
    assert record.procedure.sha256 == load_procedure(path).sha256
    assert record.procedure.text == path.read_text(encoding="utf-8")
    assert record.reference.certificate is not None
    assert record.reference.certificate.number == "REF-2026-0117"
    assert {i.role for i in record.instruments} == {"source", "reference", "environment"}
    assert [e.quantity for e in record.environment] == ["temperature", "humidity"]
    assert record.site == "hanoi" and record.agent == "dc-bench-1-cal"
    # every write is in the audit, each confirmed; the end's safe state among them
    assert record.writes and all(w.ok for w in record.writes)
    levels = [w.value for w in record.writes if w.target == "voltage_dc" and w.point is not None]
    assert [v for v in levels if v != 0.0] == [5.0, 10.0, -10.0, 1.0, -1.0]
    assert record.writes[-1].purpose == "safe_state" and record.writes[-1].target == "output"
    assert record.writes[-1].value is False
    # a record read back from its JSON has the same hash (what the gateway checks)
    assert record_sha256(load_record(json.dumps(record.model_dump(mode="json", by_alias=True))))\
        == record_sha256(record)  # fmt: skip

    # its DCC validates against the shipped XSD and holds every point's error with U
    document = build_dcc(record, record_sha256(record))
    validate(document)
    certificate = parse(document)
    errors = [p for p in certificate.points() if "basic_measurementError" in p.ref_types]
    assert len(errors) == 6
    for dcc_point, point in zip(errors, record.points, strict=True):
        assert point.rounded is not None
        assert dcc_point.value.value == str(point.rounded.value)
        assert dcc_point.value.uncertainty is not None
        assert dcc_point.value.uncertainty.value == str(point.rounded.expanded_uncertainty)
    assert certificate.item.serial_number == "MY12345"
    assert certificate.unique_identifier == record.run

    # its report, in both languages
    english = render_html(record, "en", record_sha256(record))
    vietnamese = render_html(record, "vi", record_sha256(record))
    assert "Calibration report" in english and "Báo cáo hiệu chuẩn" in vietnamese
    assert english.count('class="point"') == 6 and "<script" not in english


async def test_a_point_that_cannot_settle_fails_with_the_reason(
    bench: Bench, store: RunStore
) -> None:
    data = procedure(points=[{"nominal": 1, "range": 10}, {"nominal": 2, "range": 10}])
    data["settling"] = data["settling"] | {"timeout_s": 3}
    bench.sim.set_fault("calibrator", "UNSTABLE", "ON")
    run, outcome = await bench.run(store, bench.procedure(data))
    assert outcome.status == "completed"
    assert bench.sim.physics.output is False
    record = await _record(store, run)
    assert record.decision == "incomplete"
    for point in record.points:
        assert point.status == "failed"
        assert point.reason is not None
        assert point.reason.startswith("the reference did not settle within 3 s: |slope|")
        assert point.settling is not None and point.settling.settled is False
    report = render_html(record, "en")
    assert "not measured: the reference did not settle" in report
    validate(build_dcc(record))
