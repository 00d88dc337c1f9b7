"""The gateway's ``calibrations:`` section: the lab's key that signs the DCCs it serves."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from drivers.config import FrozenModel
from edge_agent.config import Secret


class SigningConfig(FrozenModel):
    """The laboratory's signing key and X.509 certificate (PEM), and its intermediates."""

    key_file: Path = Field(..., description="Private key, PEM (ECDSA P-256/384/521 or RSA ≥ 2048).")
    cert_file: Path = Field(..., description="The lab's certificate, PEM.")
    chain_files: list[Path] = Field(default_factory=list, description="Intermediate CAs, PEM.")
    password: Secret | None = Field(None, description="The key's password, if it has one.")

    @model_validator(mode="after")
    def _files_exist(self) -> SigningConfig:
        for path in (self.key_file, self.cert_file, *self.chain_files):
            if not path.is_file():
                raise ValueError(f"file not found: {path}")
        if self.password is not None:
            self.password.resolve()
        return self


class CalibrationsConfig(FrozenModel):
    """Calibration records from benches."""

    signing: SigningConfig | None = Field(
        None, description="Sign the DCCs served at /api/v1/calibrations/{run}/dcc."
    )
