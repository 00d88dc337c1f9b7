"""Vietnamese of the ``etalon`` command line's English texts: argparse's own messages and every
``help=``/``description=`` of every command (registered in :mod:`core.i18n` keyed by the English
text; ``tests/app/test_vietnamese.py`` fails on a text missing here)."""

from __future__ import annotations

from core.i18n import register_texts

ARGPARSE: dict[str, str] = {
    "usage: ": "cách dùng: ",
    "positional arguments": "đối số vị trí",
    "options": "tùy chọn",
    "show this help message and exit": "hiện trợ giúp này rồi thoát",
    "show program's version number and exit": "hiện số phiên bản rồi thoát",
    "%(prog)s: error: %(message)s\n": "%(prog)s: lỗi: %(message)s\n",
    "the following arguments are required: %s": "thiếu các đối số bắt buộc: %s",
    "invalid choice: %(value)r (choose from %(choices)s)": (
        "lựa chọn không hợp lệ: %(value)r (chọn trong %(choices)s)"
    ),
    "argument %(argument_name)s: %(message)s": "đối số %(argument_name)s: %(message)s",
    "unrecognized arguments: %s": "đối số không nhận ra: %s",
    "expected one argument": "cần đúng một đối số",
    "expected at most one argument": "cần nhiều nhất một đối số",
    "expected at least one argument": "cần ít nhất một đối số",
    "expected %s argument": "cần %s đối số",
    "expected %s arguments": "cần %s đối số",
    "invalid %(type)s value: %(value)r": "giá trị %(type)s không hợp lệ: %(value)r",
    "not allowed with argument %s": "không dùng được cùng đối số %s",
    "one of the arguments %s is required": "cần một trong các đối số %s",
    "ambiguous option: %(option)s could match %(matches)s": (
        "tùy chọn mơ hồ: %(option)s có thể là %(matches)s"
    ),
    "ignored explicit argument %r": "bỏ qua đối số %r",
    "can't open '%(filename)s': %(error)s": "không mở được '%(filename)s': %(error)s",
    "unexpected option string: %s": "chuỗi tùy chọn không mong đợi: %s",
    "unknown parser %(parser_name)r (choices: %(choices)s)": (
        "lệnh con không biết %(parser_name)r (có: %(choices)s)"
    ),
}
"""argparse's own texts (its gettext hook)."""

