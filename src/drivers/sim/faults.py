"""Fault hooks shared by every simulator: what a test can switch on to make an instrument sick."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self

from pydantic import Field

from core.models import FrozenModel


class FaultConfig(FrozenModel):
    """Faults a simulator starts with; ``control_file`` lets a test change them while it runs."""

    delay_s: float = Field(0.0, ge=0, description="Slow reply: every answer is late by this much.")
    hang: bool = Field(False, description="No reply at all: the request waits until timed out.")
    garbage_rate: float = Field(0.0, ge=0, le=1, description="Share of replies that are garbage.")
    disconnected: bool = Field(False, description="The connection is refused or dropped.")
    control_file: Path | None = Field(
        None,
        description="JSON file with any of the fields above; re-read when it changes, so a test "
        "can make a running simulator sick and well again.",
    )


@dataclass
class FaultHooks:
    """The live fault state of one simulator (mutable: tests flip it in-process)."""

    delay_s: float = 0.0
    hang: bool = False
    garbage_rate: float = 0.0
    disconnected: bool = False
    control_file: Path | None = None
    _mtime_ns: int = -1

    @classmethod
    def from_config(cls, config: FaultConfig) -> Self:
        """Hooks in the state the config describes: each hook the config has a field for (a
        subclass's too), lists copied so the live hooks never alias the frozen config."""
        given = {name: getattr(config, name) for name in type(config).model_fields}
        hooks: dict[str, Any] = {
            f.name: list(value) if isinstance(value := given[f.name], list) else value
            for f in fields(cls)
            if f.name in given
        }
        return cls(**hooks)

    def refresh(self) -> None:
        """Re-read the control file if it changed; a missing or broken file changes nothing."""
        if self.control_file is None:
            return
        try:
            mtime = os.stat(self.control_file).st_mtime_ns
            if mtime == self._mtime_ns:
                return
            self._mtime_ns = mtime
            overrides = json.loads(Path(self.control_file).read_text())
        except (OSError, ValueError):
            return
        names = {f.name for f in fields(self)} - {"control_file", "_mtime_ns"}
        for key, value in overrides.items():
            if key in names:
                setattr(self, key, type(getattr(self, key))(value))

    def garbage_now(self, rng: random.Random) -> bool:
        """Whether this reply should be garbage."""
        return self.garbage_rate > 0 and rng.random() < self.garbage_rate


GARBAGE_REPLIES = ("\x15\x00?!", "+9.99999E+37ERR", "#&%", "", "1.2.3", "NaN?")
