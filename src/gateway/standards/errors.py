"""Errors of the registry; the API maps them to 404, 409 and 422, the CLI to exit status 1."""

from __future__ import annotations

from drivers.errors import EtalonError


class RegistryError(EtalonError):
    """A registry operation that cannot be done; the message says why."""


class NotFound(RegistryError):
    """No such standard or certificate."""


class Conflict(RegistryError):
    """The change clashes with what is registered (an id or certificate number in use)."""


class InvalidInput(RegistryError):
    """The input is not acceptable (a bad file, a bad field)."""


class ImportProblems(RegistryError):
    """An import file has problems; nothing was imported. ``problems``: one line each,
    ``FILE:LINE: field: reason``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
