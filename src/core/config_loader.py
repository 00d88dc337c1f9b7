"""Load a YAML config into a pydantic model, with errors a person can act on.

Each problem is one line, ``FILE:LINE: field.path: reason``: the file, the line the YAML parser
places the field on (where it knows it), the field path as written in the file, and pydantic's
reason. Duplicate keys, which YAML parsers silently resolve to the last one, are errors too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


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
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
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
    _duplicate_keys(root, "", duplicates) if root is not None else None
    if duplicates:
        raise ConfigError([f"{path}:{line}: {key}: key appears twice" for line, key in duplicates])
    return data, root


def validation_problems(path: Path, root: yaml.Node | None, error: ValidationError) -> list[str]:
    """One ``FILE:LINE: field: reason`` line per pydantic error."""
    problems = []
    for item in error.errors(include_url=False):
        line, shown = locate(root, tuple(item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {shown}: {message}")
    return problems


def load_config(path: Path, model: type[ModelT]) -> ModelT:
    """Validate a YAML file against ``model``; raises ConfigError listing every problem."""
    data, root = load_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(path, root, exc)) from None
