"""Refusals worded in the i18n catalogue: an operation error that carries a message ``code``
and its ``params``, so it reads in English as ``str(error)`` (an API's ``detail``, a log) and in
any language through :meth:`Refusal.message` (a command prints it in the user's). A feature
subclasses it once and pairs that class with the kinds of :mod:`core.errors` it needs."""

from __future__ import annotations

from typing import Any

from core.errors import OperationError
from core.i18n import t


class Refusal(OperationError):
    """An operation that cannot be done: ``code`` and ``params`` give its message."""

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(t(code, "en", **params))

    def message(self, lang: str = "en") -> str:
        """The message in ``lang``."""
        return t(self.code, lang, **self.params)
