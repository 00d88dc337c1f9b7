"""Messages a user reads, in English and Vietnamese.

The language comes from ``--lang``, else ``ETALON_LANG``, else the locale (``LANG=vi_VN...`` →
Vietnamese), else English. Technical detail inside a message (a pydantic reason, a server's
answer) stays as the component produced it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LANGUAGES = ("en", "vi")

MessageTable = Mapping[str, Mapping[str, str]]
"""A feature's messages: key → language → text, every language of ``LANGUAGES`` present."""

_CATALOGUE: dict[str, Mapping[str, str]] = {}


def register(table: MessageTable) -> None:
    """Add a feature's declared table to the one catalogue.

    Every entry must have a text in each language of ``LANGUAGES``; a key another table already
    registered with different texts is refused (two features cannot both own one key). Registering
    the same table again is harmless, so a feature may register from every module that needs it.
    """
    for key, texts in table.items():
        missing = [lang for lang in LANGUAGES if lang not in texts]
        if missing:
            raise ValueError(f"message {key!r} has no text in {', '.join(missing)}")
        known = _CATALOGUE.get(key)
        if known is not None and dict(known) != dict(texts):
            raise ValueError(f"message {key!r} is registered twice with different texts")
    _CATALOGUE.update(table)


def known(key: str) -> bool:
    """Whether a message ``key`` is registered."""
    return key in _CATALOGUE


CORE_MESSAGES: MessageTable = {
    "check.ok": {"en": "{file}: OK ({kind} config)", "vi": "{file}: hợp lệ (cấu hình {kind})"},
    "check.invalid": {
        "en": "{file}: invalid {kind} config",
        "vi": "{file}: cấu hình {kind} không hợp lệ",
    },
    "check.summary": {
        "en": "{errors} of {files} file(s) invalid",
        "vi": "{errors} trên {files} tệp không hợp lệ",
    },
    "config.invalid": {"en": "invalid config {file}", "vi": "cấu hình không hợp lệ {file}"},
    "kind.agent": {"en": "agent", "vi": "tác tử"},
    "kind.gateway": {"en": "gateway", "vi": "cổng"},
    "kind.demo": {"en": "demo", "vi": "trình diễn"},
    "kind.hub": {"en": "hub", "vi": "trung tâm"},
    "demo.title": {
        "en": "etalon demo — site {site}, broker {broker}, store {store}",
        "vi": "etalon trình diễn — cơ sở {site}, broker {broker}, kho dữ liệu {store}",
    },
    "demo.header": {
        "en": "{instrument:<16} {channel:<18} {value:>18} {unit:<5} {quality:<9} {age:>6}",
        "vi": "{instrument:<16} {channel:<18} {value:>18} {unit:<5} {quality:<9} {age:>6}",
    },
    "demo.columns": {
        "en": "instrument|channel|value|unit|quality|age",
        "vi": "thiết bị|kênh|giá trị|đơn vị|chất lượng|tuổi",
    },
    "demo.counters": {
        "en": "read {read}  published {published}  acknowledged {acked}  written {written}  "
        "refused {refused}  agent spool {agent_spool}  gateway spool {gateway_spool}",
        "vi": "đã đọc {read}  đã gửi {published}  đã xác nhận {acked}  đã ghi {written}  "
        "bị từ chối {refused}  hàng đợi tác tử {agent_spool}  hàng đợi cổng {gateway_spool}",
    },
    "demo.stop_hint": {"en": "Ctrl-C stops the demo.", "vi": "Nhấn Ctrl-C để dừng."},
    "demo.dashboard": {
        "en": "dashboard (read-only, this machine only): {url}",
        "vi": "bảng điều khiển (chỉ xem, chỉ trên máy này): {url}",
    },
    "demo.summary": {
        "en": "demo stopped after {seconds:.0f} s: {read} readings read, {stored} in the store "
        "({store}), data in {data_dir}",
        "vi": "đã dừng sau {seconds:.0f} giây: đọc {read} giá trị, {stored} giá trị trong kho "
        "({store}), dữ liệu tại {data_dir}",
    },
    "demo.exact": {
        "en": "every reading arrived exactly once",
        "vi": "mọi giá trị đã đến đúng một lần",
    },
    "demo.mismatch": {
        "en": "MISMATCH: {read} read but {stored} stored",
        "vi": "KHÔNG KHỚP: đọc {read} nhưng lưu {stored}",
    },
    "quality.good": {"en": "good", "vi": "tốt"},
    "quality.uncertain": {"en": "uncertain", "vi": "nghi ngờ"},
    "quality.bad": {"en": "bad", "vi": "hỏng"},
    "signal.forced": {
        "en": "etalon: forced stop ({signal} again); spooled readings are kept",
        "vi": "etalon: buộc dừng ({signal} lần nữa); các giá trị trong hàng đợi được giữ lại",
    },
    "signal.overdue": {
        "en": "etalon: forced stop (the clean stop after {signal} took too long); spooled readings "
        "are kept",
        "vi": "etalon: buộc dừng (dừng sau {signal} quá lâu); các giá trị trong hàng đợi "
        "được giữ lại",
    },
    "error.transport": {"en": "cannot use the MQTT broker", "vi": "không dùng được MQTT broker"},
}
"""Messages of the ``etalon`` command itself (check, config errors, the demo's live view)."""

register(CORE_MESSAGES)


def language(requested: str | None = None) -> str:
    """The language to use: the requested one, ETALON_LANG, the locale, or English."""
    for candidate in (requested, os.environ.get("ETALON_LANG"), os.environ.get("LANG")):
        if candidate:
            code = candidate.split("_")[0].split(".")[0].lower()
            if code in LANGUAGES:
                return code
    return "en"


def t(key: str, lang: str = "en", **values: object) -> str:
    """The message ``key`` in ``lang`` (English if missing), formatted with ``values``."""
    texts = _CATALOGUE[key]
    return texts.get(lang, texts["en"]).format(**values)
