"""Load a YAML config into a pydantic model, with errors a person can act on.

Each problem is one line, ``FILE:LINE: field.path: reason``: the file, the line the YAML parser
places the field on (where it knows it), the field path as written in the file, and pydantic's
reason, in the language of the process (:func:`core.i18n.language`; pydantic's reasons by their
error type, the validators' and the YAML parser's by their text: ``validation_messages.json``).
Duplicate keys, which YAML parsers silently resolve to the last one, are errors too.
A file nested deeper than any config (MAX_DEPTH levels of lists and mappings, as written or
through its aliases), whose aliases make a list or mapping hold itself, or whose aliases expand it
beyond any config's size (an alias bomb), is refused with a reason before it is built or
validated: PyYAML's composer and the checks here recurse once per level, and a RecursionError is
no error to catch (whatever is finalised at the bottom of an exhausted stack fails in turn, as an
unraisable exception), so the depth is bounded before anything recurses.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError, ValidationInfo
from pydantic_core import ErrorDetails

from core.errors import ConfigError
from core.i18n import MessageTable, language, load_table, register, t, translate_reason

VALIDATION_MESSAGES: MessageTable = load_table(__package__, "validation_messages.json")
"""The loader's own texts (``config.*``), pydantic's reasons by error type (``pydantic.TYPE``),
the OS's by errno (``os.*``) and validators' reasons with placeholders (``reason.*``)."""

register(VALIDATION_MESSAGES)

ModelT = TypeVar("ModelT", bound=BaseModel)

CONFIG_DIR = "config_dir"
"""Key of the validation context holding the folder of the config file being validated: paths
a config names relative to itself (a device profile) are resolved against it."""


MAX_NODES = 200_000
"""Values (scalars, lists, mappings) a config may hold once its aliases are expanded: far more
than any lab needs, far fewer than a few lines of ``*alias`` can multiply into."""
MAX_DEPTH = 64
"""Levels of lists and mappings a config may nest (an etalon config uses fewer than ten), in
``[``/``{`` (PyYAML's scanner takes quadratic time in those, so they are counted before it
runs), in blocks, and through aliases."""


class _TooDeep(Exception):
    """The composer met a list or mapping deeper than MAX_DEPTH, on ``line`` (from 1)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to compose a list or mapping inside MAX_DEPTH others: its
    composer recurses once per level, so the limit comes well before the stack's."""

    depth = 0  # lists and mappings around the node being composed

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.depth >= MAX_DEPTH and self.check_event(
            yaml.SequenceStartEvent, yaml.MappingStartEvent
        ):
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _TooDeep(event.start_mark.line + 1 if event.start_mark else 0)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(text: str) -> yaml.Node | None:
    """The node tree of a one-document YAML text (None if empty)."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _construct(text: str) -> Any:
    """The Python data of a one-document YAML text."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        # A construction stopped by an error leaves generators suspended in a reference cycle
        # with the loader: closed now, not by the garbage collector wherever the stack is then.
        for generator in loader.state_generators:
            generator.close()
        loader.state_generators = []
        loader.dispose()


def _flow_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting of a YAML text, outside quotes and comments; linear, so it
    runs before the parser, which is quadratic in it."""
    depth = deepest = 0
    quote = ""
    previous = "\n"
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote == "'" and text[index + 1 : index + 2] == "'":
                index += 1  # '' inside single quotes
            elif char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = ""
        elif char == "#" and previous in " \t\n":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
            continue
        elif char in "'\"" and previous in " \t\n[{,:-?":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
        previous = char
        index += 1
    return deepest


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _shape(root: yaml.Node) -> tuple[int, int, yaml.Node | None]:
    """How many values the node tree holds with its aliases expanded, how many levels of lists
    and mappings it nests through them, and a node that holds itself through an alias (or None,
    and then the first two are meaningful). Iterative: an alias chain nests deeper than the text
    does."""
    shapes: dict[int, tuple[int, int]] = {}  # id(node) -> (size, depth)
    on_path = {id(root)}
    stack = [(root, _children(root))]
    while stack:
        node, pending = stack[-1]
        if pending:
            child = pending.pop()
            if id(child) in on_path:
                return 0, 0, child
            if id(child) not in shapes:
                on_path.add(id(child))
                stack.append((child, _children(child)))
            continue
        stack.pop()
        on_path.discard(id(node))
        kids = [shapes[id(child)] for child in _children(node)]
        shapes[id(node)] = (
            1 + sum(size for size, _ in kids),
            0 if isinstance(node, yaml.ScalarNode) else 1 + max((d for _, d in kids), default=0),
        )
    size, depth = shapes[id(root)]
    return size, depth, None


def _duplicate_keys(node: yaml.Node, path: str, out: list[tuple[int, str]]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                out.append((key_node.start_mark.line + 1, f"{path}{key}"))
            seen.add(key)
            _duplicate_keys(value_node, f"{path}{key}.", out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _duplicate_keys(item, f"{path.rstrip('.')}[{index}].", out)


def locate(root: yaml.Node | None, loc: tuple[int | str, ...]) -> tuple[int | None, str]:
    """The line of the deepest node the error path reaches, and the path as the file spells it.

    Pydantic puts a discriminated union's tag into the path (``instruments.0.sim.name``); it is
    not a key of the file, so it is skipped.
    """
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    shown = ""
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            shown += f"[{part}]"
            if part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            continue
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    shown += f".{part}" if shown else str(part)
                    node = value_node
                    line = key_node.start_mark.line + 1
                    break
            else:
                tags = {str(v.value) for _, v in node.value if isinstance(v, yaml.ScalarNode)}
                if isinstance(part, str) and part in tags:
                    continue  # a union tag (the value of `protocol:`/`kind:`), not a key
                if not last and isinstance(part, str) and not isinstance(loc[index + 1], int):
                    continue  # a union tag, not a key of the file
                shown += f".{part}" if shown else str(part)
                node = None
            continue
        shown += f"[{part}]" if isinstance(part, int) else (f".{part}" if shown else str(part))
    return line, shown or t("config.top_level", language())


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file into Python data and its node tree; raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [t("config.cannot_read", language(), path=path, error=os_reason(exc))]
        ) from exc
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path | str) -> tuple[Any, yaml.Node | None]:
    """Parse the YAML text of ``path`` (named in errors: a file, or a description of where the
    text comes from) into Python data and its node tree: a mapping, without a key given twice;
    raises ConfigError."""
    deepest = _flow_depth(text)
    if deepest > MAX_DEPTH:
        raise ConfigError(
            [t("config.flow_too_deep", language(), path=path, depth=deepest, limit=MAX_DEPTH)]
        )
    try:
        root = _compose(text)
        if root is not None:
            size, depth, cycle = _shape(root)
            if cycle is not None:
                line = cycle.start_mark.line + 1
                raise ConfigError([t("config.alias_cycle", language(), where=f"{path}:{line}")])
            if size > MAX_NODES:
                raise ConfigError(
                    [t("config.alias_bomb", language(), path=path, size=size, limit=MAX_NODES)]
                )
            if depth > MAX_DEPTH:
                raise ConfigError(
                    [
                        t(
                            "config.alias_too_deep",
                            language(),
                            path=path,
                            depth=depth,
                            limit=MAX_DEPTH,
                        )
                    ]
                )
        # Built from a second parse: the constructor merges ``<<`` keys into the nodes it
        # builds from, and the nodes must stay as written (duplicate keys, lines of errors).
        data = _construct(text)
    except _TooDeep as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise ConfigError(
            [t("config.too_deep", language(), where=where, limit=MAX_DEPTH)]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = translate_reason(str(exc.problem or exc), language())
        raise ConfigError(
            [t("config.yaml_syntax", language(), where=where, problem=problem)]
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([t("config.yaml_syntax", language(), where=path, problem=exc)]) from exc
    if data is None:
        raise ConfigError([t("config.empty", language(), path=path)])
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError([t("config.not_mapping", language(), path=path, kind=kind)])
    duplicates: list[tuple[int, str]] = []
    if root is not None:
        _duplicate_keys(root, "", duplicates)  # at most MAX_DEPTH levels: the recursion is bounded
    if duplicates:
        raise ConfigError(
            [
                t("config.key_twice", language(), where=f"{path}:{line}", field=key)
                for line, key in duplicates
            ]
        )
    return data, root


def validation_problems(
    path: Path | str, root: yaml.Node | None, error: ValidationError
) -> list[str]:
    """One ``FILE:LINE: field: reason`` line per pydantic error."""
    problems = []
    for item in error.errors(include_url=False):
        line, shown = locate(root, tuple(item["loc"]))
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {shown}: {reason(item)}")
    return problems


def reason(item: ErrorDetails | Mapping[str, Any], lang: str | None = None) -> str:
    """The reason of one pydantic error, in ``lang`` (default: the language of the process)."""
    message = str(item["msg"]).removeprefix("Value error, ")
    lang = lang or language()
    if lang == "en":
        return message
    return _reason(item["type"], item.get("ctx", {}), message, lang)


_OS_REASONS = {errno.ENOENT: "os.enoent", errno.EACCES: "os.eacces", errno.EISDIR: "os.eisdir"}


def os_reason(exc: OSError | UnicodeDecodeError) -> str:
    """Why a file could not be read: the exception's own text in English, a translated reason
    where the process speaks another language and the cause is a common one."""
    lang = language()
    if lang == "en":
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return t("os.unicode", lang)
    key = _OS_REASONS.get(exc.errno or 0)
    return t(key, lang) if key else str(exc)


def _reason(kind: str, context: dict[str, Any], english: str, lang: str) -> str:
    """Pydantic's reason ``english`` (error ``kind``, its ``context``) in ``lang``: by its type,
    a validator's text by the catalogue or the reasons with placeholders; English otherwise."""
    if kind in ("value_error", "assertion_error"):
        return translate_reason(english, lang)
    key = f"pydantic.{kind}"
    if key not in VALIDATION_MESSAGES:
        return english
    values = {name: str(value) for name, value in context.items()}
    if "error" in values:
        values["error"] = translate_reason(values["error"], lang)
    for name in ("expected", "expected_tags", "expected_schemes"):
        if name in values:
            values[name] = values[name].replace(" or ", f" {t('word.or', lang)} ")
    try:
        return t(key, lang, **values)
    except (KeyError, IndexError, ValueError):
        return english


def context_of(path: Path) -> dict[str, Any]:
    """The validation context of a config file: its folder, which relative paths to profiles
    are relative to."""
    return {CONFIG_DIR: path.absolute().parent}


def config_dir(info: ValidationInfo) -> Path | None:
    """In a validator: the folder of the config file being validated, when the loader said."""
    context = info.context
    if isinstance(context, dict):
        folder = context.get(CONFIG_DIR)
        if isinstance(folder, Path):
            return folder
    return None


def load_config(path: Path, model: type[ModelT]) -> ModelT:
    """Validate a YAML file against ``model``; raises ConfigError listing every problem."""
    return load_config_as(path, lambda _data: model)


def load_config_as(path: Path, choose: Callable[[dict[str, Any]], type[ModelT]]) -> ModelT:
    """:func:`load_config` against the model ``choose`` picks for the file's data (a mapping:
    anything else was refused already)."""
    data, root = load_yaml(path)
    model = choose(data)
    try:
        return model.model_validate(data, context=context_of(path))
    except ValidationError as exc:
        raise ConfigError(validation_problems(path, root, exc)) from None
