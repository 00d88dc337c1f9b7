"""Messages: every code the ledger can say exists in English and Vietnamese, with the same
placeholders, and every code the code uses has a message."""

from __future__ import annotations

import re
import string
from pathlib import Path

import ledger
from ledger import MESSAGES, TamperKind, render

SOURCE = Path(ledger.__file__).parent


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_languages_with_the_same_placeholders() -> None:
    for code, texts in MESSAGES.items():
        assert set(texts) == {"en", "vi"}, code
        assert placeholders(texts["en"]) == placeholders(texts["vi"]), code
        assert texts["en"] != texts["vi"], code
        params = {name: 7 for name in placeholders(texts["en"])}
        assert render(code, params, "vi") and render(code, params, "en")
        assert render(code, params, "fr") == render(code, params, "en")


def test_every_kind_has_a_title() -> None:
    for kind in TamperKind:
        assert f"kind.{kind.value}" in MESSAGES


def test_every_code_in_the_source_has_a_message() -> None:
    families = "|".join([*(k.value for k in TamperKind), "note", "segment"])
    pattern = re.compile(rf'"((?:{families})\.[a-z_]+)"')
    used: set[str] = set()
    for path in SOURCE.glob("*.py"):
        if path.name != "messages.py":
            used |= set(pattern.findall(path.read_text()))
    assert len(used) > 25
    # Codes built from a suffix: checkpoint_forged.{code}, rotation_forged.{code}
    used |= {
        f"checkpoint_forged.{suffix}"
        for suffix in ("signature", "wrong_key", "unknown_key", "untrusted_chain")
    }
    used |= {"rotation_forged.signature", "rotation_forged.malformed"}
    missing = used - set(MESSAGES)
    assert not missing
