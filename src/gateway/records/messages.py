"""What the records' verification and commands say, in English and Vietnamese (the table the
i18n catalogue registers; the ledger library's own findings come from ``ledger.MESSAGES``)."""

from __future__ import annotations

from collections.abc import Mapping

from core.i18n import MessageTable, load_table
from ledger import MESSAGES as LEDGER_MESSAGES
from ledger import render

RECORDS_MESSAGES: MessageTable = load_table(__package__, "messages.json")


def text_of(code: str, params: Mapping[str, object], lang: str = "en") -> str:
    """A records or ledger message in ``lang``."""
    texts = RECORDS_MESSAGES.get(code)
    if texts is None:
        if code in LEDGER_MESSAGES:
            return render(code, params, lang)
        return code
    return texts.get(lang, texts["en"]).format_map(dict(params))