ETALON: dict[str, str] = {
    "Edge data acquisition and drift monitoring for measuring instruments and reference "
    "standards.": (
        "Thu thập dữ liệu tại biên và giám sát độ trôi của thiết bị đo và chuẩn đo lường."
    ),
    "language of messages (en, vi)": "ngôn ngữ của thông báo (en, vi)",
    "the whole chain in one process, on embedded defaults": (
        "toàn bộ chuỗi trong một tiến trình, với cấu hình mặc định có sẵn"
    ),
    "a demo config (default: embedded)": "cấu hình trình diễn (mặc định: có sẵn)",
    "stop after S seconds (default: Ctrl-C)": "dừng sau S giây (mặc định: Ctrl-C)",
    "where spools and stores go (default: temp)": (
        "nơi đặt hàng đợi và kho dữ liệu (mặc định: thư mục tạm)"
    ),
    "dashboard port on 127.0.0.1 (default 8080, or a free one)": (
        "cổng của bảng điều khiển trên 127.0.0.1 (mặc định 8080, hoặc một cổng trống)"
    ),
    "no API, alerts or standards": "không có API, cảnh báo hay chuẩn",
    "port of the embedded broker (default: free)": "cổng của broker nhúng (mặc định: cổng trống)",
    "write to an InfluxDB v2 API at this URL instead": "ghi vào InfluxDB API v2 tại URL này",
    "take the v2 token from $ETALON_INFLUX_TOKEN": "lấy token v2 từ $ETALON_INFLUX_TOKEN",
    "write to an InfluxDB 1.x at this URL instead": "ghi vào InfluxDB 1.x tại URL này",
    "print the embedded defaults": "in cấu hình mặc định có sẵn",
    "log state changes": "ghi nhật ký các thay đổi trạng thái",
    "validate config files (agent, gateway, demo)": (
        "kiểm tra tệp cấu hình (tác tử, cổng, trình diễn)"
    ),
    "run an edge agent": "chạy một tác tử biên",
    "read every channel once, print the readings and exit (no broker, no spool)": (
        "đọc mỗi kênh một lần, in kết quả rồi thoát (không cần broker, không dùng hàng đợi)"
    ),
    "with --once: read only this instrument (repeat for more)": (
        "cùng --once: chỉ đọc thiết bị này (lặp lại để thêm)"
    ),
    "with --once: read N ticks": "cùng --once: đọc N lượt",
    "with --once: print JSON": "cùng --once: in JSON",
    "run a gateway": "chạy một cổng",
    "run one simulated instrument standalone": "chạy riêng một thiết bị mô phỏng",
    "list, show, acknowledge and shelve alerts (talks to a gateway)": (
        "liệt kê, xem, xác nhận và tạm hoãn cảnh báo (qua một cổng)"
    ),
    "drift fits, Allan deviation and control charts of a CSV": (
        "khớp độ trôi, độ lệch Allan và biểu đồ kiểm soát của một tệp CSV"
    ),
    "reference standards: add, import, list, show, export": (
        "chuẩn đo lường: thêm, nhập, liệt kê, xem, xuất"
    ),
    "run a calibration procedure on the bench; list, show, report, DCC": (
        "chạy quy trình hiệu chuẩn trên bàn hiệu chuẩn; liệt kê, xem, báo cáo, DCC"
    ),
    "print the JSON Schemas of configs and payloads": (
        "in JSON Schema của các cấu hình và bản tin"
    ),
    "write every schema as NAME.schema.json here": "ghi mỗi schema thành NAME.schema.json tại đây",
}
"""etalon, demo, check, agent, gateway, schema, and the one-line help of every command."""

