"""The words of budgets and statements of conformity in English and Vietnamese, for reports.

The library's values are stable identifiers (``"conditional_pass"``, ``"rectangular"``); a
report or a page prints them with :func:`label`. The table (``labels.json`` beside this module)
is what the calibration report and the gateway's pages register in the i18n catalogue.
Vietnamese follows the terms of TCVN ISO/IEC 17025 and of the Vietnamese translation of
ILAC-G8 ("quy tắc ra quyết định", "dải bảo vệ").
"""

from __future__ import annotations

from typing import Literal

from core.i18n import MessageTable, load_table

Language = Literal["en", "vi"]

LABELS: MessageTable = load_table(__package__, "labels.json")


def label(key: str, language: Language = "en") -> str:
    """The word for ``key`` in ``language``; an unknown key is returned as it is."""
    entry = LABELS.get(key)
    return key if entry is None else entry[language]
