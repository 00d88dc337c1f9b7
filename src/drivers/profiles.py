"""Device profiles as data files, shared by the protocol families whose instruments come in kinds.

A profile says what one kind of instrument needs (SCPI queries for a VISA instrument, a register
map for a Modbus device) so that an instrument config names it instead of repeating it. The
profiles etalon ships live in a ``profiles/`` folder of the protocol's package and are named by
their file name (``generic-dmm``); a profile of one's own is a YAML file given by path. A relative
path is relative to the config file that names it (the config loader passes that file's folder
in the validation context, see :func:`core.config_loader.config_dir`), else to the working
directory.

A profile file is read as a config file is (:func:`core.config_loader.parse_yaml`): a mapping,
no key given twice; errors name the file, the line, the field and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from core.config_loader import parse_yaml, validation_problems
from core.errors import ConfigError

PROFILE_NAME = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
"""What a profile's ``name`` may be (a shipped profile's is its file name)."""

ModelT = TypeVar("ModelT", bound=BaseModel)


class ProfileError(ValueError):
    """A profile that cannot be found, read, or validated."""


def is_path(name_or_path: str) -> bool:
    """Whether a profile reference is a file path rather than the name of a shipped profile."""
    return name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path


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

    def checked_reference(self, name_or_path: str, base: Path | None) -> str:
        """The :meth:`reference` of a profile that loads; else a ValueError saying why (for a
        config field validator)."""
        reference = self.reference(name_or_path, base)
        try:
            self.load(reference)
        except ProfileError as exc:
            raise ValueError(str(exc)) from None
        return reference

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
        source: Path | str
        if is_path(name_or_path):
            path = Path(name_or_path)
            source = path
            if not path.is_file():
                problem = (
                    "no such file"
                    if not path.exists()
                    else "is a directory"
                    if path.is_dir()
                    else "not a regular file"
                )
                stem = path.name.removesuffix(".yaml").removesuffix(".yml")
                if not path.exists() and stem in self.shipped():
                    problem += (
                        f"; the shipped profile is named without a path or .yaml: profile: {stem}"
                    )
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
        # The same rules as a config file: a mapping, no key given twice, FILE:LINE: field.
        try:
            data, root = parse_yaml(text, source)
        except ConfigError as exc:
            raise ProfileError("; ".join(exc.problems)) from None
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            raise ProfileError("; ".join(validation_problems(source, root, exc))) from None
