"""Under ``--lang vi`` every reason a config validator can give is Vietnamese, including those no
example config reaches: the source is walked for the validators of pydantic models
(``field_validator``, ``model_validator``, ``AfterValidator(f)``…) and the functions they call,
every text they raise (``ValueError``, ``AssertionError``, ``PydanticCustomError``, ``assert``)
is made with sample values in its placeholders and put through
:func:`core.i18n.translate_reason`; what comes out is searched for English by the detector of
``test_vietnamese``. A validator message added without its Vietnamese fails here.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator

import pytest

import core.config_loader  # noqa: F401  (registers the validators' catalogue)
from core import i18n
from tests.app.test_vietnamese import english_vocabulary, english_words
from tests.app.test_vietnamese_config_errors import NAME_LISTS, schema_names
from tests.support.processes import REPO

DECORATORS = {"field_validator", "model_validator", "validator", "root_validator"}
WRAPPERS = {"AfterValidator", "BeforeValidator", "PlainValidator", "WrapValidator"}
ERRORS = {"ValueError", "AssertionError", "PydanticCustomError"}
SAMPLE = "v1"
"""A placeholder's sample value: a name (the detector leaves words with digits alone)."""

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _name(node: ast.AST | None) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def sample_text(node: ast.expr) -> str | None:
    """The text an expression makes, its placeholders filled with ``SAMPLE``; None when it is not
    made of literal text (a variable, a join of other reasons)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else SAMPLE for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = sample_text(node.left), sample_text(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Call) and _name(node) == "format":
        assert isinstance(node.func, ast.Attribute)
        template = sample_text(node.func.value)
        return None if template is None else re.sub(r"\{[^{}]*\}", SAMPLE, template)
    return None


def _raised(node: ast.AST) -> ast.expr | None:
    """The message an ``assert`` or a ``raise`` of one of ``ERRORS`` gives."""
    if isinstance(node, ast.Assert):
        return node.msg
    if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _name(node.exc) in ERRORS:
        index = 1 if _name(node.exc) == "PydanticCustomError" else 0  # (type, message, context)
        return node.exc.args[index] if len(node.exc.args) > index else None
    return None


class Source:
    """Python modules' trees, their validators and the functions those call."""

    def __init__(self, files: dict[str, ast.Module]) -> None:
        self.files = files
        self.functions: dict[str, list[tuple[str, Function]]] = {}  # module-level, by name
        self.methods: dict[tuple[str, str], list[tuple[str, Function]]] = {}  # by file, name
        self.of_class: dict[tuple[str, str], list[tuple[str, Function]]] = {}  # by class, name
        for where, tree in files.items():
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions.setdefault(node.name, []).append((where, node))
                elif isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                            self.methods.setdefault((where, item.name), []).append((where, item))
                            key = (node.name, item.name)
                            self.of_class.setdefault(key, []).append((where, item))

    def _callees(self, where: str, call: ast.Call) -> list[tuple[str, Function]]:
        """The functions a call may reach: a module-level function by its name (``f()``,
        ``module.f()``), a method of the same file's classes (``self.f()``, ``cls.f()``) or of a
        class by its name (``PublicKey.from_text()``)."""
        func = call.func
        if isinstance(func, ast.Name):
            return self.functions.get(func.id, [])
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id in ("self", "cls"):
                return self.methods.get((where, func.attr), [])
            return self.of_class.get((func.value.id, func.attr)) or self.functions.get(
                func.attr, []
            )
        return []

    def validators(self) -> Iterator[tuple[str, Function]]:
        for where, tree in self.files.items():
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                    _name(d) in DECORATORS for d in node.decorator_list
                ):
                    yield where, node
                if isinstance(node, ast.Call) and _name(node) in WRAPPERS:
                    for arg in node.args:
                        yield from self.functions.get(_name(arg), [])
                        yield from self.methods.get((where, _name(arg)), [])

    def messages(self) -> dict[str, str]:
        """Every text the validators (and what they call) raise, made with sample values, with
        where; a message made only of placeholders (``f"{problem}: {exc}"``, a join of reasons)
        has no words of its own and is left out."""
        todo, seen, found = list(self.validators()), set(), {}
        while todo:
            where, function = todo.pop()
            if id(function) in seen:
                continue
            seen.add(id(function))
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    todo.extend(self._callees(where, node))
                message = _raised(node)
                text = None if message is None else sample_text(message)
                if text is None or not re.search(r"[A-Za-z]{2}", text.replace(SAMPLE, "")):
                    continue
                if isinstance(node, ast.Raise) and _name(node.exc) == "PydanticCustomError":
                    text = re.sub(r"\{[^{}]*\}", SAMPLE, text)
                found.setdefault(text, f"{where}:{node.lineno}")
        return found


def source_messages() -> dict[str, str]:
    files = {
        str(path.relative_to(REPO)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted((REPO / "src").rglob("*.py"))
    }
    found = Source(files).messages()
    for module in {where.split(":")[0] for where in found.values()}:  # their own catalogues too
        name = module.removeprefix("src/").removesuffix(".py").replace("/", ".")
        importlib.import_module(name.removesuffix(".__init__"))
    return found


def untranslated(messages: dict[str, str]) -> list[str]:
    """The messages whose Vietnamese shows English words (or that have none), with where."""
    own = {w.lower() for text in messages for w in re.findall(r"[A-Za-z]+", text)}
    vocabulary = (english_vocabulary() | own) - schema_names()
    missing = []
    for text, where in sorted(messages.items(), key=lambda item: item[1]):
        said = i18n.translate_reason(text, "vi")
        if english_words(NAME_LISTS.sub(" ", said), vocabulary):
            missing.append(f"{where}: {text!r} -> {said!r}")
    return missing


@pytest.fixture(scope="module")
def messages() -> dict[str, str]:
    return source_messages()


def test_the_walk_finds_the_validators_messages(messages: dict[str, str]) -> None:
    assert "low must be below high" in messages  # a field validator's
    assert "unknown time zone v1" in messages  # an f-string's, filled
    assert "a limit must be a finite number" in messages  # a helper a validator calls
    assert len(messages) > 150


def test_every_validator_message_has_its_vietnamese(messages: dict[str, str]) -> None:
    assert untranslated(messages) == []


def test_a_new_validator_message_without_vietnamese_is_found() -> None:
    """The walk and the check can fail: a validator's new message, and one of a helper it calls,
    are found and reported untranslated."""
    code = """
from pydantic import BaseModel, field_validator

def _helper(value):
    if value < 0:
        raise ValueError(f"the gizmo {value} cannot be negative")
    return value

class Model(BaseModel):
    x: int

    @field_validator("x")
    @classmethod
    def _x(cls, value):
        assert value != 3, "three is not a lucky number"
        return _helper(value)
"""
    found = Source({"new.py": ast.parse(code)}).messages()
    assert found == {
        "the gizmo v1 cannot be negative": "new.py:6",
        "three is not a lucky number": "new.py:15",
    }
    assert len(untranslated(found)) == 2
