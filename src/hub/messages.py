"""Everything the hub says to a person, in English and Vietnamese (registered with core.i18n).

The verifier's own codes (``segment.*``, ``edited.*``, …) come from ``ledger.MESSAGES``,
registered here too, so a refusal is rendered from its code and values in either language.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from core.i18n import LANGUAGES, MessageTable, load_table, register
from ledger import MESSAGES as LEDGER_MESSAGES

HUB_MESSAGES: MessageTable = load_table(__package__, "messages.json")

register(LEDGER_MESSAGES)
register(HUB_MESSAGES)
_TEMPLATES: dict[str, Mapping[str, str]] = {**LEDGER_MESSAGES, **HUB_MESSAGES}


class _Keep(dict[str, Any]):
    """Values for a template; a placeholder without a value stays as it is."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def message(code: str, params: Mapping[str, Any], lang: str = "en") -> str:
    """A refusal's (or any registered) message in ``lang``; never raises on odd values."""
    templates = _TEMPLATES.get(code)
    if templates is None:
        return code
    text = templates.get(lang, templates["en"])
    try:
        return string.Formatter().vformat(text, (), _Keep(params))
    except (IndexError, ValueError):
        return text


def ui(key: str, lang: str, /, **values: Any) -> str:
    """A text of the hub's pages or commands in ``lang``, formatted with ``values``."""
    templates = _TEMPLATES[key]
    return templates.get(lang, templates["en"]).format(**values)


def messages(code: str, params: Mapping[str, Any]) -> dict[str, str]:
    """A message in every language."""
    return {lang: message(code, params, lang) for lang in LANGUAGES}
