"""The words of a calibration report and of its DCC, in English and Vietnamese.

Contribution names in a run's budgets are stable keys (``repeatability``, ``uut_resolution``…);
:func:`contribution_label` prints them. Everything else a report prints is here or in
:data:`metrology.labels.LABELS` (decisions, distributions, budget columns).
"""

from __future__ import annotations

from core.i18n import MessageTable, register
from metrology.labels import LABELS, Language

CONTRIBUTIONS: dict[str, dict[Language, str]] = {
    "repeatability": {
        "en": "Repeatability of the indication (Type A)",
        "vi": "Độ lặp lại của số chỉ (loại A)",
    },
    "reference_certificate": {
        "en": "Reference: value and uncertainty from its certificate",
        "vi": "Chuẩn: giá trị và độ không đảm bảo theo giấy chứng nhận",
    },
    "reference_drift": {
        "en": "Reference: drift since its calibration",
        "vi": "Chuẩn: độ trôi kể từ lần hiệu chuẩn",
    },
    "reference_value": {
        "en": "Reference: value in use on the run date (drift fit of its certificates)",
        "vi": "Chuẩn: giá trị sử dụng tại ngày hiệu chuẩn (đường trôi của các giấy chứng nhận)",
    },
    "reference_resolution": {
        "en": "Reference meter: resolution",
        "vi": "Thiết bị chuẩn: độ phân giải",
    },
    "uut_resolution": {
        "en": "Unit under test: resolution",
        "vi": "Thiết bị được hiệu chuẩn: độ phân giải",
    },
    "source_stability": {
        "en": "Source: stability over the point",
        "vi": "Nguồn: độ ổn định trong thời gian đo",
    },
    "temperature": {
        "en": "Temperature: coefficient × deviation from the reference temperature",
        "vi": "Nhiệt độ: hệ số nhiệt × độ lệch so với nhiệt độ chuẩn",
    },
}

