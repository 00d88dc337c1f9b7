"""Errors of the DCC library: what was refused, and what a user can do about it.

::

    DccError                   base (re-parented under core's EtalonError by the integrator)
    ├── DccUnsafe              refused before parsing: too large, a DTD/entity, not XML at all
    ├── DccInvalid             well-formed XML that is not a valid DCC 3.1.2 (the schema's
    │                          own message, with the line), or a model that cannot be written
    ├── UnsupportedUnit        a D-SI unit string or a unit symbol that is not known
    └── SignatureError         signing could not be done (bad key, certificate, document)

Each carries a ``code`` (a key of :data:`metrology.dcc.messages.MESSAGES`, so the message can be
shown in English or Vietnamese) and the ``params`` that fill it; ``str(error)`` is the English
text. A signature that does not verify is not an error: :func:`verify` returns a verdict.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidInputError


class DccError(InvalidInputError):
    """Base of every error of the DCC library; ``code`` + ``params`` give the message in any
    language (:meth:`message`)."""

    default_code = "dcc.error"

    def __init__(self, reason: str, *, code: str | None = None, **params: Any) -> None:
        self.reason = reason
        self.code = code or self.default_code
        self.params: dict[str, Any] = {"reason": reason, **params}
        super().__init__(reason)
        self.params["detail"] = reason

    @property
    def reason(self) -> str:
        """The bare reason (the message may add where: line, path, unit)."""
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = value

    def message(self, lang: str = "en") -> str:
        """The message in ``lang`` ("en" or "vi"); the technical detail stays as produced."""
        from metrology.dcc.messages import text

        return text(self.code, lang, **self.params)


class DccUnsafe(DccError):
    """Input refused before it is parsed as a DCC: too large, a DOCTYPE/entity declaration
    (XXE, entity expansion), or bytes that are not well-formed XML."""

    default_code = "dcc.unsafe"


class DccInvalid(DccError):
    """Well-formed XML that is not a valid DCC 3.1.2; ``line`` (when known) and ``path`` name
    where, ``reason`` is the schema's own message."""

    default_code = "dcc.invalid"

    def __init__(
        self,
        reason: str,
        *,
        line: int | None = None,
        path: str | None = None,
        code: str | None = None,
        **params: Any,
    ) -> None:
        self.line = line
        self.path = path
        where = ", ".join(
            part for part in (f"line {line}" if line else "", f"at {path}" if path else "") if part
        )
        super().__init__(
            f"{where}: {reason}" if where else reason,
            code=code,
            line=line,
            path=path,
            **params,
        )
        self.reason = reason
        self.params["detail"] = str(self)


class UnsupportedUnit(DccError):
    """A unit that is neither a known D-SI unit string nor a known symbol; never guessed."""

    default_code = "dcc.unit"

    def __init__(self, unit: str, reason: str) -> None:
        self.unit = unit
        super().__init__(f"unit {unit!r}: {reason}", unit=unit)
        self.reason = reason
        self.params["reason"] = reason


class SignatureError(DccError):
    """A document could not be signed (key and certificate do not match, a key kind that XML
    signatures do not support, a document that is not a DCC)."""

    default_code = "dcc.signature_error"
