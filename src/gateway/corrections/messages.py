"""What calibrated instruments say to people, in English and Vietnamese (CLI, API errors)."""

from __future__ import annotations

from core.i18n import MessageTable, register

CORRECTIONS_MESSAGES: MessageTable = {
    # errors (code → text; the API answers the English text and the code)
    "corrections.error.no_dcc": {
        "en": "{file}: not a usable DCC: {reason}",
        "vi": "{file}: không phải DCC dùng được: {reason}",
    },
    "corrections.error.no_table": {
        "en": "certificate {number} has no calibration table (points with an indication and "
        "an error, a correction or a reference value with U)",
        "vi": "chứng chỉ {number} không có bảng hiệu chuẩn (các điểm có số chỉ và sai số, "
        "số hiệu chính hoặc giá trị chuẩn kèm U)",
    },
    "corrections.error.table": {
        "en": "certificate {number}: {reason}",
        "vi": "chứng chỉ {number}: {reason}",
    },
    "corrections.error.signature": {
        "en": "the DCC's signature is invalid: {reason} (nothing was registered; "
        "--accept-unsigned registers it with this verdict)",
        "vi": "chữ ký của DCC không hợp lệ: {reason} (chưa đăng ký gì; "
        "--accept-unsigned đăng ký nó kèm kết luận này)",
    },
    "corrections.error.duplicate": {
        "en": "certificate {number} of {issuer} is already registered (id {id})",
        "vi": "chứng chỉ {number} của {issuer} đã được đăng ký (mã {id})",
    },
    "corrections.error.no_certificate": {
        "en": "no instrument certificate {id}",
        "vi": "không có chứng chỉ thiết bị {id}",
    },
    "corrections.error.no_channel": {
        "en": "channel {channel} has not been declared by its agent",
        "vi": "kênh {channel} chưa được tác tử của nó khai báo",
    },
    "corrections.error.no_serial": {
        "en": "instrument {instrument} has reported no serial number: the certificate's item "
        "serial {certificate_serial} cannot be checked",
        "vi": "thiết bị {instrument} chưa báo số sê-ri: không thể đối chiếu số sê-ri "
        "{certificate_serial} của chứng chỉ",
    },
    "corrections.error.certificate_no_serial": {
        "en": "certificate {number} names no serial number of its item",
        "vi": "chứng chỉ {number} không nêu số sê-ri của thiết bị",
    },
    "corrections.error.serial_mismatch": {
        "en": "serial mismatch: instrument {instrument} reports serial {instrument_serial}, "
        "certificate {number} is for serial {certificate_serial}",
        "vi": "sai số sê-ri: thiết bị {instrument} báo số sê-ri {instrument_serial}, "
        "chứng chỉ {number} dành cho số sê-ri {certificate_serial}",
    },
    "corrections.error.which_table": {
        "en": "certificate {number} has {count} tables in {unit}: choose one with --table "
        "({tables})",
        "vi": "chứng chỉ {number} có {count} bảng theo {unit}: chọn một bảng bằng --table "
        "({tables})",
    },
    "corrections.error.no_such_table": {
        "en": "certificate {number} has no table {table} (tables: {tables})",
        "vi": "chứng chỉ {number} không có bảng {table} (các bảng: {tables})",
    },
    "corrections.error.unit": {
        "en": "channel {channel} reads {channel_unit}; table {table} of certificate {number} "
        "is in {table_unit}",
        "vi": "kênh {channel} đo theo {channel_unit}; bảng {table} của chứng chỉ {number} "
        "theo {table_unit}",
    },
    "corrections.error.method": {
        "en": "channel {channel} cannot be corrected with table {table} of certificate "
        "{number}: {reason}",
        "vi": "kênh {channel} không thể hiệu chính bằng bảng {table} của chứng chỉ "
        "{number}: {reason}",
    },
    "corrections.error.not_linked": {
        "en": "channel {channel} has no certificate linked",
        "vi": "kênh {channel} chưa được liên kết với chứng chỉ nào",
    },
    "corrections.error.already_linked": {
        "en": "channel {channel} is already corrected by table {table} of certificate {number}",
        "vi": "kênh {channel} đã được hiệu chính bằng bảng {table} của chứng chỉ {number}",
    },
    "corrections.error.path": {
        "en": "{path!r} is not SITE/AGENT/INSTRUMENT/CHANNEL (names of letters, digits, _ . -)",
        "vi": "{path!r} không có dạng SITE/AGENT/INSTRUMENT/CHANNEL (tên gồm chữ, số, _ . -)",
    },
    "corrections.error.due": {
        "en": "due date {due!r}: {reason}",
        "vi": "ngày hết hạn {due!r}: {reason}",
    },
    "corrections.error.at_past": {
        "en": "{at} is in the past (now {now}): a link changes only from now on",
        "vi": "{at} đã qua (bây giờ là {now}): liên kết chỉ thay đổi từ nay về sau",
    },
    "corrections.error.before_start": {
        "en": "the link in force on {channel} starts at {start}: it cannot end at {at}",
        "vi": "liên kết đang hiệu lực của {channel} bắt đầu lúc {start}: không thể kết thúc "
        "lúc {at}",
    },
    "corrections.error.file": {
        "en": "cannot read {file}: {reason}",
        "vi": "không đọc được {file}: {reason}",
    },
    "corrections.error.size": {
        "en": "a DCC may have at most {mib} MiB",
        "vi": "một DCC tối đa {mib} MiB",
    },
    # CLI output
    "corrections.imported": {
        "en": "certificate {number} of {issuer} registered as instrument certificate {id}: item "
        "{manufacturer} {model}, serial {serial}; {tables} table(s); due {due}",
        "vi": "đã đăng ký chứng chỉ {number} của {issuer} làm chứng chỉ thiết bị {id}: thiết bị "
        "{manufacturer} {model}, số sê-ri {serial}; {tables} bảng; hết hạn {due}",
    },
    "corrections.signature": {
        "en": "signature: {status} {reason}",
        "vi": "chữ ký: {status} {reason}",
    },
    "corrections.linked": {
        "en": "{channel}: corrected by table {table} ({name}) of certificate {number} "
        "(id {id}) from {from_}",
        "vi": "{channel}: được hiệu chính bằng bảng {table} ({name}) của chứng chỉ {number} "
        "(mã {id}) từ {from_}",
    },
    "corrections.replaced": {
        "en": "  replaces certificate {number} (id {id}), in force until {until}",
        "vi": "  thay cho chứng chỉ {number} (mã {id}), có hiệu lực đến {until}",
    },
    "corrections.unlinked": {
        "en": "{channel}: certificate {number} no longer corrects it from {until}",
        "vi": "{channel}: chứng chỉ {number} thôi hiệu chính kênh này từ {until}",
    },
    "corrections.list.header": {
        "en": "INSTRUMENT|SERIAL|CHANNEL|CERTIFICATE|TABLE|RANGE|DUE",
        "vi": "THIẾT BỊ|SỐ SÊ-RI|KÊNH|CHỨNG CHỈ|BẢNG|PHẠM VI|HẾT HẠN",
    },
    "corrections.list.none": {
        "en": "no calibrated instrument yet",
        "vi": "chưa có thiết bị nào được hiệu chuẩn",
    },
    "corrections.show.instrument": {
        "en": "instrument {instrument}: {manufacturer} {model}, serial {serial}",
        "vi": "thiết bị {instrument}: {manufacturer} {model}, số sê-ri {serial}",
    },
    "corrections.show.links": {"en": "calibration links:", "vi": "liên kết hiệu chuẩn:"},
    "corrections.show.link": {
        "en": "  {channel}: certificate {number} (id {id}) table {table}, {from_} → {until}",
        "vi": "  {channel}: chứng chỉ {number} (mã {id}) bảng {table}, {from_} → {until}",
    },
    "corrections.show.certificates": {
        "en": "certificates for serial {serial}:",
        "vi": "các chứng chỉ cho số sê-ri {serial}:",
    },
    "corrections.show.certificate": {
        "en": "  {id}: {number} of {issuer}, calibrated {date}, due {due}, sha256 {sha256}",
        "vi": "  {id}: {number} của {issuer}, hiệu chuẩn ngày {date}, hết hạn {due}, "
        "sha256 {sha256}",
    },
    "corrections.show.table": {
        "en": "    table {index} ({name}), {kind}, {unit}, {low} … {high}, {points} points",
        "vi": "    bảng {index} ({name}), {kind}, {unit}, {low} … {high}, {points} điểm",
    },
    "corrections.show.none": {
        "en": "no instrument {instrument}",
        "vi": "không có thiết bị {instrument}",
    },
    "corrections.now": {"en": "now", "vi": "nay"},
    "corrections.no_due": {"en": "no due date", "vi": "không có hạn"},
    "corrections.in_force": {"en": "in force", "vi": "đang hiệu lực"},
    "corrections.config_required": {
        "en": "the gateway's config is required (-c FILE)",
        "vi": "cần tệp cấu hình của cổng (-c FILE)",
    },
    # reasons stored with readings (the record is English; these are for people)
    "corrections.reason.range": {
        "en": "calibration_range: indication {value} outside the calibrated range "
        "[{low}, {high}] of certificate {number}",
        "vi": "calibration_range: số chỉ {value} nằm ngoài phạm vi hiệu chuẩn "
        "[{low}, {high}] của chứng chỉ {number}",
    },
    "corrections.reason.expired": {
        "en": "calibration_expired: certificate {number} was due on {due}",
        "vi": "calibration_expired: chứng chỉ {number} đã hết hạn ngày {due}",
    },
}

register(CORRECTIONS_MESSAGES)
