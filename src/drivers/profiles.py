"""Device profiles as data files, shared by the protocol families whose instruments come in kinds.

A profile says what one kind of instrument needs (SCPI queries for a VISA instrument, a register
map for a Modbus device) so that an instrument config names it instead of repeating it. The
profiles etalon ships live in a ``profiles/`` folder of the protocol's package and are named by
their file name (``generic-dmm``); a profile of one's own is a YAML file given by path. A relative
path is relative to the config file that names it (the config loader passes that file's folder
in the validation context, see :func:`core.config_loader.config_dir`), else to the working
directory.

Errors name the file, the field and the reason, like config errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

PROFILE_NAME = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
"""What a profile's ``name`` may be (a shipped profile's is its file name)."""

ModelT = TypeVar("ModelT", bound=BaseModel)


class ProfileError(ValueError):
    """A profile that cannot be found, read, or validated."""


def is_path(name_or_path: str) -> bool:
    """Whether a profile reference is a file path rather than the name of a shipped profile."""
    return name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path


def format_validation(source: str, exc: ValidationError) -> str:
    """Pydantic's errors as ``SOURCE: field.path: reason``, one per problem, joined by '; '."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{source}: {where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


@dataclass
class ProfileShelf(Generic[ModelT]):
    """The profiles of one protocol family: the shipped folder and the model they validate."""

    kind: str
    """Shown in messages: 'VISA', 'Modbus'."""
    model: type[ModelT]
    folder: Traversable
    _loaded: dict[str, ModelT] = field(default_factory=dict, repr=False)

    def shipped(self) -> list[str]:
        """Names of the profiles shipped with etalon."""
        return sorted(
            entry.name.removesuffix(".yaml")
            for entry in self.folder.iterdir()
            if entry.name.endswith(".yaml")
        )

    def reference(self, name_or_path: str, base: Path | None) -> str:
        """The reference as it will be loaded from anywhere: a shipped name as is, a relative
        path joined to ``base`` (the config file's folder) and made absolute."""
        if not is_path(name_or_path):
            return name_or_path
        path = Path(name_or_path).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        return str(path.absolute())

    def load(self, name_or_path: str) -> ModelT:
        """A shipped profile by name or a profile file by path (loaded once); raises
        ProfileError naming the file, the field and the reason."""
        cached = self._loaded.get(name_or_path)
        if cached is not None:
            return cached
        profile = self._read(name_or_path)
        self._loaded[name_or_path] = profile
        return profile

    def _read(self, name_or_path: str) -> ModelT:
        if is_path(name_or_path):
            path = Path(name_or_path)
            source = str(path)
            if not path.is_file():
                problem = "is a directory" if path.is_dir() else "no such file"
                raise ProfileError(f"cannot read profile {path}: {problem}")
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise ProfileError(f"cannot read profile {path}: {reason}") from None
        else:
            entry = self.folder / f"{name_or_path}.yaml"
            source = f"shipped {self.kind} profile {name_or_path}"
            if not entry.is_file():
                raise ProfileError(
                    f"no shipped profile {name_or_path!r} for {self.kind} "
                    f"(shipped: {', '.join(self.shipped())}); give a path to a .yaml file for "
                    "your own"
                )
            text = entry.read_text(encoding="utf-8")
        try:
            data: Any = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            raise ProfileError(
                f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
            ) from None
        if not isinstance(data, dict):
            raise ProfileError(
                f"{source}: a profile is a mapping of keys, not {type(data).__name__}"
            )
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            raise ProfileError(format_validation(source, exc)) from None
