"""Errors of the registry, in the one error tree (:mod:`core.errors`): the API maps them to 404,
409, 422 and 400, the CLI to exit status 1."""

from __future__ import annotations

from core.errors import ConflictError, InvalidInputError, NotFoundError, OperationError
from gateway.standards import messages  # noqa: F401 - the reasons of these errors, in Vietnamese


class RegistryError(OperationError):
    """A registry operation that cannot be done; the message says why."""


class NotFound(RegistryError, NotFoundError):
    """No such standard or certificate."""


class Conflict(RegistryError, ConflictError):
    """The change clashes with what is registered (an id or certificate number in use)."""


class InvalidInput(RegistryError, InvalidInputError):
    """The input is not acceptable (a bad file, a bad field)."""


class ImportProblems(RegistryError):
    """An import file has problems; nothing was imported. ``problems``: one line each,
    ``FILE:LINE: field: reason``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