SIM: dict[str, str] = {
    "ASCII transmitter answering SEND, or a streaming thermometer readout (pty or TCP)": (
        "bộ phát ASCII trả lời SEND, hoặc bộ hiển thị nhiệt kế phát liên tục (pty hoặc TCP)"
    ),
    "Modbus RTU devices on a pseudo-terminal (one RS-485 line)": (
        "thiết bị Modbus RTU trên một giả thiết bị đầu cuối (một đường RS-485)"
    ),
    "Modbus RTU frames over TCP, as behind a serial-to-Ethernet converter": (
        "khung Modbus RTU qua TCP, như sau bộ chuyển đổi nối tiếp sang Ethernet"
    ),
    "Modbus TCP devices from a register map (shipped name or YAML file)": (
        "thiết bị Modbus TCP theo bảng thanh ghi (tên có sẵn hoặc tệp YAML)"
    ),
    "OPC UA server: climate chamber and reference standards with EngineeringUnits": (
        "máy chủ OPC UA: buồng khí hậu và chuẩn đo lường, có EngineeringUnits"
    ),
    "SCPI instrument (DMM, long-scale DMM, counter, thermometer readout) on TCP or a pty": (
        "thiết bị SCPI (DMM, DMM dải dài, máy đếm, bộ hiển thị nhiệt kế) qua TCP hoặc pty"
    ),
    "a calibration bench: calibrator, reference DMM, UUT DMM and Modbus transmitter, one "
    "physical output": (
        "bàn hiệu chuẩn: máy hiệu chuẩn, DMM chuẩn, DMM cần hiệu chuẩn và bộ phát Modbus, "
        "một đầu ra vật lý"
    ),
    "JSON fault control file": "tệp JSON điều khiển lỗi giả lập",
    "JSON fault control file, re-read live": "tệp JSON điều khiển lỗi giả lập, đọc lại liên tục",
    "TCP port (0: a free one)": "cổng TCP (0: một cổng trống)",
    "TCP: address to listen on": "TCP: địa chỉ lắng nghe",
    "TCP: port (0 = any free one)": "TCP: cổng (0 = cổng trống bất kỳ)",
    "address to listen on (default 127.0.0.1)": "địa chỉ lắng nghe (mặc định 127.0.0.1)",
    "also serve SCPI on pseudo-terminals": "phục vụ SCPI cả trên giả thiết bị đầu cuối",
    "also serve on a pseudo-terminal": "phục vụ cả trên một giả thiết bị đầu cuối",
    "also write the addresses here (JSON)": "ghi thêm các địa chỉ vào đây (JSON)",
    "bench description (YAML or JSON)": "mô tả bàn hiệu chuẩn (YAML hoặc JSON)",
    "calibrator settling time constant, s": "hằng số thời gian ổn định của máy hiệu chuẩn, s",
    "first TCP port (default 5030; 0: free ports); the config's ports win where it gives them": (
        "cổng TCP đầu tiên (mặc định 5030; 0: cổng trống); cổng trong cấu hình được ưu tiên"
    ),
    "pty: symlink to the device path": "pty: liên kết tượng trưng tới đường dẫn thiết bị",
    "register map: a shipped name or a YAML file": "bảng thanh ghi: tên có sẵn hoặc tệp YAML",
    "serial number in *IDN?": "số sê-ri trong *IDN?",
    "serve on TCP (a serial server) instead": "phục vụ qua TCP (máy chủ cổng nối tiếp)",
    "stream: seconds per line": "phát liên tục: số giây mỗi dòng",
    "endpoints to offer (secure ones need --certificate/--private-key)": (
        "các endpoint cung cấp (loại bảo mật cần --certificate/--private-key)"
    ),
    "the lab's certificate (PEM)": "chứng chỉ của phòng thí nghiệm (PEM)",
    "the lab's private key (PEM)": "khóa riêng của phòng thí nghiệm (PEM)",
    "intermediate CAs (PEM)": "các CA trung gian (PEM)",
    "environment variable holding the key's password": "biến môi trường chứa mật khẩu của khóa",
    "UUT gain error, ppm": "sai số hệ số khuếch đại của thiết bị cần hiệu chuẩn, ppm",
    "UUT noise, V rms": "nhiễu của thiết bị cần hiệu chuẩn, V rms",
    "UUT non-linearity: k of k·x², 1/V": (
        "độ phi tuyến của thiết bị cần hiệu chuẩn: k của k·x², 1/V"
    ),
    "UUT zero drift, V per hour": "độ trôi điểm không của thiết bị cần hiệu chuẩn, V mỗi giờ",
    "UUT zero error, V (DC volts of every UUT)": (
        "sai số điểm không của thiết bị cần hiệu chuẩn, V (điện áp DC của mọi thiết bị)"
    ),
}
"""``etalon sim KIND``."""

ALERTS: dict[str, str] = {
    "alerts not back to normal (--all: every alert)": (
        "các cảnh báo chưa trở lại bình thường (--all: mọi cảnh báo)"
    ),
    "one alert and its audit trail": "một cảnh báo và nhật ký kiểm tra của nó",
    "acknowledge an alert": "xác nhận một cảnh báo",
    "add a comment to an alert's record": "thêm ghi chú vào hồ sơ của một cảnh báo",
    "shelve an alert for a while, with a reason": "tạm hoãn một cảnh báo một thời gian, kèm lý do",
    "end shelving now": "kết thúc tạm hoãn ngay",
    "the rules in force": "các quy tắc đang áp dụng",
    "how long: 30m, 2h, 1d": "bao lâu: 30m, 2h, 1d",
    "what was seen and done (often required)": "điều đã thấy và đã làm (thường bắt buộc)",
    "file holding the API token (default $ETALON_API_TOKEN)": (
        "tệp chứa token API (mặc định $ETALON_API_TOKEN)"
    ),
    "the gateway's API (default $ETALON_API_URL or %(default)s)": (
        "API của cổng (mặc định $ETALON_API_URL hoặc %(default)s)"
    ),
    "print the gateway's JSON answer": "in câu trả lời JSON của cổng",
}
"""``etalon alerts``."""

