"""The ledger's errors.

The ledger is a pure library below every other floor, so it has its own small tree; when
``core/errors.py`` exists, ``LedgerError`` becomes a subclass of ``core.errors.EtalonError``
(one line here) and nothing else changes::

    LedgerError
    ├── CanonicalError     a value has no canonical JSON form (float, big integer, bad key...)
    ├── EntryError         an entry's field breaks the entry format
    ├── KeyFileError       a signing key cannot be loaded, created or trusted (never shows the key)
    ├── CheckpointError    a checkpoint line or file cannot be read, or cannot be made
    ├── ChainError         an append that would break the chain (out of order, wrong key)
    └── SegmentError       a segment cannot be exported as asked

Tampering is not an error: ``verify`` and ``verify_segment`` return a report naming it.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from core.errors import EtalonError


class LedgerError(EtalonError):
    """Base of every error the ledger raises on purpose."""


class _Refusal(LedgerError):
    """A refusal about one place: the message is ``<place>: <reason>``; the place is kept
    under the one attribute the subclass declares (``path: str``), the reason as ``reason``."""

    _place: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The declaration is the only place the attribute is named: no second spelling to drift.
        # A subclass that declares nothing keeps its parent's place.
        declared = list(inspect.get_annotations(cls))
        if len(declared) == 1:
            cls._place = declared[0]
        elif declared or not hasattr(cls, "_place"):
            raise TypeError(f"{cls.__name__} must declare one place attribute, not {declared}")

    def __init__(self, place: str, reason: str) -> None:
        setattr(self, self._place, place)
        self.reason = reason
        super().__init__(f"{place}: {reason}")


class CanonicalError(_Refusal, ValueError):
    """A value has no canonical JSON form; ``path`` says where (``$``, ``$.a[2]``...)."""

    path: str


class EntryError(_Refusal, ValueError):
    """An entry field breaks the entry format; ``field`` names it."""

    field: str


class KeyFileError(_Refusal):
    """A signing key cannot be loaded or created; ``source`` is the file or variable name.

    The message never contains key material, only where it came from and why it was refused.
    """

    source: str


class CheckpointError(_Refusal, ValueError):
    """A checkpoint cannot be read or made; ``where`` is a file and line, or a field."""

    where: str


class ChainError(LedgerError):
    """An append, commit, rotation or checkpoint that would break the chain."""


class SegmentError(LedgerError):
    """A segment cannot be exported as asked (no checkpoint at its end, entries missing...)."""
