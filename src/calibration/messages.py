"""What ``etalon calibrate`` prints, in English and Vietnamese."""

from __future__ import annotations

from core.i18n import MessageTable, register

CALIBRATION_MESSAGES: MessageTable = {
    "kind.procedure": {"en": "calibration procedure", "vi": "quy trình hiệu chuẩn"},
    "calibrate.started": {
        "en": "run {run}: {title} — {points} points, UUT {uut} (operator {operator})",
        "vi": "lần hiệu chuẩn {run}: {title} — {points} điểm, thiết bị {uut} "
        "(người thực hiện {operator})",
    },
    "calibrate.resumed": {
        "en": "run {run} resumed at point {point} of {points} ({done} kept)",
        "vi": "tiếp tục lần hiệu chuẩn {run} từ điểm {point}/{points} (giữ {done} điểm)",
    },
    "calibrate.safe_state": {
        "en": "sources to their safe state…",
        "vi": "đưa các nguồn về trạng thái an toàn…",
    },
    "calibrate.safe_state.failed": {
        "en": "SAFE STATE NOT CONFIRMED on {instrument}: {reason} — check the bench by hand",
        "vi": "CHƯA XÁC NHẬN TRẠNG THÁI AN TOÀN của {instrument}: {reason} — kiểm tra bàn "
        "hiệu chuẩn bằng tay",
    },
    "calibrate.identity": {
        "en": "UUT identified: {identity}",
        "vi": "đã nhận dạng thiết bị: {identity}",
    },
    "calibrate.point": {
        "en": "point {i} of {n}: {nominal} {unit}{range}",
        "vi": "điểm {i}/{n}: {nominal} {unit}{range}",
    },
    "calibrate.range": {"en": " (range {range} {unit})", "vi": " (thang {range} {unit})"},
    "calibrate.settling": {
        "en": "  settling… {seconds:.1f} s, slope {slope}, std {std}",
        "vi": "  đang chờ ổn định… {seconds:.1f} s, độ dốc {slope}, độ lệch chuẩn {std}",
    },
    "calibrate.settled": {
        "en": "  settled in {seconds:.1f} s",
        "vi": "  đã ổn định sau {seconds:.1f} s",
    },
    "calibrate.reading": {
        "en": "  reading {k} of {n}",
        "vi": "  lần đọc {k}/{n}",
    },
    "calibrate.result": {
        "en": "  error {error}: {decision}",
        "vi": "  sai số {error}: {decision}",
    },
    "calibrate.point_failed": {
        "en": "  point not measured: {reason}",
        "vi": "  không đo được điểm này: {reason}",
    },
    "calibrate.completed": {
        "en": "run {run} completed: {decision}; record {sha256}",
        "vi": "lần hiệu chuẩn {run} hoàn tất: {decision}; hồ sơ {sha256}",
    },
    "calibrate.interrupted": {
        "en": "run {run} interrupted; resume it with: etalon calibrate resume {run}",
        "vi": "lần hiệu chuẩn {run} bị dừng; tiếp tục bằng: etalon calibrate resume {run}",
    },
    "calibrate.aborted": {
        "en": "run {run} aborted: {reason}; once fixed, resume it with: "
        "etalon calibrate resume {run}",
        "vi": "lần hiệu chuẩn {run} bị hủy: {reason}; khi đã khắc phục, tiếp tục bằng: "
        "etalon calibrate resume {run}",
    },
    "calibrate.published": {
        "en": "the gateway's broker took the record and every reading",
        "vi": "broker của cổng đã nhận hồ sơ và mọi giá trị đo",
    },
    "calibrate.spooled": {
        "en": "the broker is not reachable: {readings} readings and {records} record(s) are "
        "kept in {where} and sent by the next etalon calibrate command",
        "vi": "không kết nối được broker: {readings} giá trị đo và {records} hồ sơ được giữ "
        "tại {where} và sẽ gửi ở lệnh etalon calibrate tiếp theo",
    },
    "calibrate.already_complete": {
        "en": "run {run} is complete (record {sha256}); nothing to resume",
        "vi": "lần hiệu chuẩn {run} đã hoàn tất (hồ sơ {sha256}); không còn gì để tiếp tục",
    },
    "calibrate.unknown_run": {
        "en": "no run {run} in {where}",
        "vi": "không có lần hiệu chuẩn {run} trong {where}",
    },
    "calibrate.no_record": {
        "en": "run {run} is not complete ({status}): it has no record yet",
        "vi": "lần hiệu chuẩn {run} chưa hoàn tất ({status}): chưa có hồ sơ",
    },
    "calibrate.columns": {
        "en": "RUN|PROCEDURE|UUT|STARTED|POINTS|STATUS|DECISION",
        "vi": "LẦN|QUY TRÌNH|THIẾT BỊ|BẮT ĐẦU|SỐ ĐIỂM|TRẠNG THÁI|KẾT LUẬN",
    },
    "calibrate.none": {"en": "no runs yet", "vi": "chưa có lần hiệu chuẩn nào"},
    "calibrate.written": {"en": "{file} written", "vi": "đã ghi {file}"},
    "calibrate.status.running": {"en": "running", "vi": "đang chạy"},
    "calibrate.status.interrupted": {"en": "interrupted", "vi": "bị dừng"},
    "calibrate.status.aborted": {"en": "aborted", "vi": "bị hủy"},
    "calibrate.status.completed": {"en": "completed", "vi": "hoàn tất"},
    "calibrate.bad_uut": {
        "en": "--uut takes KEY=VALUE (serial=MY12345): {text!r}",
        "vi": "--uut nhận KHÓA=GIÁ_TRỊ (serial=MY12345): {text!r}",
    },
    "calibrate.offline_standard": {
        "en": "{where}: the registry could not be asked ({reason}); the standard is checked "
        "when the run starts",
        "vi": "{where}: không hỏi được sổ đăng ký chuẩn ({reason}); chuẩn sẽ được kiểm tra "
        "khi bắt đầu hiệu chuẩn",
    },
}

register(CALIBRATION_MESSAGES)