DRIFT: dict[str, str] = {
    "Drift analytics of a reference standard from a CSV file with a header row.": (
        "Phân tích độ trôi của một chuẩn đo lường từ tệp CSV có dòng tiêu đề."
    ),
    "drift fit, stability and control charts of a CSV file": (
        "khớp độ trôi, độ ổn định và biểu đồ kiểm soát của một tệp CSV"
    ),
    "fit the drift of a value against time": "khớp độ trôi của một đại lượng theo thời gian",
    "Least-squares drift fit (weighted when --u is given), prediction with confidence and "
    "prediction intervals, value in use and time to out of tolerance.": (
        "Khớp độ trôi bằng bình phương tối thiểu (có trọng số khi cho --u), dự đoán với khoảng "
        "tin cậy và khoảng dự đoán, giá trị sử dụng và thời điểm vượt dung sai."
    ),
    "Allan or modified Allan deviation": "độ lệch Allan hoặc độ lệch Allan cải biên",
    "Overlapping Allan deviation (or modified, or non-overlapping) with confidence intervals "
    "from the identified noise type and Greenhall's degrees of freedom.": (
        "Độ lệch Allan chồng lấp (hoặc cải biên, hoặc không chồng lấp) với khoảng tin cậy theo "
        "loại nhiễu nhận dạng được và bậc tự do của Greenhall."
    ),
    "control charts of a check standard": "biểu đồ kiểm soát của một chuẩn kiểm tra",
    "Individuals/moving-range chart with limits from the first N points, Nelson rules 1-8, "
    "EWMA and tabular CUSUM.": (
        "Biểu đồ giá trị đơn/khoảng biến động với giới hạn từ N điểm đầu, quy tắc Nelson 1-8, "
        "EWMA và CUSUM dạng bảng."
    ),
    "CSV delimiter (default ',')": "ký tự phân cách CSV (mặc định ',')",
    "CSV only: which table": "chỉ CSV: bảng nào",
    "JSON instead of a table": "JSON thay cho bảng",
    "centre of the tolerance (default: fitted value at last x)": (
        "tâm của dung sai (mặc định: giá trị khớp tại x cuối)"
    ),
    "classic (non-overlapping)": "cổ điển (không chồng lấp)",
    "default 0.683 (1 sigma)": "mặc định 0.683 (1 sigma)",
    "default 0.95": "mặc định 0.95",
    "drift model (default: auto, by the documented selection rule)": (
        "mô hình độ trôi (mặc định: auto, theo quy tắc chọn đã mô tả)"
    ),
    "e.g. 1-8": "ví dụ 1-8",
    "first N points set the limits": "N điểm đầu đặt giới hạn",
    "how --u weights the fit (default: birge)": "cách --u đặt trọng số khi khớp (mặc định: birge)",
    "in sigma": "tính theo sigma",
    "modified Allan deviation": "độ lệch Allan cải biên",
    "numbers or ISO 8601 dates": "số hoặc ngày ISO 8601",
    "print the JSON result": "in kết quả JSON",
    "readings per second": "số giá trị đọc mỗi giây",
    "standard uncertainties of the values": "độ không đảm bảo chuẩn của các giá trị",
    "the column holds phase (time error, s)": "cột chứa pha (sai số thời gian, s)",
    "the readings, in time order": "các giá trị đọc, theo thứ tự thời gian",
    "the values": "các giá trị",
    "the values, in time order": "các giá trị, theo thứ tự thời gian",
    "tolerance half-width around --nominal": "nửa độ rộng dung sai quanh --nominal",
    "where to predict (default: now for dates, the last x for numbers)": (
        "điểm dự đoán (mặc định: bây giờ với ngày, x cuối với số)"
    ),
    "U": "U",
}
"""``etalon drift``."""

