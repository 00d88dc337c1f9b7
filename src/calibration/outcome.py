"""How a run ends (:class:`Outcome`), and what stops a point (:class:`PointFailed`), the run
(:class:`RunAborted`) or the work (:class:`Interrupted`) on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.errors import EtalonError
from metrology.certificate.record import Settling


class RunAborted(EtalonError):
    """The run cannot go on (the reason says why); it can be resumed once that is fixed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PointFailed(Exception):
    """A point could not be measured (the reason goes into the record); the run goes on."""

    def __init__(self, reason: str, settling: Settling | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.settling = settling


class Interrupted(Exception):
    """The run was told to stop."""


@dataclass
class Outcome:
    """How ``execute`` ended."""

    run: str
    status: Literal["completed", "interrupted", "aborted"]
    reason: str | None = None
    record_sha256: str | None = None
    decision: str | None = None
    safe_state_failures: dict[str, str] = field(default_factory=dict)
