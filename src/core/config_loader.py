"""Load a YAML config into a pydantic model, with errors a person can act on.

Each problem is one line, ``FILE:LINE: field.path: reason``: the file, the line the YAML parser
places the field on (where it knows it), the field path as written in the file, and pydantic's
reason. Duplicate keys, which YAML parsers silently resolve to the last one, are errors too.
A file nested deeper than the parser can follow, or whose aliases expand it beyond any config's
size (an alias bomb), is refused with a reason instead of crashing or hanging the loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError, ValidationInfo

from core.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

CONFIG_DIR = "config_dir"
"""Key of the validation context holding the folder of the config file being validated: paths
a config names relative to itself (a device profile) are resolved against it."""


MAX_NODES = 200_000
"""Values (scalars, lists, mappings) a config may hold once its aliases are expanded: far more
than any lab needs, far fewer than a few lines of ``*alias`` can multiply into."""
MAX_FLOW_DEPTH = 64
"""``[``/``{`` nesting a config may use (PyYAML's scanner takes quadratic time in it)."""


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


def _expanded(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values the node holds with its aliases expanded (each shared node sized once)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded(k, memo) + _expanded(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded(item, memo) for item in node.value)
    memo[id(node)] = size
    return size


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
    return line, shown or "(top level)"


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file into Python data and its node tree; raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path | str) -> tuple[Any, yaml.Node | None]:
    """Parse the YAML text of ``path`` (named in errors: a file, or a description of where the
    text comes from) into Python data and its node tree: a mapping, without a key given twice;
    raises ConfigError."""
    deepest = _flow_depth(text)
    if deepest > MAX_FLOW_DEPTH:
        raise ConfigError([f"{path}: YAML nested too deeply ([ or {{ {deepest} levels deep)"])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        size = _expanded(root, {}) if root is not None else 0
        if size > MAX_NODES:
            raise ConfigError(
                [f"{path}: its aliases expand it to {size} values, at most {MAX_NODES}"]
            )
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError([f"{path}: YAML nested too deeply"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: YAML syntax: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: YAML syntax: {exc}"]) from exc
    if data is None:
        raise ConfigError([f"{path}: the file is empty"])
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{path}: the top level must be a mapping of keys, not {type(data).__name__}"]
        )
    duplicates: list[tuple[int, str]] = []
    try:
        _duplicate_keys(root, "", duplicates) if root is not None else None
    except RecursionError:
        raise ConfigError([f"{path}: YAML nested too deeply"]) from None
    if duplicates:
        raise ConfigError([f"{path}:{line}: {key}: key appears twice" for line, key in duplicates])
    return data, root


def validation_problems(
    path: Path | str, root: yaml.Node | None, error: ValidationError
) -> list[str]:
    """One ``FILE:LINE: field: reason`` line per pydantic error."""
    problems = []
    for item in error.errors(include_url=False):
        line, shown = locate(root, tuple(item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {shown}: {message}")
    return problems


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
    data, root = load_yaml(path)
    try:
        return model.model_validate(data, context=context_of(path))
    except ValidationError as exc:
        raise ConfigError(validation_problems(path, root, exc)) from None
    except RecursionError:
        raise ConfigError([f"{path}: YAML nested too deeply"]) from None