STANDARDS: dict[str, str] = {
    "``etalon standards add|import|list|show|export``: the registry from the command line.": (
        "``etalon standards add|import|list|show|export``: sổ đăng ký chuẩn từ dòng lệnh."
    ),
    "'LAB | STANDARD | CERTIFICATE | national > …; …' (see docs/standards.md)": (
        "'LAB | STANDARD | CERTIFICATE | quốc gia > …; …' (xem docs/standards.md)"
    ),
    "'±2 ppm', '±5e-6 V', '±1 µV/V + 1 µV/V/year'": "'±2 ppm', '±5e-6 V', '±1 µV/V + 1 µV/V/năm'",
    "[SITE:]AGENT/INSTRUMENT/CHANNEL [UNIT] [scale=S] [offset=O] (repeatable)": (
        "[SITE:]AGENT/INSTRUMENT/CHANNEL [UNIT] [scale=S] [offset=O] (lặp lại được)"
    ),
    "a certificate of a registered standard": "một giấy chứng nhận của chuẩn đã đăng ký",
    "a new standard": "một chuẩn mới",
    "calibration date (ISO 8601)": "ngày hiệu chuẩn (ISO 8601)",
    "certified value": "giá trị chứng nhận",
    "change registered entries that differ": "thay đổi các mục đã đăng ký khác biệt",
    "check everything, change nothing": "kiểm tra mọi thứ, không thay đổi gì",
    "coverage factor of U": "hệ số phủ của U",
    "dc_voltage, resistance, frequency, …": "dc_voltage, resistance, frequency, …",
    "due date of the next calibration": "hạn hiệu chuẩn lần sau",
    "every standard, one a line": "mọi chuẩn, mỗi chuẩn một dòng",
    "export as JSON or CSV": "xuất dạng JSON hoặc CSV",
    "file to write (default: stdout)": "tệp để ghi (mặc định: stdout)",
    "import standards/certificates from YAML, JSON or CSV": (
        "nhập chuẩn/giấy chứng nhận từ YAML, JSON hoặc CSV"
    ),
    "leave retired standards out": "bỏ qua các chuẩn đã ngừng dùng",
    "one standard: certificates (file hashes verified), channels, traceability": (
        "một chuẩn: giấy chứng nhận (đã kiểm tra băm tệp), kênh, liên kết chuẩn"
    ),
    "reference point of the coefficients": "điểm tham chiếu của các hệ số",
    "register a standard or a certificate": "đăng ký một chuẩn hoặc một giấy chứng nhận",
    "the certificate (PDF or DCC XML)": "giấy chứng nhận (PDF hoặc DCC XML)",
    "the gateway's config file": "tệp cấu hình của cổng",
    "the issuing laboratory": "phòng thí nghiệm cấp",
    "the standard's id": "mã của chuẩn",
    "who makes the change, for the audit log (default: cli:$USER)": (
        "người thực hiện thay đổi, cho nhật ký kiểm tra (mặc định: cli:$USER)"
    ),
}
"""``etalon standards``."""

STANDARDS["``etalon standards add|import|list|show|export|import-dcc|export-dcc``: the registry "
          "from the command line."] = (
    "``etalon standards add|import|list|show|export|import-dcc|export-dcc``: sổ đăng ký chuẩn từ "
    "dòng lệnh."
)  # fmt: skip
STANDARDS.update(
    {
        "file to write": "tệp để ghi",
        "register a Digital Calibration Certificate (DCC 3.1.2 XML)": (
            "đăng ký một giấy chứng nhận hiệu chuẩn số (DCC 3.1.2 XML)"
        ),
        "register it even if its signature is invalid (the verdict is recorded)": (
            "đăng ký cả khi chữ ký không hợp lệ (kết luận được ghi lại)"
        ),
        "the certificate's id (default: the latest)": (
            "mã của giấy chứng nhận (mặc định: mới nhất)"
        ),
        "the registered standard it is for (default: the one with the DCC item's serial number, "
        "or a new standard made from the item)": (
            "chuẩn đã đăng ký mà nó thuộc về (mặc định: chuẩn có số sê-ri của mục trong DCC, "
            "hoặc một chuẩn mới tạo từ mục đó)"
        ),
        "write a certificate as a DCC 3.1.2 document (signed with the lab's key if set)": (
            "xuất một giấy chứng nhận thành tài liệu DCC 3.1.2 (ký bằng khóa của phòng thí "
            "nghiệm nếu có)"
        ),
    }
)

