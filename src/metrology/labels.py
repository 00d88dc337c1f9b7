"""The words of budgets and statements of conformity in English and Vietnamese, for reports.

The library's values are stable identifiers (``"conditional_pass"``, ``"rectangular"``); a
report or a page prints them with :func:`label`. These tables are what the calibration report
and the gateway's pages register in the i18n catalogue (``core/i18n.py`` once it lands).
Vietnamese follows the terms of TCVN ISO/IEC 17025 and of the Vietnamese translation of
ILAC-G8 ("quy tắc ra quyết định", "dải bảo vệ").
"""

from __future__ import annotations

from typing import Literal

Language = Literal["en", "vi"]

LABELS: dict[str, dict[Language, str]] = {
    # decisions (ILAC-G8:09/2019 4.2)
    "pass": {"en": "Pass", "vi": "Đạt"},
    "conditional_pass": {"en": "Conditional pass", "vi": "Đạt có điều kiện"},
    "conditional_fail": {"en": "Conditional fail", "vi": "Không đạt có điều kiện"},
    "fail": {"en": "Fail", "vi": "Không đạt"},
    # decision rules
    "simple_acceptance": {"en": "Simple acceptance", "vi": "Chấp nhận đơn giản"},
    "guarded_acceptance": {
        "en": "Guarded acceptance",
        "vi": "Chấp nhận có dải bảo vệ",
    },
    "guarded_rejection": {"en": "Guarded rejection", "vi": "Loại bỏ có dải bảo vệ"},
    "non_binary": {
        "en": "Non-binary statement with guard band",
        "vi": "Tuyên bố không nhị phân có dải bảo vệ",
    },
    # distributions
    "normal": {"en": "normal", "vi": "chuẩn"},
    "rectangular": {"en": "rectangular", "vi": "chữ nhật"},
    "triangular": {"en": "triangular", "vi": "tam giác"},
    "arcsine": {"en": "U-shaped (arcsine)", "vi": "hình chữ U (arcsin)"},
    "student_t": {"en": "Student's t", "vi": "Student t"},
    # evaluations
    "A": {"en": "Type A", "vi": "Loại A"},
    "B": {"en": "Type B", "vi": "Loại B"},
    # budget columns
    "quantity": {"en": "Quantity", "vi": "Đại lượng"},
    "estimate": {"en": "Estimate", "vi": "Ước lượng"},
    "standard_uncertainty": {"en": "Standard uncertainty", "vi": "Độ không đảm bảo chuẩn"},
    "distribution": {"en": "Distribution", "vi": "Phân bố"},
    "sensitivity": {"en": "Sensitivity coefficient", "vi": "Hệ số nhạy"},
    "contribution": {"en": "Uncertainty contribution", "vi": "Thành phần độ không đảm bảo"},
    "dof": {"en": "Degrees of freedom", "vi": "Bậc tự do"},
    "combined_standard_uncertainty": {
        "en": "Combined standard uncertainty",
        "vi": "Độ không đảm bảo chuẩn tổng hợp",
    },
    "effective_dof": {"en": "Effective degrees of freedom", "vi": "Bậc tự do hiệu dụng"},
    "coverage_factor": {"en": "Coverage factor", "vi": "Hệ số phủ"},
    "coverage_probability": {"en": "Coverage probability", "vi": "Xác suất phủ"},
    "expanded_uncertainty": {"en": "Expanded uncertainty", "vi": "Độ không đảm bảo mở rộng"},
    "tolerance": {"en": "Tolerance limits", "vi": "Giới hạn dung sai"},
    "guard_band": {"en": "Guard band", "vi": "Dải bảo vệ"},
    "acceptance_limits": {"en": "Acceptance limits", "vi": "Giới hạn chấp nhận"},
    "false_accept_probability": {
        "en": "Probability of false accept",
        "vi": "Xác suất chấp nhận sai",
    },
    "false_reject_probability": {
        "en": "Probability of false reject",
        "vi": "Xác suất loại bỏ sai",
    },
    "correction": {"en": "Correction", "vi": "Số hiệu chính"},
    "in_range": {"en": "Within the calibrated range", "vi": "Trong phạm vi hiệu chuẩn"},
    "out_of_range": {"en": "Outside the calibrated range", "vi": "Ngoài phạm vi hiệu chuẩn"},
}


def label(key: str, language: Language = "en") -> str:
    """The word for ``key`` in ``language``; an unknown key is returned as it is."""
    entry = LABELS.get(key)
    return key if entry is None else entry[language]
