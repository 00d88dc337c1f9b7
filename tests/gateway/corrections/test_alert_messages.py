"""What people read of the three calibration alert kinds, in English and Vietnamese, with the
numbers behind them."""

from __future__ import annotations

from typing import Any

from gateway.alerts.messages import describe


def alert(kind: str, value: Any, limit: Any, detail: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "value": value, "limit": limit, "unit": "°C", "detail": detail,
            "condition": True, "subject": "lab/bath-1/prt/temperature", "level": "warning",
            "rule_id": "r"}  # fmt: skip


def test_range_expired_and_conformity_read_in_both_languages() -> None:
    out_of_range = alert(
        "calibration_range", 120.0, 100.01,
        {"certificate": "PRT-A", "low": 0.02, "high": 100.01, "corrected": 119.99,
         "u_corrected": 0.02},
    )  # fmt: skip
    assert describe(out_of_range, "en") == (
        "indication 120 °C outside the range 0.02 … 100.01 °C calibrated by certificate "
        "PRT-A (corrected 119.99 ± 0.02 °C, uncertain)"
    )
    assert describe(out_of_range, "vi").startswith("số chỉ 120 °C nằm ngoài phạm vi")
    expired = alert(
        "calibration_expired", 30.0, None, {"certificate": "PRT-B", "due": "2026-12-25"}
    )
    assert describe(expired, "en") == (
        "certificate PRT-B was due on 2026-12-25: the corrected value is uncertain"
    )
    assert "đã hết hạn ngày 2026-12-25" in describe(expired, "vi")
    verdict = {
        "decision": "fail", "judged": "value", "measured": 119.99, "expanded_uncertainty": 0.04,
        "coverage_factor": 2.0, "tolerance_lower": 0.0, "tolerance_upper": 100.0,
        "acceptance_lower": 0.04, "acceptance_upper": 99.96,
        "rule": "guarded acceptance, w = 1·U (ILAC-G8:09/2019 4.2.2)",
        "conformance_probability": 0.0,
    }  # fmt: skip
    text = describe(alert("conformity", 119.99, 100.0, verdict), "en")
    assert text == (
        "does not conform: corrected value 119.99 °C with U = 0.04 °C (k = 2) against 0 … "
        "100 °C, acceptance 0.04 … 99.96 °C (guarded acceptance, w = 1·U (ILAC-G8:09/2019 "
        "4.2.2)); conformance probability 0"
    )
    assert describe(alert("conformity", 119.99, 100.0, verdict), "vi").startswith(
        "không phù hợp: giá trị đã hiệu chính 119.99 °C"
    )
