"""Message catalogues in data files: loaded, checked, registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import i18n


def test_core_catalogue_loads_every_language() -> None:
    assert i18n.CORE_MESSAGES["demo.exact"]["vi"] == "mọi giá trị đã đến đúng một lần"
    assert all(set(texts) >= set(i18n.LANGUAGES) for texts in i18n.CORE_MESSAGES.values())


def test_a_table_that_is_not_key_language_text_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fake_feature"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "messages.json").write_text(json.dumps({"a.b": {"en": "x", "vi": 3}}))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"fake_feature/messages\.json: not a table"):
        i18n.load_table("fake_feature")


def test_a_catalogue_without_a_package_is_refused() -> None:
    with pytest.raises(ValueError, match="belongs to a package"):
        i18n.load_table(None)