RECORDS: dict[str, str] = {
    "the record store's integrity: verify, rotate-key, key": (
        "tính toàn vẹn của kho hồ sơ: kiểm tra, đổi khóa, khóa"
    ),
    "``etalon records verify|rotate-key|key``: the record store's integrity from the command "
    "line.": (
        "``etalon records verify|rotate-key|key``: tính toàn vẹn của kho hồ sơ từ dòng lệnh."
    ),
    "a public key file to trust instead of the config's (repeatable)": (
        "tệp khóa công khai được tin cậy thay cho khóa trong cấu hình (lặp lại được)"
    ),
    "print the ledger's public key": "in khóa công khai của sổ cái",
    "sign the ledger with a new key from now on (recorded in the chain)": (
        "từ nay ký sổ cái bằng một khóa mới (được ghi vào chuỗi)"
    ),
    "the new key (PEM, mode 0600); default: a new random key": (
        "khóa mới (PEM, quyền 0600); mặc định: một khóa ngẫu nhiên mới"
    ),
    "the whole report as JSON": "toàn bộ báo cáo dạng JSON",
    "walk the ledger and the live tables; exit 3 naming the first broken thing": (
        "duyệt sổ cái và các bảng hiện hành; thoát với mã 3, nêu chỗ hỏng đầu tiên"
    ),
    "who rotates it, for the record (default: cli:$USER)": (
        "người đổi khóa, để ghi hồ sơ (mặc định: cli:$USER)"
    ),
}
"""``etalon records``."""

CALIBRATE: dict[str, str] = {
    "language of messages (and of the run's report)": (
        "ngôn ngữ của thông báo (và của báo cáo lần chạy)"
    ),
    "language of the report (default --lang)": "ngôn ngữ của báo cáo (mặc định --lang)",
    "one run (its record as JSON with --json)": "một lần chạy (hồ sơ dạng JSON với --json)",
    "resume an interrupted or aborted run": "tiếp tục một lần chạy bị ngắt hoặc bị hủy",
    "run a procedure": "chạy một quy trình",
    "seconds (default 10)": "giây (mặc định 10)",
    "the DCC 3.1.2 of a completed run": "DCC 3.1.2 của một lần chạy đã xong",
    "the HTML report of a completed run": "báo cáo HTML của một lần chạy đã xong",
    "the bench's runs and spools (default $ETALON_CALIBRATION_DIR, else "
    "~/.local/state/etalon/calibration)": (
        "các lần chạy và hàng đợi của bàn hiệu chuẩn (mặc định $ETALON_CALIBRATION_DIR, nếu "
        "không thì ~/.local/state/etalon/calibration)"
    ),
    "the runs, newest first": "các lần chạy, mới nhất trước",
    "what the unit under test is, e.g. serial=MY12345 (repeatable)": (
        "thiết bị cần hiệu chuẩn là gì, ví dụ serial=MY12345 (lặp lại được)"
    ),
    "who calibrates (default: the user name)": "người hiệu chuẩn (mặc định: tên người dùng)",
}
"""``etalon calibrate``."""


