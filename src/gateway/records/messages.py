"""What the records' verification and commands say, in English and Vietnamese (the table the
i18n catalogue registers; the ledger library's own findings come from ``ledger.MESSAGES``)."""

from __future__ import annotations

from collections.abc import Mapping

from core.i18n import MessageTable
from ledger import MESSAGES as LEDGER_MESSAGES
from ledger import render

RECORDS_MESSAGES: MessageTable = {
    "records.edited": {
        "en": "{table} {key} differs from what the ledger recorded of it (entry {seq}): "
        "changed outside etalon",
        "vi": "{table} {key} khác với nội dung sổ cái đã ghi (mục {seq}): đã bị sửa bên ngoài "
        "etalon",
    },
    "records.edited.unrecorded": {
        "en": "{table} {key} differs from what its audit trail records: changed outside etalon",
        "vi": "{table} {key} khác với nhật ký kiểm tra của nó: đã bị sửa bên ngoài etalon",
    },
    "records.inserted.unrecorded": {
        "en": "{table} {key} is not recorded in the ledger: added outside etalon",
        "vi": "{table} {key} không có trong sổ cái: đã được thêm bên ngoài etalon",
    },
    "records.inserted": {
        "en": "{table} {key} is recorded twice (entry {seq}): added outside etalon",
        "vi": "{table} {key} được ghi hai lần (mục {seq}): đã được thêm bên ngoài etalon",
    },
    "records.deleted": {
        "en": "{table} {key}, recorded in the ledger (entry {seq}), is missing: deleted "
        "outside etalon",
        "vi": "{table} {key}, đã được ghi trong sổ cái (mục {seq}), không còn nữa: đã bị xóa "
        "bên ngoài etalon",
    },
    "records.deleted.unrecorded": {
        "en": "{table} {key} is missing: deleted outside etalon",
        "vi": "{table} {key} không còn nữa: đã bị xóa bên ngoài etalon",
    },
    "records.moved.unsigned": {
        "en": "entries {from} to {to} were written to the ledger outside etalon (no signed "
        "checkpoint covers them)",
        "vi": "các mục từ {from} đến {to} đã được ghi vào sổ cái bên ngoài etalon (không có "
        "điểm chốt có chữ ký nào bao phủ chúng)",
    },
    "records.moved.shorter": {
        "en": "the ledger was cut back to {count} entries while the gateway held {head}",
        "vi": "sổ cái đã bị cắt còn {count} mục trong khi cổng đang giữ {head} mục",
    },
    "records.moved.replaced": {
        "en": "the ledger's last entry {seq} was replaced outside etalon",
        "vi": "mục cuối {seq} của sổ cái đã bị thay thế bên ngoài etalon",
    },
    "records.no_ledger": {
        "en": "the record store has no ledger yet: it starts when the gateway (or a command that "
        "changes records) first opens it",
        "vi": "kho hồ sơ chưa có sổ cái: sổ cái bắt đầu khi cổng (hoặc một lệnh thay đổi hồ sơ) "
        "mở kho lần đầu",
    },
    "records.verify.ok": {
        "en": "{ledger}: OK — {entries} entries, {signed} covered by a signed checkpoint, "
        "{unsigned} not yet signed; {tables} live tables agree with the ledger",
        "vi": "{ledger}: HỢP LỆ — {entries} mục, {signed} mục được điểm chốt có chữ ký bao "
        "phủ, {unsigned} mục chưa được ký; {tables} bảng dữ liệu khớp với sổ cái",
    },
    "records.verify.broken": {
        "en": "{ledger}: BROKEN ({kind}) — {what}",
        "vi": "{ledger}: BỊ PHÁ VỠ ({kind}) — {what}",
    },
    "records.verify.more": {
        "en": "{count} more finding(s):",
        "vi": "thêm {count} phát hiện:",
    },
    "records.key.rotated": {
        "en": "key rotated: {old} → {new} (entry {seq}); the new public key is in {public}",
        "vi": "đã đổi khóa: {old} → {new} (mục {seq}); khóa công khai mới ở {public}",
    },
    "records.key.env_rotated": {
        "en": "key rotated: {old} → {new} (entry {seq}); set {env} to the new key before the "
        "gateway starts again",
        "vi": "đã đổi khóa: {old} → {new} (mục {seq}); đặt {env} thành khóa mới trước khi khởi "
        "động lại cổng",
    },
    "records.alert.integrity": {
        "en": "the record store is not what was recorded: {what}",
        "vi": "kho hồ sơ không còn đúng như đã ghi: {what}",
    },
}


def text_of(code: str, params: Mapping[str, object], lang: str = "en") -> str:
    """A records or ledger message in ``lang``."""
    texts = RECORDS_MESSAGES.get(code)
    if texts is None:
        if code in LEDGER_MESSAGES:
            return render(code, params, lang)
        return code
    return texts.get(lang, texts["en"]).format_map(dict(params))
