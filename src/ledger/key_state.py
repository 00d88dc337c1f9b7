"""What a walk over a ledger knows of its keys: the trusted ones, the one in force, the key
epochs, and the checkpoints met before their key could be judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.checkpoint import Checkpoint
from ledger.keys import PublicKey


@dataclass
class PendingCheckpoint:
    """A checkpoint met before its key could be judged."""

    number: int
    checkpoint: Checkpoint
    head_ok: bool
    signature_checked: bool


@dataclass
class KeyState:
    trusted: dict[str, PublicKey]
    current: PublicKey | None = None
    anchored: bool = False
    epochs: list[list[Any]] = field(default_factory=list)  # [from_seq, key id | None, trusted]
    pending: list[PendingCheckpoint] = field(default_factory=list)

    def anchor_all(self) -> None:
        self.anchored = True
        for epoch in self.epochs:
            epoch[2] = True
