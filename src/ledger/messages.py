"""What the verifier says, in English and Vietnamese.

Each finding and note carries a ``code`` and ``params``; ``render`` fills the code's template in
the reader's language. ``MESSAGES`` (``messages.json`` beside this module) is the declared table
a feature registers with the i18n catalogue (``{code: {"en": ..., "vi": ...}}``); a test holds
both languages to the same placeholders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from core.i18n import MessageTable, load_table

MESSAGES: Final[MessageTable] = load_table(__package__, "messages.json")

LANGUAGES: Final = ("en", "vi")


def render(code: str, params: Mapping[str, object], lang: str = "en") -> str:
    """The message ``code`` in ``lang`` (English for an unknown language) with ``params``."""
    templates = MESSAGES[code]
    return templates.get(lang, templates["en"]).format_map(dict(params))
