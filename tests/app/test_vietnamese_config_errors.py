"""Under ``--lang vi`` a config's problems are Vietnamese whatever is wrong with it: every example
config of ``config/`` is broken in every place (a key added to each mapping, each key removed,
each value replaced by one of another type) and every problem ``etalon check`` would print is
searched for English, by the detector of ``test_vietnamese``. The names a config is written in
(keys, choices, channels, profiles) are names, not English; everything else is the catalogue's.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.configs import load_any, schemas
from core import i18n
from core.config_loader import os_reason
from core.errors import ConfigError
from tests.app.test_vietnamese import english_vocabulary, english_words
from tests.support.processes import REPO

EXAMPLES = sorted((REPO / "config").glob("*.yaml"))


def secrets() -> dict[str, str]:
    """Every environment variable the examples name, set (their problems are the subject)."""
    text = "".join(path.read_text(encoding="utf-8") for path in EXAMPLES)
    return {name: "s" * 32 for name in set(re.findall(r"\bETALON_[A-Z0-9_]+", text))}


def schema_names() -> set[str]:
    """Every key and choice the configs' schemas declare: the words a config is written in."""
    words: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    words.update(value)
                if key in ("enum", "const"):
                    words.update(str(v) for v in (value if isinstance(value, list) else [value]))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(json.dumps(schemas(), default=str)))
    return {part.lower() for word in words for part in re.split(r"[-_ .:/]", word) if part}


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every node, and in a list only the first item of each shape (an instrument of each
    protocol, a rule of each kind): the others break in the same ways."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, (*path, key))
    elif isinstance(node, list):
        shapes: set[str] = set()
        for index, item in enumerate(node):
            shape = (
                repr([item.get(key) for key in ("protocol", "kind", "type")])
                if isinstance(item, dict)
                else type(item).__name__
            )
            if shape not in shapes:
                shapes.add(shape)
                yield from _places(item, (*path, index))


def broken(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The document broken in each place, one way at a time."""
    for path, node in list(_places(document)):
        if isinstance(node, dict):
            changed = copy.deepcopy(document)
            _at(changed, path)["no_such_key"] = 1
            yield changed
            for key in node:
                changed = copy.deepcopy(document)
                del _at(changed, path)[key]
                yield changed
        elif path and not isinstance(node, list):
            changed = copy.deepcopy(document)
            _at(changed, path[:-1])[path[-1]] = "xyzzy" if isinstance(node, str) else ["x"]
            yield changed


NAME_LISTS = re.compile(
    r"\((?:có|dựng sẵn|đã biết|các mục đặt|thiết bị có|chọn trong)[^)]*\)"  # lists of names
    r"|\[\d+\][^:;]*:"  # a field's path inside a reason ([0].name:)
    r"|\w+=\S*"  # a setting as written (m=65536)
)


def leaks(problem: str, vocabulary: set[str]) -> list[str]:
    """English words of a problem's reason (``FILE:LINE: field: reason``)."""
    reason = problem.split(": ", 2)[-1]
    return english_words(NAME_LISTS.sub(" ", reason), vocabulary)


@pytest.fixture(scope="module")
def vocabulary() -> set[str]:
    return english_vocabulary() - schema_names()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_problem_of_a_broken_example_is_vietnamese(
    example: Path, vocabulary: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in secrets().items():
        monkeypatch.setenv(name, value)
    document = yaml.safe_load(example.read_text(encoding="utf-8"))
    path = tmp_path / example.name
    found: dict[str, str] = {}
    tried = 0
    i18n.choose_language("vi")
    try:
        for changed in broken(document):
            path.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
            tried += 1
            try:
                load_any(path)
            except ConfigError as exc:
                for problem in exc.problems:
                    for word in leaks(problem, vocabulary):
                        found.setdefault(word, problem)
    finally:
        i18n.choose_language(None)
    assert tried > 10
    assert found == {}, "\n".join(sorted(set(found.values())))


def test_the_detector_finds_english_problems(vocabulary: set[str]) -> None:
    """The same search on the English problems finds English (it can fail)."""
    problem = "f.yaml:3: mqtt.port: Input should be a valid integer, unable to parse string"
    assert {"should", "unable"} <= set(leaks(problem, vocabulary))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "tệp trống"),
        ("- a\n", "cấp trên cùng phải là một ánh xạ khóa"),
        ("a: 1\na: 2\n", "khóa xuất hiện hai lần"),
        ("a: b: c\n", "lỗi cú pháp YAML: không được đặt cặp khóa: giá trị ở đây"),
        ("a:\n\tb: 1\n", "không được đứng ở đây"),
        ("a: [\n", "cần một giá trị"),
        ("a: &x [*x]\n", "chứa chính nó"),
    ],
)
def test_the_loaders_own_problems_are_vietnamese(
    text: str, says: str, tmp_path: Path, vocabulary: set[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    i18n.choose_language("vi")
    try:
        with pytest.raises(ConfigError) as error:
            load_any(path)
        missing = tmp_path / "missing.yaml"
        with pytest.raises(ConfigError) as absent:
            load_any(missing)
    finally:
        i18n.choose_language(None)
    [problem] = error.value.problems
    assert says in problem, problem
    assert leaks(problem, vocabulary) == [], problem
    assert absent.value.problems == [f"{missing}: không đọc được: không có tệp hoặc thư mục này"]
    assert os_reason(FileNotFoundError(2, "No such file or directory")).startswith("[Errno 2]")