WORDS: dict[str, dict[Language, str]] = {
    "report.title": {"en": "Calibration report", "vi": "Báo cáo hiệu chuẩn"},
    "report.run": {"en": "Run", "vi": "Lần hiệu chuẩn"},
    "report.procedure": {"en": "Procedure", "vi": "Quy trình"},
    "report.procedure_hash": {"en": "Procedure SHA-256", "vi": "SHA-256 của quy trình"},
    "report.record_hash": {"en": "Record SHA-256", "vi": "SHA-256 của hồ sơ"},
    "report.laboratory": {"en": "Laboratory", "vi": "Phòng thí nghiệm"},
    "report.customer": {"en": "Customer", "vi": "Khách hàng"},
    "report.location": {"en": "Site", "vi": "Địa điểm"},
    "report.uut": {"en": "Unit under test", "vi": "Thiết bị được hiệu chuẩn"},
    "report.description": {"en": "Description", "vi": "Mô tả"},
    "report.manufacturer": {"en": "Manufacturer", "vi": "Nhà sản xuất"},
    "report.model": {"en": "Model", "vi": "Kiểu"},
    "report.serial": {"en": "Serial number", "vi": "Số sê-ri"},
    "report.firmware": {"en": "Firmware", "vi": "Phần sụn"},
    "report.declared": {"en": "Declared by the operator", "vi": "Do người thực hiện khai báo"},
    "report.identity_read": {
        "en": "Identity read from the instrument (start / end)",
        "vi": "Nhận dạng đọc từ thiết bị (đầu / cuối)",
    },
    "report.identity_none": {
        "en": "the instrument cannot tell its identity",
        "vi": "thiết bị không cho biết nhận dạng",
    },
    "report.specification": {"en": "Specification", "vi": "Đặc tính kỹ thuật"},
    "report.resolution": {"en": "Resolution", "vi": "Độ phân giải"},
    "report.operator": {"en": "Calibrated by", "vi": "Người thực hiện"},
    "report.started": {"en": "Started", "vi": "Bắt đầu"},
    "report.finished": {"en": "Finished", "vi": "Kết thúc"},
    "report.run_date": {
        "en": "Date of the reference's value",
        "vi": "Ngày lấy giá trị của chuẩn",
    },
    "report.reference": {"en": "Reference", "vi": "Chuẩn"},
    "report.reference.meter": {"en": "reference meter", "vi": "thiết bị đo chuẩn"},
    "report.reference.standard": {"en": "registered standard", "vi": "chuẩn đã đăng ký"},
    "report.certificate": {"en": "Certificate", "vi": "Giấy chứng nhận"},
    "report.certificate.line": {
        "en": "{number} issued by {issuer}, calibrated {date}, due {due}",
        "vi": "{number} do {issuer} cấp, hiệu chuẩn ngày {date}, đến hạn {due}",
    },
    "report.certificate.expired": {
        "en": "EXPIRED on the run date (used as the procedure allows)",
        "vi": "ĐÃ HẾT HẠN tại ngày hiệu chuẩn (được dùng theo cho phép của quy trình)",
    },
    "report.value_from": {"en": "Value in use", "vi": "Giá trị sử dụng"},
    "report.instruments": {"en": "Instruments", "vi": "Thiết bị"},
    "report.role.source": {"en": "source", "vi": "nguồn"},
    "report.role.reference": {"en": "reference", "vi": "chuẩn"},
    "report.role.environment": {"en": "environment", "vi": "môi trường"},
    "report.environment": {"en": "Environment", "vi": "Điều kiện môi trường"},
    "report.temperature": {"en": "Temperature", "vi": "Nhiệt độ"},
    "report.humidity": {"en": "Relative humidity", "vi": "Độ ẩm tương đối"},
    "report.env.line": {
        "en": "{mean} {unit} (from {minimum} to {maximum}, {n} readings)",
        "vi": "{mean} {unit} (từ {minimum} đến {maximum}, {n} lần đọc)",
    },
    "report.decision_rule": {"en": "Decision rule", "vi": "Quy tắc ra quyết định"},
    "report.coverage": {
        "en": "Expanded uncertainties at a coverage probability of {p} % (k from Student's t "
        "for the effective degrees of freedom)",
        "vi": "Độ không đảm bảo mở rộng với xác suất phủ {p} % (k theo phân bố Student t với "
        "bậc tự do hiệu dụng)",
    },
    "report.decision": {"en": "Decision", "vi": "Kết luận"},
    "report.decision.incomplete": {
        "en": "Incomplete: a point could not be measured",
        "vi": "Chưa đầy đủ: có điểm không đo được",
    },
    "report.results": {"en": "Results", "vi": "Kết quả"},
    "report.plot": {
        "en": "Error of indication ± U against the tolerance band (± MPE)",
        "vi": "Sai số của số chỉ ± U so với miền dung sai (± MPE)",
    },
    "report.plot.nominal": {"en": "Nominal value", "vi": "Giá trị danh định"},
    "report.plot.error": {"en": "Error", "vi": "Sai số"},
    "report.col.point": {"en": "Point", "vi": "Điểm"},
    "report.col.nominal": {"en": "Nominal", "vi": "Danh định"},
    "report.col.range": {"en": "Range", "vi": "Thang đo"},
    "report.col.reference": {"en": "Reference value", "vi": "Giá trị chuẩn"},
    "report.col.indication": {"en": "Indication (mean)", "vi": "Số chỉ (trung bình)"},
    "report.col.error": {"en": "Error ± U", "vi": "Sai số ± U"},
    "report.col.k": {"en": "k", "vi": "k"},
    "report.col.dof": {"en": "ν_eff", "vi": "ν_eff"},
    "report.col.mpe": {"en": "MPE", "vi": "Sai số cho phép lớn nhất"},
    "report.col.decision": {"en": "Decision", "vi": "Kết luận"},
    "report.failed": {"en": "not measured: {reason}", "vi": "không đo được: {reason}"},
    "report.budgets": {"en": "Uncertainty budgets", "vi": "Bảng ngân sách độ không đảm bảo"},
    "report.budget.point": {
        "en": "Point {index}: {nominal} {unit}",
        "vi": "Điểm {index}: {nominal} {unit}",
    },
    "report.budget.quoted": {"en": "Quoted", "vi": "Giá trị công bố"},
    "report.budget.divisor": {"en": "Divisor", "vi": "Hệ số chia"},
    "report.budget.share": {"en": "Share", "vi": "Tỷ phần"},
    "report.budget.total": {
        "en": "u_c = {uc}, ν_eff = {dof}, k = {k}, U = {U}",
        "vi": "u_c = {uc}, ν_eff = {dof}, k = {k}, U = {U}",
    },
    "report.settling": {
        "en": "settled in {seconds} s",
        "vi": "ổn định sau {seconds} s",
    },
    "report.writes": {"en": "Instrument writes (audit)", "vi": "Lệnh ghi tới thiết bị (kiểm tra)"},
    "report.writes.summary": {
        "en": "{count} writes, {failed} failed",
        "vi": "{count} lệnh ghi, {failed} lệnh lỗi",
    },
    "report.col.instrument": {"en": "Instrument", "vi": "Thiết bị"},
    "report.col.target": {"en": "Target", "vi": "Đại lượng"},
    "report.col.value": {"en": "Value", "vi": "Giá trị"},
    "report.col.sent": {"en": "Sent", "vi": "Đã gửi"},
    "report.col.outcome": {"en": "Outcome", "vi": "Kết quả"},
    "report.notes": {"en": "Notes", "vi": "Ghi chú"},
    "report.software": {"en": "Software", "vi": "Phần mềm"},
    "report.infinite": {"en": "∞", "vi": "∞"},
    "report.none": {"en": "none", "vi": "không có"},
    "report.statement": {
        "en": "The results refer only to the item calibrated, under the conditions stated.",
        "vi": "Các kết quả chỉ áp dụng cho thiết bị được hiệu chuẩn, trong các điều kiện đã nêu.",
    },
    "report.ok": {"en": "confirmed", "vi": "đã xác nhận"},
    "report.write_failed": {"en": "FAILED: {error}", "vi": "LỖI: {error}"},
    "report.purpose.safe_state": {"en": "safe state", "vi": "trạng thái an toàn"},
}


def word(key: str, language: Language = "en", **values: object) -> str:
    """A report word (or a decision/distribution/column label), filled with ``values``."""
    entry = WORDS.get(key) or CONTRIBUTIONS.get(key) or LABELS.get(key)
    text = key if entry is None else entry[language]
    return text.format(**values) if values else text


def contribution_label(name: str, language: Language = "en") -> str:
    """The printed name of a budget row (a key of :data:`CONTRIBUTIONS`, else as given)."""
    entry = CONTRIBUTIONS.get(name)
    return name if entry is None else entry[language]


# The report's words join the one catalogue of what a user reads (budget rows under "budget.").
def _table(entries: dict[str, dict[Language, str]], prefix: str = "") -> MessageTable:
    return {f"{prefix}{key}": {str(lang): text for lang, text in texts.items()}
            for key, texts in entries.items()}  # fmt: skip


register(_table(WORDS))
register(_table(CONTRIBUTIONS, "budget."))
