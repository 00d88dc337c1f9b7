"""Everything the hub says to a person, in English and Vietnamese (registered with core.i18n).

The verifier's own codes (``segment.*``, ``edited.*``, …) come from ``ledger.MESSAGES``,
registered here too, so a refusal is rendered from its code and values in either language.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from core.i18n import LANGUAGES, MessageTable, register
from ledger import MESSAGES as LEDGER_MESSAGES

HUB_MESSAGES: MessageTable = {
    # -- refusals the hub itself makes (the verifier's are ledger.MESSAGES) -------------------
    "hub.refusal.malformed": {
        "en": "the push is not a ledger segment: {error}",
        "vi": "dữ liệu đẩy lên không phải là một đoạn sổ cái: {error}",
    },
    "hub.refusal.revoked": {
        "en": "lab {lab} is revoked ({reason}): its pushes are refused",
        "vi": "phòng thí nghiệm {lab} đã bị thu hồi ({reason}): dữ liệu đẩy lên bị từ chối",
    },
    "hub.refusal.too_large": {
        "en": "the push is larger than {limit} bytes: send smaller segments",
        "vi": "dữ liệu đẩy lên lớn hơn {limit} byte: hãy gửi các đoạn nhỏ hơn",
    },
    "hub.reason.forged": {"en": "forged signature", "vi": "chữ ký giả mạo"},
    "hub.reason.wrong_key": {"en": "wrong key", "vi": "sai khóa"},
    "hub.reason.wrong_ledger": {"en": "another lab's ledger", "vi": "sổ cái của nơi khác"},
    "hub.reason.edited": {"en": "edited entry", "vi": "mục bị sửa"},
    "hub.reason.gap": {"en": "entries missing", "vi": "thiếu mục"},
    "hub.reason.inserted": {"en": "inserted entry", "vi": "mục bị chèn"},
    "hub.reason.reordered": {"en": "out of order", "vi": "sai thứ tự"},
    "hub.reason.truncated": {"en": "truncated", "vi": "bị cắt bớt"},
    "hub.reason.rewritten": {"en": "rewritten history", "vi": "lịch sử bị viết lại"},
    "hub.reason.replayed": {"en": "replayed checkpoint", "vi": "điểm chốt bị phát lại"},
    "hub.reason.unsigned": {"en": "not signed", "vi": "chưa được ký"},
    "hub.reason.stale": {"en": "stale segment", "vi": "đoạn đã cũ"},
    "hub.reason.malformed": {"en": "malformed", "vi": "sai định dạng"},
    "hub.reason.revoked": {"en": "lab revoked", "vi": "phòng thí nghiệm bị thu hồi"},
    "hub.reason.too_large": {"en": "too large", "vi": "quá lớn"},
    # -- the command line ---------------------------------------------------------------------
    "hub.cli.config_required": {
        "en": "-c/--config is required (the hub's hub.yaml)",
        "vi": "cần -c/--config (tệp hub.yaml của trung tâm)",
    },
    "hub.cli.enrolled": {
        "en": "lab {lab} enrolled with key {key}\n"
        "push token (shown once — give it to the lab for its gateway's hub.token):\n{token}",
        "vi": "đã đăng ký phòng thí nghiệm {lab} với khóa {key}\n"
        "mã đẩy dữ liệu (chỉ hiện một lần — trao cho phòng thí nghiệm để đặt vào hub.token "
        "của cổng):\n{token}",
    },
    "hub.cli.token": {
        "en": "new push token of lab {lab} (the old one no longer works):\n{token}",
        "vi": "mã đẩy dữ liệu mới của phòng thí nghiệm {lab} (mã cũ không còn dùng được):\n{token}",
    },
    "hub.cli.revoked": {
        "en": "lab {lab} revoked: its later pushes are refused",
        "vi": "đã thu hồi phòng thí nghiệm {lab}: các lần đẩy sau sẽ bị từ chối",
    },
    "hub.cli.migrated": {
        "en": "applied {count} migration(s): {names}",
        "vi": "đã áp dụng {count} bản chuyển đổi: {names}",
    },
    "hub.cli.up_to_date": {
        "en": "the database schema is up to date (version {version})",
        "vi": "lược đồ cơ sở dữ liệu đã ở phiên bản mới nhất ({version})",
    },
    "hub.cli.no_labs": {"en": "no lab is enrolled", "vi": "chưa có phòng thí nghiệm nào đăng ký"},
    "hub.cli.labs_header": {
        "en": "{lab:<24} {name:<32} {province:<16} {entries:>9} {state}",
        "vi": "{lab:<24} {name:<32} {province:<16} {entries:>9} {state}",
    },
    "hub.cli.labs_columns": {
        "en": "lab|name|province|entries|state",
        "vi": "phòng thí nghiệm|tên|tỉnh/thành|số mục|trạng thái",
    },
    "hub.cli.link_added": {"en": "link {id} added", "vi": "đã thêm liên kết {id}"},
    "hub.cli.link_withdrawn": {"en": "link {id} withdrawn", "vi": "đã rút liên kết {id}"},
    "hub.cli.no_links": {"en": "no traceability link", "vi": "không có liên kết chuẩn nào"},
    "hub.cli.audit_ok": {
        "en": "the hub's audit chain verifies: {count} entries, signed up to {signed}",
        "vi": "chuỗi nhật ký của trung tâm hợp lệ: {count} mục, đã ký đến {signed}",
    },
    "hub.cli.audit_broken": {
        "en": "the hub's audit chain is broken: {finding}",
        "vi": "chuỗi nhật ký của trung tâm bị hỏng: {finding}",
    },
    # -- refusals of a command or an API call (hub.errors) ---------------------------------------
    "hub.error.not_enrolled": {
        "en": "lab {lab} is not enrolled",
        "vi": "phòng thí nghiệm {lab} chưa được đăng ký",
    },
    "hub.error.enrolled_already": {
        "en": "lab {lab} is enrolled already",
        "vi": "phòng thí nghiệm {lab} đã được đăng ký rồi",
    },
    "hub.error.revoked_no_token": {
        "en": "lab {lab} is revoked: it gets no token",
        "vi": "phòng thí nghiệm {lab} đã bị thu hồi: không được cấp mã đẩy dữ liệu",
    },
    "hub.error.revoked_already": {
        "en": "lab {lab} was revoked already",
        "vi": "phòng thí nghiệm {lab} đã bị thu hồi từ trước",
    },
    "hub.error.lab_id": {
        "en": "{lab!r} is not a lab id (letters, digits, . _ : -)",
        "vi": "{lab!r} không phải mã phòng thí nghiệm (gồm chữ, số, . _ : -)",
    },
    "hub.error.no_link": {
        "en": "no traceability link {id}",
        "vi": "không có liên kết chuẩn {id}",
    },
    "hub.error.link_from_certificate": {
        "en": "link {id} comes from a lab's certificate: the lab's next certificate replaces it",
        "vi": "liên kết {id} lấy từ giấy chứng nhận hiệu chuẩn của một phòng thí nghiệm: giấy "
        "chứng nhận tiếp theo của phòng đó sẽ thay thế nó",
    },
    "hub.error.withdrawn_already": {
        "en": "link {id} was withdrawn already",
        "vi": "liên kết {id} đã được rút lại từ trước",
    },
    "hub.error.lab_standard": {
        "en": "{option}: give LAB/STANDARD, not {text!r}",
        "vi": "{option}: cần dạng LAB/STANDARD (mã phòng thí nghiệm/mã chuẩn), không phải {text!r}",
    },
    "hub.error.date": {
        "en": "{option}: {text!r} is not a date YYYY-MM-DD",
        "vi": "{option}: {text!r} không phải ngày dạng YYYY-MM-DD",
    },
    "hub.error.key_unreadable": {
        "en": "--key {file}: cannot read it: {reason}",
        "vi": "--key {file}: không đọc được tệp: {reason}",
    },
    "hub.error.key_invalid": {
        "en": "--key {file}: not an Ed25519 public key: {reason}",
        "vi": "--key {file}: không phải khóa công khai Ed25519: {reason}",
    },
    "hub.error.not_migrated": {
        "en": "the hub's database is not migrated: run `etalon hub migrate -c CONFIG` first",
        "vi": "cơ sở dữ liệu của trung tâm chưa được chuyển đổi: hãy chạy "
        "`etalon hub migrate -c CONFIG` trước",
    },
    # -- pages --------------------------------------------------------------------------------
    "hub.ui.title": {
        "en": "National measurement registry",
        "vi": "Cơ sở dữ liệu đo lường quốc gia",
    },
    "hub.ui.nav.search": {"en": "Search", "vi": "Tra cứu"},
    "hub.ui.nav.labs": {"en": "Laboratories", "vi": "Phòng thí nghiệm"},
    "hub.ui.nav.refusals": {"en": "Refused pushes", "vi": "Dữ liệu bị từ chối"},
    "hub.ui.nav.signin": {"en": "Sign in", "vi": "Đăng nhập"},
    "hub.ui.nav.signout": {"en": "Sign out", "vi": "Đăng xuất"},
    "hub.ui.lang.switch": {"en": "Tiếng Việt", "vi": "English"},
    "hub.ui.signed_in": {"en": "{name} ({role})", "vi": "{name} ({role})"},
    "hub.ui.role.public": {"en": "public", "vi": "công chúng"},
    "hub.ui.role.viewer": {"en": "viewer", "vi": "người xem"},
    "hub.ui.role.operator": {"en": "operator", "vi": "vận hành"},
    "hub.ui.role.admin": {"en": "administrator", "vi": "quản trị"},
    "hub.ui.yes": {"en": "yes", "vi": "có"},
    "hub.ui.no": {"en": "no", "vi": "không"},
    "hub.ui.none": {"en": "None.", "vi": "Không có."},
    "hub.ui.any": {"en": "any", "vi": "tất cả"},
    "hub.ui.search.title": {
        "en": "Instruments and standards of every lab",
        "vi": "Thiết bị đo và chuẩn đo lường của mọi phòng thí nghiệm",
    },
    "hub.ui.search.submit": {"en": "Search", "vi": "Tìm"},
    "hub.ui.search.nothing": {"en": "Nothing matches.", "vi": "Không có kết quả phù hợp."},
    "hub.ui.search.next": {"en": "Next page", "vi": "Trang sau"},
    "hub.ui.export.json": {"en": "Export JSON", "vi": "Xuất JSON"},
    "hub.ui.export.csv": {"en": "Export CSV", "vi": "Xuất CSV"},
    "hub.ui.field.q": {"en": "Serial or model contains", "vi": "Số sê-ri hoặc kiểu có chứa"},
    "hub.ui.field.type": {"en": "Type", "vi": "Loại"},
    "hub.ui.field.kind": {"en": "Kind", "vi": "Chủng loại"},
    "hub.ui.field.lab": {"en": "Lab", "vi": "Phòng thí nghiệm"},
    "hub.ui.field.name": {"en": "Name", "vi": "Tên"},
    "hub.ui.field.province": {"en": "Province", "vi": "Tỉnh/thành"},
    "hub.ui.field.status": {"en": "Status", "vi": "Tình trạng"},
    "hub.ui.field.calibration": {"en": "Calibration", "vi": "Hiệu chuẩn"},
    "hub.ui.field.manufacturer": {"en": "Manufacturer", "vi": "Nhà sản xuất"},
    "hub.ui.field.model": {"en": "Model", "vi": "Kiểu"},
    "hub.ui.field.serial": {"en": "Serial", "vi": "Số sê-ri"},
    "hub.ui.field.firmware": {"en": "Firmware", "vi": "Phần sụn"},
    "hub.ui.field.description": {"en": "Description", "vi": "Mô tả"},
    "hub.ui.field.nominal": {"en": "Nominal value", "vi": "Giá trị danh định"},
    "hub.ui.field.due": {"en": "Due", "vi": "Đến hạn"},
    "hub.ui.field.calibrated": {"en": "Calibrated", "vi": "Ngày hiệu chuẩn"},
    "hub.ui.field.item": {"en": "Item", "vi": "Đối tượng"},
    "hub.ui.field.entries": {"en": "Entries held", "vi": "Số mục đã nhận"},
    "hub.ui.field.last_push": {"en": "Last push", "vi": "Lần đẩy gần nhất"},
    "hub.ui.field.refusals": {"en": "Refused pushes", "vi": "Lần bị từ chối"},
    "hub.ui.field.key": {"en": "Key in force", "vi": "Khóa đang hiệu lực"},
    "hub.ui.field.head": {"en": "Head of the chain", "vi": "Đầu chuỗi"},
    "hub.ui.field.enrolled": {"en": "Enrolled", "vi": "Ngày đăng ký"},
    "hub.ui.field.state": {"en": "State", "vi": "Trạng thái"},
    "hub.ui.field.time": {"en": "Time", "vi": "Thời điểm"},
    "hub.ui.field.reason": {"en": "Reason", "vi": "Lý do"},
    "hub.ui.field.range": {"en": "Entries", "vi": "Các mục"},
    "hub.ui.field.message": {"en": "Detail", "vi": "Chi tiết"},
    "hub.ui.field.number": {"en": "Certificate", "vi": "Giấy chứng nhận"},
    "hub.ui.field.issuer": {"en": "Issued by", "vi": "Nơi cấp"},
    "hub.ui.field.value": {"en": "Value", "vi": "Giá trị"},
    "hub.ui.field.uncertainty": {"en": "U (k)", "vi": "U (k)"},
    "hub.ui.field.signature": {"en": "Signature", "vi": "Chữ ký"},
    "hub.ui.field.file": {"en": "File", "vi": "Tệp"},
    "hub.ui.field.kind_entries": {"en": "Kind of entry", "vi": "Loại mục"},
    "hub.ui.field.count": {"en": "Count", "vi": "Số lượng"},
    "hub.ui.field.seq": {"en": "No.", "vi": "STT"},
    "hub.ui.field.subject": {"en": "Subject", "vi": "Đối tượng"},
    "hub.ui.field.actor": {"en": "By", "vi": "Người thực hiện"},
    "hub.ui.field.source": {"en": "Source", "vi": "Nguồn"},
    "hub.ui.field.added": {"en": "Added", "vi": "Ngày thêm"},
    "hub.ui.field.run": {"en": "Run", "vi": "Lượt"},
    "hub.ui.field.procedure": {"en": "Procedure", "vi": "Quy trình"},
    "hub.ui.field.decision": {"en": "Decision", "vi": "Kết luận"},
    "hub.ui.field.first_seen": {"en": "First seen", "vi": "Thấy lần đầu"},
    "hub.ui.type.instrument": {"en": "instrument", "vi": "thiết bị đo"},
    "hub.ui.type.standard": {"en": "standard", "vi": "chuẩn"},
    "hub.ui.cal.ok": {"en": "in date", "vi": "còn hạn"},
    "hub.ui.cal.due": {"en": "due soon", "vi": "sắp đến hạn"},
    "hub.ui.cal.overdue": {"en": "overdue", "vi": "quá hạn"},
    "hub.ui.cal.unknown": {"en": "unknown", "vi": "chưa rõ"},
    "hub.ui.labs.title": {
        "en": "Enrolled laboratories",
        "vi": "Các phòng thí nghiệm đã đăng ký",
    },
    "hub.ui.labs.standards": {"en": "Standards", "vi": "Chuẩn"},
    "hub.ui.labs.instruments": {"en": "Instruments", "vi": "Thiết bị đo"},
    "hub.ui.lab.active": {"en": "active", "vi": "đang hoạt động"},
    "hub.ui.lab.revoked": {"en": "revoked", "vi": "đã thu hồi"},
    "hub.ui.lab.revoked_because": {
        "en": "Revoked on {date}: {reason}",
        "vi": "Đã thu hồi ngày {date}: {reason}",
    },
    "hub.ui.lab.keys": {"en": "Ledger keys", "vi": "Khóa sổ cái"},
    "hub.ui.lab.kinds": {"en": "Entries by kind", "vi": "Các mục theo loại"},
    "hub.ui.lab.recent": {"en": "Latest entries", "vi": "Các mục mới nhất"},
    "hub.ui.lab.graph": {"en": "Traceability graph", "vi": "Sơ đồ liên kết chuẩn"},
    "hub.ui.key.enrolled": {"en": "enrolled", "vi": "khi đăng ký"},
    "hub.ui.key.rotation": {"en": "key rotation", "vi": "đổi khóa"},
    "hub.ui.standard.title": {"en": "Standard {id}", "vi": "Chuẩn {id}"},
    "hub.ui.standard.certificates": {"en": "Certificates", "vi": "Giấy chứng nhận"},
    "hub.ui.standard.dcc": {"en": "DCC as received", "vi": "DCC như đã nhận"},
    "hub.ui.standard.not_held": {"en": "not received yet", "vi": "chưa nhận được"},
    "hub.ui.standard.traceability": {"en": "Traceability", "vi": "Liên kết chuẩn"},
    "hub.ui.standard.evaluation": {
        "en": "Latest stability and drift evaluation",
        "vi": "Đánh giá độ ổn định và độ trôi gần nhất",
    },
    "hub.ui.standard.history": {"en": "Ledger entries", "vi": "Các mục sổ cái"},
    "hub.ui.instrument.title": {"en": "Instrument {key}", "vi": "Thiết bị đo {key}"},
    "hub.ui.instrument.identities": {"en": "Identity history", "vi": "Lịch sử nhận dạng"},
    "hub.ui.instrument.calibrations": {"en": "Calibrations", "vi": "Các lần hiệu chuẩn"},
    "hub.ui.graph.title": {"en": "Traceability of {lab}", "vi": "Liên kết chuẩn của {lab}"},
    "hub.ui.graph.complete": {
        "en": "Every chain reaches a BIPM key comparison or CMC over valid links.",
        "vi": "Mọi chuỗi đều đạt tới một so sánh then chốt hoặc CMC của BIPM qua các liên kết "
        "còn hiệu lực.",
    },
    "hub.ui.graph.broken": {
        "en": "The chain is broken: see the highlighted links and standards.",
        "vi": "Chuỗi liên kết chuẩn bị đứt: xem các liên kết và chuẩn được đánh dấu.",
    },
    "hub.ui.graph.empty": {"en": "No standard to draw.", "vi": "Không có chuẩn nào để vẽ."},
    "hub.ui.graph.until": {"en": "until {date}", "vi": "đến {date}"},
    "hub.ui.graph.truncated": {
        "en": "The graph is cut at {nodes} standards.",
        "vi": "Sơ đồ được cắt ở {nodes} chuẩn.",
    },
    "hub.ui.link.ok": {"en": "valid link", "vi": "liên kết còn hiệu lực"},
    "hub.ui.link.expired": {"en": "expired", "vi": "hết hạn"},
    "hub.ui.link.missing": {"en": "missing", "vi": "thiếu"},
    "hub.ui.link.revoked": {"en": "revoked", "vi": "bị thu hồi"},
    "hub.ui.node.standard": {"en": "standard", "vi": "chuẩn"},
    "hub.ui.node.national": {"en": "national standard", "vi": "chuẩn quốc gia"},
    "hub.ui.node.kcdb_comparison": {
        "en": "BIPM key comparison",
        "vi": "so sánh then chốt BIPM",
    },
    "hub.ui.node.cmc": {"en": "CMC (BIPM KCDB)", "vi": "CMC (BIPM KCDB)"},
    "hub.ui.node.unresolved": {"en": "not known at the hub", "vi": "không có tại trung tâm"},
    "hub.ui.refusals.title": {
        "en": "Pushes the hub refused",
        "vi": "Các lần đẩy dữ liệu bị trung tâm từ chối",
    },
    "hub.ui.signin.title": {"en": "Sign in", "vi": "Đăng nhập"},
    "hub.ui.signin.prompt": {
        "en": "Paste the staff token the hub's administrator gave you.",
        "vi": "Dán mã truy cập mà quản trị viên của trung tâm đã cấp cho bạn.",
    },
    "hub.ui.signin.token": {"en": "Token", "vi": "Mã truy cập"},
    "hub.ui.signin.refused": {"en": "This token was refused.", "vi": "Mã truy cập bị từ chối."},
    "hub.ui.error.signin": {
        "en": "Sign in to see this page.",
        "vi": "Hãy đăng nhập để xem trang này.",
    },
    "hub.ui.error.forbidden": {
        "en": "Your role may not see this page.",
        "vi": "Vai trò của bạn không được xem trang này.",
    },
    "hub.ui.error.not_found": {"en": "Not found: {reason}", "vi": "Không tìm thấy: {reason}"},
    "hub.ui.error.invalid": {
        "en": "Invalid request: {reason}",
        "vi": "Yêu cầu không hợp lệ: {reason}",
    },
}

register(LEDGER_MESSAGES)
register(HUB_MESSAGES)
_TEMPLATES: dict[str, Mapping[str, str]] = {**LEDGER_MESSAGES, **HUB_MESSAGES}


class _Keep(dict[str, Any]):
    """Values for a template; a placeholder without a value stays as it is."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def message(code: str, params: Mapping[str, Any], lang: str = "en") -> str:
    """A refusal's (or any registered) message in ``lang``; never raises on odd values."""
    templates = _TEMPLATES.get(code)
    if templates is None:
        return code
    text = templates.get(lang, templates["en"])
    try:
        return string.Formatter().vformat(text, (), _Keep(params))
    except (IndexError, ValueError):
        return text


def ui(key: str, lang: str, /, **values: Any) -> str:
    """A text of the hub's pages or commands in ``lang``, formatted with ``values``."""
    templates = _TEMPLATES[key]
    return templates.get(lang, templates["en"]).format(**values)


def messages(code: str, params: Mapping[str, Any]) -> dict[str, str]:
    """A message in every language."""
    return {lang: message(code, params, lang) for lang in LANGUAGES}