HUB: dict[str, str] = {
    "the national hub: run it, enrol and revoke labs, links": (
        "trung tâm quốc gia: chạy trung tâm, đăng ký và thu hồi phòng thí nghiệm, liên kết chuẩn"
    ),
    "the hub's config (hub.yaml)": "tệp cấu hình của trung tâm (hub.yaml)",
    "who does it (default: the login name)": "người thực hiện (mặc định: tên đăng nhập)",
    "enrol a lab with its ledger public key; prints its push token": (
        "đăng ký một phòng thí nghiệm với khóa công khai sổ cái của phòng; in ra mã đẩy dữ liệu"
    ),
    "the lab's ledger id": "mã sổ cái của phòng thí nghiệm",
    "its public key (PEM or base64)": "khóa công khai của phòng thí nghiệm (PEM hoặc base64)",
    "the lab's name (default: its id)": "tên phòng thí nghiệm (mặc định: mã sổ cái)",
    "its province or city": "tỉnh/thành phố của phòng thí nghiệm",
    "its country, ISO 3166 code (default: VN)": "quốc gia, mã ISO 3166 (mặc định: VN)",
    "whom to contact at the lab": "người liên hệ tại phòng thí nghiệm",
    "list the enrolled labs": "liệt kê các phòng thí nghiệm đã đăng ký",
    "as JSON": "dạng JSON",
    "revoke a lab: its later pushes are refused": (
        "thu hồi một phòng thí nghiệm: các lần đẩy dữ liệu sau đó bị từ chối"
    ),
    "why, for the hub's audit chain": "lý do, ghi vào chuỗi nhật ký của trung tâm",
    "issue a new push token for a lab (the old one stops working)": (
        "cấp mã đẩy dữ liệu mới cho một phòng thí nghiệm (mã cũ hết hiệu lực)"
    ),
    "apply the database migrations": "áp dụng các bản chuyển đổi cơ sở dữ liệu",
    "only say what is pending": "chỉ cho biết các bản chuyển đổi còn chờ áp dụng",
    "verify the hub's own audit chain": "kiểm tra chuỗi nhật ký của chính trung tâm",
    "traceability links typed in by the national institute": (
        "liên kết chuẩn (truy xuất nguồn gốc đo lường) do viện đo lường quốc gia nhập"
    ),
    "add a link": "thêm một liên kết chuẩn",
    "LAB/STANDARD": "LAB/STANDARD: mã phòng thí nghiệm/mã chuẩn",
    "LAB/STANDARD that calibrated it": "LAB/STANDARD của chuẩn đã hiệu chuẩn nó",
    "designate it a national standard (the decision)": (
        "chỉ định nó là chuẩn quốc gia (nêu quyết định phê duyệt)"
    ),
    "the BIPM key comparison underpinning it (KCDB id)": (
        "so sánh then chốt BIPM làm cơ sở cho nó (mã KCDB)"
    ),
    "the CMC underpinning it (KCDB id)": (
        "CMC (năng lực đo và hiệu chuẩn) làm cơ sở cho nó (mã KCDB)"
    ),
    "the certificate that makes the link": "giấy chứng nhận hiệu chuẩn tạo nên liên kết",
    "YYYY-MM-DD: after it the link is expired": "YYYY-MM-DD: sau ngày này liên kết hết hiệu lực",
    "a note kept with the link": "ghi chú lưu cùng liên kết",
    "list links": "liệt kê các liên kết chuẩn",
    "only the links of this lab": "chỉ các liên kết của phòng thí nghiệm này",
    "withdraw an institute link": "rút lại một liên kết do viện nhập",
    "the link's id": "mã của liên kết",
}
"""``etalon hub``."""

INSTRUMENTS: dict[str, str] = {
    "``etalon instruments list|show|link|unlink|import-dcc``: calibrated instruments from the "
    "command line (docs/corrections.md).": (
        "``etalon instruments list|show|link|unlink|import-dcc``: thiết bị đo đã hiệu chuẩn từ "
        "dòng lệnh (docs/corrections.md)."
    ),
    "calibrated instruments: certificates (DCC) and corrections of their channels": (
        "thiết bị đo đã hiệu chuẩn: giấy chứng nhận hiệu chuẩn (DCC) và hiệu chính các kênh"
    ),
    "en or vi": "en hoặc vi",
    "instruments with their links": "các thiết bị đo và liên kết hiệu chuẩn của chúng",
    "one instrument: links, certificates, tables": (
        "một thiết bị đo: liên kết hiệu chuẩn, giấy chứng nhận, bảng hiệu chuẩn"
    ),
    "SITE/AGENT/INSTRUMENT": "SITE/AGENT/INSTRUMENT: cơ sở/tác tử/thiết bị",
    "SITE/AGENT/INSTRUMENT/CHANNEL": "SITE/AGENT/INSTRUMENT/CHANNEL: cơ sở/tác tử/thiết bị/kênh",
    "register an instrument's DCC 3.1.2 certificate": (
        "đăng ký giấy chứng nhận hiệu chuẩn DCC 3.1.2 của một thiết bị đo"
    ),
    "the DCC file (XML)": "tệp DCC (XML)",
    "due date (ISO 8601) when the DCC states none": (
        "hạn hiệu chuẩn lần sau (ISO 8601) khi DCC không ghi"
    ),
    "correct a channel with a certificate's table": (
        "hiệu chính một kênh theo bảng hiệu chuẩn của giấy chứng nhận"
    ),
    "the instrument certificate's id": "mã giấy chứng nhận của thiết bị đo",
    "which table (default: the one in its unit)": (
        "bảng nào (mặc định: bảng có cùng đơn vị với kênh)"
    ),
    "when it starts (ISO 8601, UTC if no zone; not in the past)": (
        "thời điểm bắt đầu (ISO 8601, UTC nếu không ghi múi giờ; không được ở quá khứ)"
    ),
    "stop correcting a channel": "ngừng hiệu chính một kênh",
    "when it ends (ISO 8601; not in the past)": (
        "thời điểm kết thúc (ISO 8601; không được ở quá khứ)"
    ),
}
"""``etalon instruments``."""


