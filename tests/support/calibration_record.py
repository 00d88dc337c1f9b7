"""A calibration record built from the metrology library alone (no bench): what the gateway, the
report and the DCC tests start from."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from metrology.certificate.record import (
    CalibrationRecord,
    CertificateInfo,
    EnvironmentStats,
    InstrumentUsed,
    Party,
    PointResult,
    ProcedureInfo,
    ReferenceInfo,
    Settling,
    ToleranceBand,
    UnitUnderTest,
    WriteEntry,
    overall_decision,
)
from metrology.conformity import DecisionRule, Tolerance, decide
from metrology.uncertainty import Budget, rectangular, resolution, standard, type_a

T0 = int(dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC).timestamp() * 1e9)
PROCEDURE_TEXT = "format: etalon.procedure/1\nid: dmm-dcv\n"


def point(index: int, nominal: float, error: float, failed: str | None = None) -> PointResult:
    """A point whose UUT reads ``error`` high (or a failed one)."""
    started = T0 + index * 10_000_000_000
    if failed is not None:
        return PointResult(
            index=index, nominal=nominal, range=10.0, unit="V", status="failed", reason=failed,
            started_ns=started, finished_ns=started + 5_000_000_000,
            settling=Settling(settled=False, seconds=5.0, readings=25, slope_per_s=3e-4,
                              std=1e-4),
        )  # fmt: skip
    reference = [nominal + 1e-7 * k for k in (0, 1, -1, 2, -2, 0, 1, -1)]
    uut = [
        r + error + 1e-6 * k for r, k in zip(reference, (1, -1, 2, -2, 0, 1, 0, -1), strict=True)
    ]
    differences = [u - r for u, r in zip(uut, reference, strict=True)]
    budget = Budget(
        quantity="error",
        unit="V",
        contributions=(
            type_a("repeatability", differences, unit="V", note="8 paired differences"),
            standard("reference_certificate", 5e-7, estimate=-2e-7, sensitivity=-1.0, unit="V"),
            resolution("reference_resolution", 1e-7, sensitivity=-1.0, unit="V"),
            rectangular("source_stability", 0.0, unit="V"),
            resolution("uut_resolution", 1e-5, unit="V"),
            rectangular("temperature", 2e-7, sensitivity=-1.0, unit="V"),
        ),
    ).evaluate()
    mpe = abs(nominal) * 3.5e-5 + 10 * 5e-6
    verdict = decide(
        budget.estimate,
        budget.expanded_uncertainty,
        Tolerance(lower=-mpe, upper=mpe),
        DecisionRule(kind="guarded_acceptance"),
        budget.coverage_factor,
    )
    indication = sum(uut) / len(uut)
    return PointResult(
        index=index, nominal=nominal, range=10.0, unit="V", status="ok", started_ns=started,
        finished_ns=started + 8_000_000_000,
        settling=Settling(settled=True, seconds=1.4, readings=12, slope_per_s=1e-7, std=5e-7),
        uut_readings=tuple(uut), reference_readings=tuple(reference), indication=indication,
        reference_value=indication - budget.estimate, error=budget.estimate, budget=budget,
        rounded=budget.rounded(), tolerance=ToleranceBand(lower=-mpe, upper=mpe, mpe=mpe),
        verdict=verdict,
        environment=(
            EnvironmentStats(quantity="temperature", instrument="room", channel="temperature",
                             unit="°C", mean=23.4, minimum=23.3, maximum=23.5, n=2),
        ),
    )  # fmt: skip


def sample_record(
    *,
    run: str = "20261120-020000-ab12",
    site: str = "hanoi",
    agent: str = "dc-bench-1-cal",
    points: tuple[PointResult, ...] | None = None,
    **changes: Any,
) -> CalibrationRecord:
    """A completed run of four points (one failed unless ``points`` says otherwise)."""
    chosen = points or (
        point(0, 0.0, 1.5e-5),
        point(1, 5.0, 1.2e-4),
        point(2, 10.0, 2.2e-4),
        point(3, -10.0, 0.0, failed="the reference did not settle within 30 s"),
    )
    data: dict[str, Any] = {
        "run": run,
        "site": site,
        "agent": agent,
        "bench_agent": "dc-bench-1",
        "operator": "Nguyễn Văn An",
        "started_ns": T0,
        "finished_ns": T0 + 60_000_000_000,
        "run_date": dt.date(2026, 11, 20),
        "language": "vi",
        "laboratory": Party(name="Example Calibration Laboratory", email="lab@example.org",
                            city="Hanoi", country_code="VN", code="VILAS 000"),
        "procedure": ProcedureInfo(
            id="dmm-dcv", title="DC voltage of a 6½-digit DMM", version="1.0",
            sha256=hashlib.sha256(PROCEDURE_TEXT.encode()).hexdigest(), text=PROCEDURE_TEXT,
        ),
        "uut": UnitUnderTest(
            instrument="uut-dmm", channel="uut-dmm-dcv", description="Digital multimeter",
            declared={"serial": "MY12345"},
            identity_start={"manufacturer": "ETALON-SIM", "model": "DMM6500-SIM",
                            "serial": "MY12345", "firmware": "1.9.4"},
            identity_end={"manufacturer": "ETALON-SIM", "model": "DMM6500-SIM",
                          "serial": "MY12345", "firmware": "1.9.4"},
            specification="±(0.0035 % of reading + 0.0005 % of range)", resolution=1e-5,
            unit="V",
        ),
        "instruments": (
            InstrumentUsed(role="source", name="calibrator", protocol="visa",
                           identity={"manufacturer": "ETALON-SIM", "serial": "CAL-0001"}),
            InstrumentUsed(role="reference", name="reference", protocol="visa",
                           identity={"manufacturer": "ETALON-SIM", "serial": "REF-0001"}),
        ),
        "reference": ReferenceInfo(
            kind="meter", name="reference", description="Reference DMM, 8½ digits",
            certificate=CertificateInfo(number="REF-2026-0117", issuer="VMI",
                                        calibration_date=dt.date(2026, 6, 1),
                                        due_date=dt.date(2027, 6, 1), source="procedure"),
            value_from="reading corrected by its certificate",
        ),
        "decision_rule": DecisionRule(kind="guarded_acceptance"),
        "coverage_probability": 0.9544997361036416,
        "points": chosen,
        "environment": (
            EnvironmentStats(quantity="temperature", instrument="room", channel="temperature",
                             unit="°C", mean=23.4, minimum=23.3, maximum=23.5, n=8),
        ),
        "decision": overall_decision(chosen),
        "writes": (
            WriteEntry(instrument="calibrator", target="voltage_dc", value=5.0, unit="V",
                       sent=("SOUR:VOLT 5",), confirmed=("+0,\"No error\"",), started_ns=T0,
                       finished_ns=T0 + 1_000_000, ok=True, purpose="write", point=1),
            WriteEntry(instrument="calibrator", target="output", value=False, unit="",
                       sent=("OUTP 0",), confirmed=("OUTP? 0",), started_ns=T0 + 2,
                       finished_ns=T0 + 3, ok=True, purpose="safe_state"),
        ),
        "notes": (),
        "software": "etalon test",
    }  # fmt: skip
    data.update(changes)
    return CalibrationRecord(**data)
