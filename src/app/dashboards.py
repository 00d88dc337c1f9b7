"""The Grafana dashboards in other languages, generated from the one English source.

``dashboards/grafana/*.json`` are written in English and edited there only; the Vietnamese copies
in ``dashboards/grafana/vi/`` are generated from them with the texts of :data:`DASHBOARD_TEXTS`
(titles, panel titles, descriptions, variable labels) and :data:`SERIES_TEXTS` (the names of the
series a legend shows: a query's ``AS "name"``, the words of an ``alias``, and the patterns of the
overrides that pick series by name)::

    python -m app.dashboards dashboards/grafana

A copy gets its own uid (``…-vi``) and the tag ``vi`` in place of ``en``, so both languages can be
provisioned side by side and each one's dashboard links list only its own language.
``tests/app/test_dashboards_vi.py`` fails when a copy is out of date or a text has no translation.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

from core.i18n import TextTranslator, register_texts

TRANSLATED_KEYS = ("title", "description", "label", "displayName")
"""The keys whose string values a user reads on a dashboard."""

SOURCE_LANGUAGE = "en"

DASHBOARD_TEXTS: dict[str, str] = {
    "etalon — Environment": "etalon — Môi trường",
    "etalon — Fleet health": "etalon — Tình trạng hệ thống",
    "etalon — Reference standards drift": "etalon — Độ trôi của chuẩn đo lường",
    "etalon dashboards": "Các bảng điều khiển etalon",
    "Temperature, humidity and pressure of each room (channels tagged room=…), ISO/IEC 17025 "
    "§6.3.": (
        "Nhiệt độ, độ ẩm và áp suất của từng phòng (các kênh có nhãn room=…), ISO/IEC 17025 §6.3."
    ),
    "Self-metrics of agents (etalon_agent) and gateways (etalon_gateway). Counters restart at 0 "
    "with the process: rates use non_negative_derivative.": (
        "Chỉ số tự theo dõi của tác tử (etalon_agent) và cổng (etalon_gateway). Bộ đếm về 0 khi "
        "tiến trình khởi động lại: tốc độ dùng non_negative_derivative."
    ),
    "Monitored values of reference standards (channels tagged standard=…) and their drift fit "
    "with its prediction band and tolerance (measurement drift_fit, written by the gateway's "
    "standards analytics).": (
        "Giá trị giám sát của các chuẩn đo lường (các kênh có nhãn standard=…) và đường khớp độ "
        "trôi với dải dự đoán và dung sai (measurement drift_fit, do bộ phân tích chuẩn của cổng "
        "ghi)."
    ),
    "Site": "Cơ sở",
    "Room": "Phòng",
    "Agent": "Tác tử",
    "Gateway": "Cổng",
    "Standard": "Chuẩn",
    "Temperature now": "Nhiệt độ hiện tại",
    "Humidity now": "Độ ẩm hiện tại",
    "Pressure now": "Áp suất hiện tại",
    "Temperature": "Nhiệt độ",
    "Relative humidity": "Độ ẩm tương đối",
    "Air pressure": "Áp suất không khí",
    "Bad readings per room": "Giá trị đọc hỏng theo phòng",
    "Readings with quality bad (no value, garbage reply, out of range) per interval.": (
        "Số giá trị đọc có chất lượng hỏng (không có giá trị, trả lời rác, ngoài dải) mỗi khoảng."
    ),
    "Agents": "Tác tử",
    "Gateways": "Cổng",
    "Agents online, store up, MQTT connected": "Tác tử trực tuyến, kho hoạt động, MQTT đã kết nối",
    "Agent spool": "Hàng đợi của tác tử",
    "Gateway spool": "Hàng đợi của cổng",
    "Instruments unavailable": "Thiết bị không truy cập được",
    "Read problems per second": "Lỗi đọc mỗi giây",
    "Readings per second": "Giá trị đọc mỗi giây",
    "Readings written per second": "Giá trị đã ghi mỗi giây",
    "Reconnects (instruments, MQTT)": "Số lần kết nối lại (thiết bị, MQTT)",
    "Refused and failed": "Bị từ chối và thất bại",
    "Write latency": "Độ trễ ghi",
    "Latest value": "Giá trị mới nhất",
    "Monitored value": "Giá trị giám sát",
    "Monitored values": "Các giá trị giám sát",
    "Mean of the readings per interval (good and uncertain readings).": (
        "Trung bình các giá trị đọc mỗi khoảng (giá trị tốt và nghi ngờ)."
    ),
    "Spread within each interval (max − min)": "Độ phân tán trong mỗi khoảng (max − min)",
    "Standard uncertainty of the readings (k = 1)": (
        "Độ không đảm bảo chuẩn của giá trị đọc (k = 1)"
    ),
    "Days until predicted out of tolerance": "Số ngày đến khi dự đoán vượt dung sai",
    "From the latest evaluation to the earliest date at which a drift fit's prediction interval "
    "reaches a tolerance limit (the date to plan recalibration by). No value: none within the "
    "horizon.": (
        "Từ lần đánh giá gần nhất đến ngày sớm nhất mà khoảng dự đoán của đường khớp độ trôi "
        "chạm giới hạn dung sai (ngày cần lên kế hoạch hiệu chuẩn lại). Không có giá trị: không "
        "có ngày nào trong tầm dự đoán."
    ),
    "Drift analytics (measurements standard_evaluation, drift_fit, standard_period)": (
        "Phân tích độ trôi (measurement standard_evaluation, drift_fit, standard_period)"
    ),
    "Value in use, drift fits with their prediction intervals, tolerance": (
        "Giá trị sử dụng, các đường khớp độ trôi với khoảng dự đoán, dung sai"
    ),
    "Written by the gateway's standards analytics at every evaluation: the value of each drift "
    "fit at the evaluation time with its prediction interval (source: certificates = the value "
    "in use; channel = the monitored values' fit), the tolerance limits, and the monitored "
    "period means. See docs/standards.md.": (
        "Do bộ phân tích chuẩn của cổng ghi ở mỗi lần đánh giá: giá trị của mỗi đường khớp độ "
        "trôi tại thời điểm đánh giá với khoảng dự đoán (source: certificates = giá trị sử dụng; "
        "channel = đường khớp của các giá trị giám sát), các giới hạn dung sai và trung bình "
        "theo chu kỳ của giá trị giám sát. Xem docs/standards.md."
    ),
    "Corrected values (certificate), ± U (k = 2)": (
        "Giá trị đã hiệu chính (theo giấy chứng nhận), ± U (k = 2)"
    ),
    "Channels corrected from their calibration certificates (docs/corrections.md): the corrected "
    "value and its expanded uncertainty band, k = 2. The raw indications stay in the panels "
    "above.": (
        "Các kênh được hiệu chính theo giấy chứng nhận hiệu chuẩn của chúng (docs/corrections.md): "
        "giá trị đã hiệu chính và dải độ không đảm bảo đo mở rộng, k = 2. Số chỉ thô chưa hiệu "
        "chính vẫn ở các biểu đồ phía trên."
    ),
}
"""Vietnamese of every text the dashboards show (registered in the catalogue)."""

SERIES_TEXTS: dict[str, str] = {
    # InfluxQL column names (AS "…"), which `$col` in an alias puts in the legend
    "read": "đã đọc",
    "acknowledged by the broker": "broker đã xác nhận",
    "bad readings": "giá trị đọc hỏng",
    "read errors": "lỗi đọc",
    "timeouts": "quá thời gian",
    "overruns": "lượt bị bỏ qua",
    "protocol faults": "lỗi giao thức",
    "readings waiting": "giá trị đang chờ",
    "dropped (total)": "đã bỏ (tổng)",
    "unavailable": "không truy cập được",
    "instrument reconnects": "kết nối lại thiết bị",
    "MQTT reconnects": "kết nối lại MQTT",
    "received": "đã nhận",
    "written": "đã ghi",
    "last batch": "lô gần nhất",
    "max": "tối đa",
    "waiting": "đang chờ",
    "readings refused": "giá trị bị từ chối",
    "dead letters": "thư lỗi",
    "write errors": "lỗi ghi",
    "agents online": "tác tử trực tuyến",
    "store up": "kho hoạt động",
    "MQTT connected": "MQTT đã kết nối",
    "fit": "đường khớp",
    "band low": "dải dưới",
    "band high": "dải trên",
    "tolerance low": "dung sai dưới",
    "tolerance high": "dung sai trên",
    "period mean": "trung bình chu kỳ",
    # words of an alias
    "corrected": "đã hiệu chính",
    # overrides by series name: the same series under their Vietnamese names
    ".*tolerance.*": ".*dung sai.*",
    ".*band.*": ".*dải.*",
    ".*[−+] U$": ".*[−+] U$",  # the ± U bounds: symbols in both languages
}
"""Vietnamese of the series names a legend shows, and of the patterns that pick them."""

register_texts(DASHBOARD_TEXTS)
register_texts(SERIES_TEXTS)

_COLUMN = re.compile(r'\bAS "([^"]+)"')
_ALIAS_WORDS = re.compile(r"[A-Za-z][A-Za-z ()]*[A-Za-z)]")
"""The words of an alias between its ``$variables`` (one capital, ``U``, is a symbol)."""


def _alias(alias: str, translator: TextTranslator) -> str:
    parts = re.split(r"(\$\w+)", alias)
    return "".join(
        part
        if part.startswith("$")
        else _ALIAS_WORDS.sub(
            lambda m: m.group() if len(m.group()) < 2 else translator(m.group()), part
        )
        for part in parts
    )


def translate_board(board: dict[str, Any], lang: str) -> tuple[dict[str, Any], set[str]]:
    """A copy of ``board`` in ``lang`` and the texts that have no translation."""
    translator = TextTranslator(lang)
    out = copy.deepcopy(board)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in TRANSLATED_KEYS and isinstance(value, str):
                    node[key] = translator(value)
                elif key == "query" and isinstance(value, str):
                    node[key] = _COLUMN.sub(lambda m: f'AS "{translator(m.group(1))}"', value)
                elif key == "alias" and isinstance(value, str):
                    node[key] = _alias(value, translator)
                elif key == "matcher" and isinstance(value, dict) and value.get("id") == "byRegexp":
                    node[key] = {**value, "options": translator(value["options"])}
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(out)
    out["uid"] = f"{board['uid']}-{lang}"

    def retag(tags: list[str]) -> list[str]:
        return [lang if tag == SOURCE_LANGUAGE else tag for tag in tags]

    out["tags"] = retag(out.get("tags", []))
    for link in out.get("links", []):
        if "tags" in link:
            link["tags"] = retag(link["tags"])
    return out, translator.missing


def dump(board: dict[str, Any]) -> str:
    """A dashboard as its file holds it."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def generated(source_dir: Path, lang: str = "vi") -> dict[Path, str]:
    """The files of the ``lang`` copies of the dashboards in ``source_dir``, by path.

    Raises ``ValueError`` naming every text without a translation."""
    out: dict[Path, str] = {}
    missing: set[str] = set()
    for path in sorted(source_dir.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        translated, lacking = translate_board(board, lang)
        missing |= {f"{path.name}: {text!r}" for text in lacking}
        out[source_dir / lang / path.name] = dump(translated)
    if missing:
        raise ValueError("no translation for: " + "; ".join(sorted(missing)))
    return out


def main(argv: list[str]) -> int:
    """``python -m app.dashboards DIR``: write DIR/vi/*.json from DIR/*.json."""
    if len(argv) != 1:
        print("usage: python -m app.dashboards DASHBOARDS_DIR", file=sys.stderr)
        return 2
    try:
        files = generated(Path(argv[0]))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
