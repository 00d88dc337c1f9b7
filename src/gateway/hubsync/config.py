"""The ``hub:`` section of a gateway's config: the national hub it pushes its record ledger to."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from core.backoff import Backoff
from core.models import FrozenModel
from core.secrets import Secret

LAB_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class HubSyncConfig(FrozenModel):
    """Push the gateway's signed record ledger to a national hub (docs/hub.md)."""

    url: str = Field(
        ...,
        min_length=8,
        max_length=2000,
        description="The hub's base URL, e.g. 'https://hub.example.vn:8443' (HTTPS; plain "
        "http only to a loopback address).",
    )
    lab: str | None = Field(
        None,
        pattern=LAB_ID,
        description="The lab's id at the hub (its ledger id); default: the ledger's own id.",
    )
    token: Secret = Field(..., description="The push token the hub printed at enrolment.")
    ca_file: Path | None = Field(
        None, description="CA certificates (PEM) to trust for the hub; default: the system's."
    )
    interval_s: float = Field(
        60.0, ge=0.05, le=86_400, description="How often to look for entries to push."
    )
    max_entries: int = Field(
        1000, ge=1, le=10_000, description="Entries per segment (a segment ends on a checkpoint)."
    )
    timeout_s: float = Field(30.0, gt=0, le=600, description="Each request's timeout.")
    backoff: Backoff = Field(
        default_factory=lambda: Backoff(initial_s=5.0, max_s=600.0),
        description="Waits between attempts while the hub is unreachable.",
    )

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("give the hub's URL as https://HOST[:PORT]")
        if parts.username or parts.password:
            raise ValueError("no credentials in the URL: give 'token'")
        if parts.query or parts.fragment:
            raise ValueError("no query or fragment in the hub's URL")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the hub is reached over HTTPS (plain http only on loopback)")
        return url.rstrip("/")
