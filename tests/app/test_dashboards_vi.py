"""The Vietnamese Grafana dashboards are generated from the English ones, never edited twice: the
committed copies are exactly what the generator makes now, every text a user reads on them is
translated, and nothing but those texts (and the uid and language tag) differs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.dashboards import TRANSLATED_KEYS, generated, main, translate_board
from tests.app.test_vietnamese import english_vocabulary, english_words
from tests.support.processes import REPO

SOURCE = REPO / "dashboards" / "grafana"


def test_the_committed_vietnamese_copies_are_what_the_generator_makes() -> None:
    files = generated(SOURCE)
    committed = sorted((SOURCE / "vi").glob("*.json"))
    assert sorted(files) == committed, "run: python -m app.dashboards dashboards/grafana"
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is out of date: run python -m app.dashboards dashboards/grafana"
        )


COLUMN = re.compile(r'\bAS "([^"]+)"')


def without_texts(node: Any) -> Any:
    """A dashboard with its user-facing texts (series names and the patterns picking them
    included), uid and language tags taken out."""
    if isinstance(node, dict):
        return (
            {
                key: without_texts(value)
                for key, value in node.items()
                if key not in (*TRANSLATED_KEYS, "uid", "alias", "options", "query")
            }
            | (
                {"tags": [t for t in node["tags"] if t not in ("en", "vi")]}
                if "tags" in node
                else {}
            )
            | ({"query": COLUMN.sub('AS "…"', node["query"])} if "query" in node else {})
            | ({"alias": re.findall(r"\$\w+", node["alias"])} if "alias" in node else {})
        )
    if isinstance(node, list):
        return [without_texts(item) for item in node]
    return node


def texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            text
            for key, value in node.items()
            for text in ([value] if key in TRANSLATED_KEYS and isinstance(value, str) else [])
            + ([] if key in TRANSLATED_KEYS else texts(value))
        ]
    if isinstance(node, list):
        return [text for item in node for text in texts(item)]
    return []


@pytest.mark.parametrize("path", sorted(SOURCE.glob("*.json")), ids=lambda p: p.stem)
def test_a_copy_differs_only_in_its_texts_and_every_text_is_translated(path: Path) -> None:
    english = json.loads(path.read_text(encoding="utf-8"))
    vietnamese = json.loads((SOURCE / "vi" / path.name).read_text(encoding="utf-8"))
    assert without_texts(vietnamese) == without_texts(english)  # same panels, queries, units
    assert vietnamese["uid"] == english["uid"] + "-vi"
    assert "en" in english["tags"] and "vi" in vietnamese["tags"] and "en" not in vietnamese["tags"]
    # Dashboard links list the dashboards of their own language only.
    assert all("vi" in link["tags"] for link in vietnamese["links"])
    english_texts = texts(english)
    assert len(texts(vietnamese)) == len(english_texts)
    for before, after in zip(english_texts, texts(vietnamese), strict=True):
        assert after != before or before in {"etalon"}, f"{path.name}: {before!r} not translated"


def test_a_text_without_translation_stops_the_generator(tmp_path: Path) -> None:
    board = json.loads((SOURCE / "etalon-environment.json").read_text(encoding="utf-8"))
    board["panels"][0]["title"] = "A panel nobody translated"
    (tmp_path / "board.json").write_text(json.dumps(board), encoding="utf-8")
    _, missing = translate_board(board, "vi")
    assert missing == {"A panel nobody translated"}
    with pytest.raises(ValueError, match=r"board\.json: 'A panel nobody translated'"):
        generated(tmp_path)
    assert main([str(tmp_path)]) == 1
    assert not (tmp_path / "vi").exists()  # nothing half-written


def series(panel: dict[str, Any]) -> list[str]:
    """The series names a panel's legend can show: its queries' columns and its aliases'
    words (``$tag_…`` left as the variable)."""
    names = []
    for target in panel.get("targets", []):
        columns = COLUMN.findall(target.get("query", "")) or [""]
        alias = target.get("alias", "$col")
        names += [alias.replace("$col", column) for column in columns]
    return names


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board.get("panels", []):
        out += [panel, *panels(panel)]
    return out


@pytest.mark.parametrize("path", sorted(SOURCE.glob("*.json")), ids=lambda p: p.stem)
def test_legends_are_vietnamese_and_overrides_still_pick_their_series(path: Path) -> None:
    """What a legend shows (a query's ``AS "name"``, an alias's words) is translated, and an
    override that picks series by a pattern picks the same ones in the copy."""
    english = json.loads(path.read_text(encoding="utf-8"))
    vietnamese = json.loads((SOURCE / "vi" / path.name).read_text(encoding="utf-8"))
    vocabulary = english_vocabulary()
    for before, after in zip(panels(english), panels(vietnamese), strict=True):
        names = series(after)
        legend = " ".join(re.sub(r"\$\w+", " ", name) for name in names)
        assert english_words(legend, vocabulary) == [], f"{path.name}: {after['title']}: {names}"
        for override_en, override_vi in zip(
            before.get("fieldConfig", {}).get("overrides", []),
            after.get("fieldConfig", {}).get("overrides", []),
            strict=True,
        ):
            if override_en["matcher"]["id"] != "byRegexp":
                continue
            picked_en = [re.fullmatch(override_en["matcher"]["options"], n) for n in series(before)]
            picked_vi = [re.fullmatch(override_vi["matcher"]["options"], n) for n in names]
            assert any(picked_en), override_en
            assert [bool(m) for m in picked_vi] == [bool(m) for m in picked_en], override_vi