SECURITY: dict[str, str] = {
    "API tokens stored as argon2id hashes": "mã truy cập API lưu dưới dạng băm argon2id",
    "DNS name or IP address clients use (repeat for more)": (
        "tên DNS hoặc địa chỉ IP mà máy khách dùng (lặp lại để thêm)"
    ),
    "a agent's client certificate (its MQTT identity)": (
        "chứng chỉ máy khách của một tác tử (danh tính MQTT của nó)"
    ),
    "a broker or HTTPS API certificate": "chứng chỉ cho máy chủ MQTT hoặc API HTTPS",
    "a gateway allowed to read its site (repeat for more)": (
        "một cổng được phép đọc cơ sở của nó (lặp lại để thêm)"
    ),
    "a gateway's client certificate (its MQTT identity)": (
        "chứng chỉ máy khách của một cổng (danh tính MQTT của nó)"
    ),
    "a lab CA and TLS certificates for the broker and clients": (
        "CA của phòng thí nghiệm và chứng chỉ TLS cho máy chủ MQTT và các máy khách"
    ),
    "a new random token and its config entry": (
        "một mã truy cập ngẫu nhiên mới và mục cấu hình của nó"
    ),
    "an agent whose certificate may no longer do anything (repeat for more)": (
        "một tác tử mà chứng chỉ không còn được làm gì nữa (lặp lại để thêm)"
    ),
    "create the lab CA (ca.pem, ca.key)": "tạo CA của phòng thí nghiệm (ca.pem, ca.key)",
    "file name stem, e.g. broker (broker.pem, broker.key)": (
        "phần gốc của tên tệp, ví dụ broker (broker.pem, broker.key)"
    ),
    "issue a server, gateway or agent certificate": ("cấp chứng chỉ cho máy chủ, cổng hoặc tác tử"),
    "print a Mosquitto ACL file for certificate identities": (
        "in tệp ACL của Mosquitto cho các danh tính theo chứng chỉ"
    ),
    "replace existing files": "thay thế các tệp đã có",
    "the CA's common name": "tên chung (CN) của CA",
    "the MQTT topic prefix (default etalon)": "tiền tố chủ đề MQTT (mặc định etalon)",
    "the PKI directory (default: ./pki)": "thư mục PKI (mặc định: ./pki)",
    "the hash of a token read on standard input": (
        "giá trị băm của mã truy cập đọc từ đầu vào chuẩn"
    ),
    "validity in days": "thời hạn hiệu lực, tính bằng ngày",
    "who holds it (recorded in the audit log)": "ai giữ nó (ghi vào nhật ký kiểm tra)",
}
"""``etalon pki`` and ``etalon token``."""


def register_all() -> None:
    """Register every table of this module."""
    for table in (
        ARGPARSE,
        ETALON,
        SIM,
        ALERTS,
        DRIFT,
        STANDARDS,
        RECORDS,
        CALIBRATE,
        HUB,
        INSTRUMENTS,
        SECURITY,
    ):
        register_texts(table)
