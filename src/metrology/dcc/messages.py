"""What the DCC library says to a user, in English and Vietnamese.

A declared table in the catalogue's shape (``key -> {"en": ..., "vi": ...}``, the data file
``messages.json`` beside this module) for the integrator to register with the i18n catalogue;
:func:`text` renders one here without it.
Technical detail (a schema's message, a certificate's subject) is inserted as produced.
"""

from __future__ import annotations

from typing import Any

from core.i18n import MessageTable, load_table

LANGUAGES = ("en", "vi")

MESSAGES: MessageTable = load_table(__package__, "messages.json")


def text(key: str, lang: str = "en", **values: Any) -> str:
    """The message ``key`` in ``lang`` (English when the language is not known)."""
    texts = MESSAGES[key]
    template = texts.get(lang) or texts["en"]
    return template.format(**values)
