"""Secrets named in a config (an environment variable or a file), never written inline."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from core.models import FrozenModel


class EnvSecret(FrozenModel):
    """A secret read from an environment variable."""

    env: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    def resolve(self) -> str:
        """The secret; raises ValueError if the variable is not set."""
        value = os.environ.get(self.env)
        if value is None:
            raise ValueError(f"environment variable {self.env} is not set")
        return value


class FileSecret(FrozenModel):
    """A secret read from a file (first line, whitespace stripped), e.g. a Docker/systemd secret."""

    file: Path

    def resolve(self) -> str:
        """The secret; raises ValueError if the file cannot be read."""
        try:
            return self.file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc}") from exc


Secret = EnvSecret | FileSecret


def check_secret(secret: Secret | None) -> None:
    """A config's validation: the secret it names, if any, resolves now (a variable not set, a
    file not readable: refused at load, not at first use). Raises ValueError."""
    if secret is not None:
        secret.resolve()


def check_login(username: str | None, password: Secret | None) -> None:
    """A config's validation: a password needs a user name, and resolves now. Raises
    ValueError."""
    if password is not None and username is None:
        raise ValueError("password given without username")
    check_secret(password)
