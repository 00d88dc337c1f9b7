"""Capped exponential backoff with jitter: the policy (a config model) and the timer that
follows it, for every reconnect and retry loop (instruments, broker, stores, notifiers)."""

from __future__ import annotations

import random

from pydantic import Field, model_validator

from core.models import FrozenModel


class Backoff(FrozenModel):
    """Capped exponential backoff with full jitter between reconnect attempts."""

    initial_s: float = Field(1.0, gt=0)
    max_s: float = Field(60.0, gt=0)
    factor: float = Field(2.0, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be ≥ initial_s")
        return self


class BackoffTimer:
    """Capped exponential backoff with full jitter (AWS architecture blog's 'full jitter')."""

    def __init__(self, policy: Backoff) -> None:
        self.policy = policy
        self.attempt = 0

    def next_delay(self) -> float:
        """The next delay: uniform in [cap/2, cap], cap growing by ``factor`` up to ``max_s``."""
        cap = min(self.policy.max_s, self.policy.initial_s * self.policy.factor**self.attempt)
        self.attempt += 1
        return random.uniform(cap / 2, cap)

    def reset(self) -> None:
        """After a success."""
        self.attempt = 0
