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
    "gateway.not_gateway": {
        "en": "{file}: not a gateway config (it has no 'store' key)",
        "vi": "{file}: không phải cấu hình cổng (không có khóa 'store')",
    },
    "demo.not_demo": {
        "en": "{file}: not a demo config",
        "vi": "{file}: không phải cấu hình trình diễn",
    },
    "demo.invalid_option": {
        "en": "etalon demo: invalid option",
        "vi": "etalon demo: tùy chọn không hợp lệ",
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


_chosen: str | None = None


def choose_language(lang: str | None) -> None:
    """Set the language of this process (the command line's ``--lang``): ``language()``
    without a request returns it, so texts made far from the command line (an argparse type
    check) speak it too."""
    global _chosen
    _chosen = lang


def language(requested: str | None = None) -> str:
    """The language to use: the requested one, the process's chosen one, ETALON_LANG, the
    locale, or English."""
    for candidate in (
        requested,
        _chosen,
        os.environ.get("ETALON_LANG"),
        os.environ.get("LANG"),
    ):
        if candidate:
            code = candidate.split("_")[0].split(".")[0].lower()
            if code in LANGUAGES:
                return code
    return "en"


def t(key: str, lang: str = "en", **values: object) -> str:
    """The message ``key`` in ``lang`` (English if missing), formatted with ``values``."""
    texts = _CATALOGUE[key]
    return texts.get(lang, texts["en"]).format(**values)


# -- texts keyed by their English wording (argparse's help, usage and errors) ------------------

TEXT_PREFIX = "en:"
"""Catalogue keys of texts that are their own key: ``"en:" + the English text``."""


def register_texts(table: Mapping[str, str]) -> None:
    """Add Vietnamese for texts written in English where they are used (argparse ``help=``,
    ``description=``, argparse's own messages): English text → Vietnamese text."""
    register({TEXT_PREFIX + en: {"en": en, "vi": vi} for en, vi in table.items()})


def has_text(text: str) -> bool:
    """Whether an English text has its translations in the catalogue."""
    return TEXT_PREFIX + text in _CATALOGUE


class TextTranslator:
    """``translate(english)`` in one language, remembering the texts the catalogue lacks (a
    test fails on them); a callable usable as gettext."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.missing: set[str] = set()
        self._given: set[str] = set()

    def __call__(self, text: str) -> str:
        """The text in this language (unchanged in English, or when it is not known)."""
        if self.lang == "en" or not text or text in self._given:
            return text
        texts = _CATALOGUE.get(TEXT_PREFIX + text)
        if texts is None:
            self.missing.add(text)
            return text
        translated = texts.get(self.lang, text)
        self._given.add(translated)
        return translated

    def plural(self, singular: str, plural: str, count: int) -> str:
        """ngettext: the singular or plural text, translated."""
        return self(singular if count == 1 else plural)
