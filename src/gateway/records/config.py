"""The ``records.ledger`` section of the gateway config: the record ledger's identity, its
signing key, where its signed checkpoints go and how often, and how often the running gateway
verifies the records. Light on purpose: it is imported by every gateway config load."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from core.models import FrozenModel

LEDGER_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class LedgerConfig(FrozenModel):
    """The tamper-evident ledger of the record store (see docs/records.md)."""

    id: str | None = Field(
        None,
        pattern=LEDGER_ID,
        description="The ledger's id (e.g. the lab's id at the national hub); default "
        "'{site}.{gateway id}'. Fixed when the ledger starts: the record store keeps it.",
    )
    key_file: Path | None = Field(
        None,
        description="The Ed25519 signing key (PEM); generated on first start with mode 0600 "
        "if absent. Default: '<records file>.ledger.key' next to the record store.",
    )
    key_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Take the signing key from this environment variable (PEM, or base64 of "
        "the 32-byte seed) instead of a file.",
    )
    trusted_keys: list[str] = Field(
        default_factory=list,
        description="Public keys verification trusts (base64 of the 32 raw bytes, or PEM), "
        "pinned here so that whoever can replace the key file cannot re-sign a rewritten "
        "chain; default: the public half of the signing key ('<key>.pub').",
    )
    checkpoints_file: Path | None = Field(
        None,
        description="Signed checkpoints, one JSON line each; default '<records file>"
        ".checkpoints' next to the record store.",
    )
    checkpoint_copies: list[Path] = Field(
        default_factory=list,
        description="Further files every checkpoint is also appended to (another disk, a "
        "mounted share): what is left when someone cuts both the ledger and the first file.",
    )
    publish_checkpoints: bool = Field(
        True,
        description="Publish each checkpoint retained on MQTT "
        "({prefix}/v1/{site}/gateways/{id}/ledger).",
    )
    checkpoint_every_entries: int = Field(
        1000, ge=1, le=1_000_000, description="Sign a checkpoint after this many new entries."
    )
    checkpoint_every_s: float = Field(
        300.0, ge=1, le=86_400, description="… and at least this often while entries come in."
    )
    verify_interval_s: float = Field(
        3600.0,
        ge=0,
        le=7 * 86_400,
        description="How often the running gateway verifies the whole record store (0: only "
        "at start); a finding raises the records_integrity alert.",
    )

    @field_validator("trusted_keys")
    @classmethod
    def _keys_read(cls, keys: list[str]) -> list[str]:
        from ledger import LedgerError, PublicKey

        for index, text in enumerate(keys):
            try:
                PublicKey.from_text(text)
            except (LedgerError, ValueError) as exc:
                raise ValueError(
                    f"trusted_keys[{index}] is not an Ed25519 public key: {exc}"
                ) from None
        return keys

    @model_validator(mode="after")
    def _one_key_source(self) -> LedgerConfig:
        if self.key_env is not None and self.key_file is not None:
            raise ValueError("give key_file or key_env, not both")
        return self


class DeadLetterRetention(FrozenModel):
    """How long, and how much of, what the gateway refused is kept in the record store."""

    max_age_days: float = Field(
        30.0, gt=0, le=36_500, description="Dead letters older than this are deleted."
    )
    max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Beyond this total (payloads, reasons, topics), the oldest are deleted.",
    )
    trim_interval_s: float = Field(
        300.0, ge=1, le=86_400, description="How often the limits are applied."
    )


class RecordsConfig(FrozenModel):
    """The record store: agents, channels, audit log, standards, alerts — and their ledger."""

    path: Path
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    deadletters: DeadLetterRetention = Field(default_factory=DeadLetterRetention)

    def key_path(self) -> Path:
        """Where the signing key file is (when it comes from a file)."""
        return self.ledger.key_file or self.path.with_name(self.path.stem + ".ledger.key")

    def public_key_path(self) -> Path:
        """Where the public half of the signing key is written (readable by verifiers)."""
        key = self.key_path()
        return key.with_name(key.name.removesuffix(".key") + ".pub")

    def checkpoints_path(self) -> Path:
        """The checkpoint file beside the record store."""
        return self.ledger.checkpoints_file or self.path.with_name(self.path.stem + ".checkpoints")

    def lock_path(self) -> Path:
        """The lock writers hold while they append and sign (several processes may write)."""
        return self.path.with_name(self.path.stem + ".ledger.lock")
