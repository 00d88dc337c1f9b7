"""Messages of ``etalon standards`` that a metrologist reads, in English and Vietnamese."""

from __future__ import annotations

from core.i18n import MessageTable, register

STANDARDS_MESSAGES: MessageTable = {
    "standards.none": {
        "en": "no standards registered",
        "vi": "chưa có chuẩn nào được đăng ký",
    },
    "standards.columns": {
        "en": "ID|KIND|NOMINAL|OWNER|CERTS|CALIBRATED|DUE|STATE|STATUS",
        "vi": "MÃ|LOẠI|DANH ĐỊNH|PHÒNG SỞ HỮU|SỐ GCN|NGÀY HIỆU CHUẨN|ĐẾN HẠN|TÌNH TRẠNG|TRẠNG THÁI",
    },
    "standards.due.none": {"en": "no certificate", "vi": "chưa có giấy chứng nhận"},
    "standards.due.no_date": {"en": "no due date", "vi": "không có ngày đến hạn"},
    "standards.due.overdue": {
        "en": "OVERDUE by {days} d",
        "vi": "QUÁ HẠN {days} ngày",
    },
    "standards.due.in": {"en": "due in {days} d", "vi": "đến hạn sau {days} ngày"},
    "standards.file.ok": {"en": "hash OK", "vi": "mã băm khớp"},
    "standards.dcc.imported": {
        "en": "certificate {number} of {issuer} registered for {standard} (id {id}), "
        "{points} result(s)",
        "vi": "đã đăng ký giấy chứng nhận {number} của {issuer} cho chuẩn {standard} (mã {id}), "
        "{points} kết quả",
    },
    "standards.dcc.imported_new": {
        "en": "standard {standard} registered from the DCC's item; certificate {number} of "
        "{issuer} registered for it (id {id}), {points} result(s)",
        "vi": "đã đăng ký chuẩn {standard} từ thiết bị trong DCC; đã đăng ký giấy chứng nhận "
        "{number} của {issuer} cho chuẩn này (mã {id}), {points} kết quả",
    },
    "standards.dcc.exported": {
        "en": "certificate {number} written to {out} as a DCC 3.1.2 document ({size} bytes, "
        "not signed: standards.dcc.signing is not configured)",
        "vi": "đã ghi giấy chứng nhận {number} vào {out} dưới dạng DCC 3.1.2 ({size} byte, "
        "chưa ký: chưa cấu hình standards.dcc.signing)",
    },
    "standards.dcc.exported_signed": {
        "en": "certificate {number} written to {out} as a signed DCC 3.1.2 document ({size} bytes)",
        "vi": "đã ghi giấy chứng nhận {number} vào {out} dưới dạng DCC 3.1.2 có chữ ký "
        "({size} byte)",
    },
    "standards.dcc.no_dcc": {
        "en": "no DCC (entered by hand)",
        "vi": "không có DCC (nhập tay)",
    },
    "standards.dcc.signature.valid": {
        "en": "signature valid: signed by {signer} (checked {checked})",
        "vi": "chữ ký hợp lệ: ký bởi {signer} (kiểm tra lúc {checked})",
    },
    "standards.dcc.signature.invalid": {
        "en": "signature INVALID: {reason} (checked {checked})",
        "vi": "chữ ký KHÔNG HỢP LỆ: {reason} (kiểm tra lúc {checked})",
    },
    "standards.dcc.signature.untrusted": {
        "en": "signature not trusted: signed by {signer}; {reason} (checked {checked})",
        "vi": "chữ ký không được tin cậy: ký bởi {signer}; {reason} (kiểm tra lúc {checked})",
    },
    "standards.dcc.signature.unsigned": {
        "en": "not signed (checked {checked})",
        "vi": "không có chữ ký (kiểm tra lúc {checked})",
    },
    "standards.dcc.accepted_by": {
        "en": "; registered anyway by {who}",
        "vi": "; vẫn được đăng ký bởi {who}",
    },
    "standards.file.mismatch": {
        "en": "HASH MISMATCH: the file changed",
        "vi": "MÃ BĂM KHÔNG KHỚP: tệp đã bị thay đổi",
    },
    "standards.file.missing": {"en": "FILE MISSING", "vi": "KHÔNG TÌM THẤY TỆP"},
    "standards.trace.complete": {
        "en": "complete, up to national standards",
        "vi": "đầy đủ, đến chuẩn quốc gia",
    },
    "standards.trace.open": {
        "en": "INCOMPLETE, open ends: {ends}",
        "vi": "CHƯA ĐẦY ĐỦ, các nhánh chưa đến chuẩn quốc gia: {ends}",
    },
    "standards.import.done": {
        "en": "{file}: imported {standards} standard(s), {certificates} certificate(s); "
        "updated {updated_standards} standard(s), {updated_certificates} certificate(s); "
        "{unchanged} unchanged",
        "vi": "{file}: đã nhập {standards} chuẩn, {certificates} giấy chứng nhận; "
        "đã cập nhật {updated_standards} chuẩn, {updated_certificates} giấy chứng nhận; "
        "{unchanged} mục không thay đổi",
    },
    "standards.import.dry_run": {
        "en": "{file}: would import {standards} standard(s), {certificates} certificate(s); "
        "would update {updated_standards} standard(s), {updated_certificates} "
        "certificate(s); {unchanged} unchanged (nothing was changed)",
        "vi": "{file}: sẽ nhập {standards} chuẩn, {certificates} giấy chứng nhận; "
        "sẽ cập nhật {updated_standards} chuẩn, {updated_certificates} giấy chứng nhận; "
        "{unchanged} mục không thay đổi (chưa thay đổi gì)",
    },
    "standards.import.refused": {
        "en": "{file}: nothing imported:",
        "vi": "{file}: không nhập mục nào:",
    },
}

register(STANDARDS_MESSAGES)
