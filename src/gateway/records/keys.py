"""The record store's files beside its database: the signing key (or the variable holding it),
its public half, and the signed checkpoints (with their copies elsewhere)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from core.errors import ConfigError
from gateway.records.config import RecordsConfig
from ledger import Checkpoint, CheckpointFile, LedgerError, PublicKey, SigningKey


def load_key(records: RecordsConfig, *, create: bool) -> SigningKey:
    """The signing key the config names; ``ConfigError`` names the file or variable."""
    ledger = records.ledger
    try:
        if ledger.key_env is not None:
            return SigningKey.from_env(ledger.key_env)
        return SigningKey.open(records.key_path(), create=create)
    except LedgerError as exc:
        field = "records.ledger.key_env" if ledger.key_env else "records.ledger.key_file"
        raise ConfigError([f"{field}: {exc}"]) from None


def write_public_key(path: Path, key: PublicKey) -> None:
    """The public half beside the key (0644: anyone may verify), replaced atomically."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(key.to_pem())
    temporary.chmod(0o644)
    temporary.replace(path)


def trusted_keys(records: RecordsConfig, key: SigningKey | None = None) -> list[PublicKey]:
    """The keys verification trusts: pinned in the config, else the public key file, else the
    signing key's own public half."""
    pinned = [PublicKey.from_text(text) for text in records.ledger.trusted_keys]
    if pinned:
        return pinned
    try:
        return [PublicKey.from_text(records.public_key_path().read_bytes())]
    except FileNotFoundError:
        pass
    except (OSError, LedgerError) as exc:
        raise ConfigError([f"{records.public_key_path()}: {exc}"]) from None
    return [] if key is None else [key.public_key]


def checkpoint_lines(records: RecordsConfig) -> list[str]:
    """The checkpoint lines to verify with: the file beside the store, then what a copy holds
    beyond it (a copy keeps the checkpoints someone cut from the first file along with the
    ledger's last entries)."""
    lines = CheckpointFile(records.checkpoints_path()).lines()
    highest = 0
    for line in lines:
        with contextlib.suppress(LedgerError, ValueError):
            highest = max(highest, Checkpoint.from_json(line).count)
    for copy in records.ledger.checkpoint_copies:
        try:
            extra = CheckpointFile(copy).lines()
        except LedgerError:
            continue
        for line in extra:
            with contextlib.suppress(LedgerError, ValueError):
                checkpoint = Checkpoint.from_json(line)
                if checkpoint.count > highest:
                    lines.append(line)
                    highest = checkpoint.count
    return lines
