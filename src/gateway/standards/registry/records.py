"""What the registry reads back: standards, certificates with their points and files, the
traceability views, and what a new certificate brings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.standards.files import FileState, StoredFile
from gateway.standards.models import (
    CertificateSpec,
    Conditions,
    StandardSpec,
    TraceabilityNode,
)


class FileInfo(BaseModel):
    """A certificate's file as recorded, and (when checked) whether it still matches."""

    model_config = ConfigDict(frozen=True)

    name: str
    sha256: str
    size: int
    media_type: str
    state: FileState | None = Field(
        None, description="ok, mismatch or missing when the file was checked; else null."
    )

    def stored(self) -> StoredFile:
        """As the file store knows it."""
        return StoredFile(self.name, self.sha256, self.size, self.media_type)


class CertificatePoint(BaseModel):
    """One result of a certificate (a DCC's point): the exact decimal text of its value, U, k
    and p, its unit (registry symbol and D-SI), where it is in the DCC and the conditions it
    was measured at. Names are DCC texts (``{"content": [{"lang": "en", "text": …}, …]}``)."""

    model_config = ConfigDict(frozen=True)

    position: int
    path: str
    measurement_result: dict[str, Any]
    result: dict[str, Any]
    quantity: dict[str, Any] | None
    ref_types: list[str]
    row_index: int | None
    value: str
    unit: str
    dsi_unit: str
    expanded_uncertainty: str | None
    coverage_factor: str | None
    coverage_probability: str | None
    distribution: str | None
    label: str | None
    date_time: str | None
    coverage_interval: dict[str, Any] | None
    conditions: list[dict[str, Any]]


@dataclass(frozen=True)
class CertificateExtras:
    """What a DCC adds to a certificate: the exact texts of its value, U, k and p (in the
    standard's unit), its points, its registry fields and the signature verdict (JSON)."""

    value_text: str
    expanded_uncertainty_text: str
    coverage_factor_text: str
    coverage_probability: str | None
    points: list[dict[str, Any]]
    dcc: str
    signature: str


class CertificateRecord(BaseModel):
    """A registered certificate: its id, its standard, its fields and its file."""

    model_config = ConfigDict(frozen=True)

    id: int
    standard: str
    number: str
    issuer: str
    calibration_date: str
    calibration_ns: int
    due_date: str | None
    due_ns: int | None
    value: float
    expanded_uncertainty: float
    coverage_factor: float
    conditions: Conditions
    notes: str | None
    traceable_to: list[TraceabilityNode]
    file: FileInfo | None
    created_ns: int
    updated_ns: int
    value_text: str = Field("", description="The certified value exactly as registered.")
    expanded_uncertainty_text: str = ""
    coverage_factor_text: str = ""
    coverage_probability: str | None = Field(None, description="p of U, when the DCC gave it.")
    points: list[CertificatePoint] = Field(
        default_factory=list, description="Every result of its DCC (none for one typed in)."
    )
    dcc: dict[str, Any] | None = Field(
        None, description="The DCC's registry fields (laboratory, item, statements…)."
    )
    signature: dict[str, Any] | None = Field(
        None,
        description="The DCC's signature verdict at import: status (valid, invalid, untrusted, "
        "unsigned), signer, when checked, accepted_by when an invalid one was accepted.",
    )

    @model_validator(mode="after")
    def _texts(self) -> CertificateRecord:
        """A record made without its texts (a typed-in value): the floats' own."""
        for name, value in (
            ("value_text", self.value),
            ("expanded_uncertainty_text", self.expanded_uncertainty),
            ("coverage_factor_text", self.coverage_factor),
        ):
            if not getattr(self, name):
                object.__setattr__(self, name, repr(value))
        return self

    @property
    def standard_uncertainty(self) -> float:
        """u = U / k."""
        return self.expanded_uncertainty / self.coverage_factor

    def spec(self, file: str | None = None) -> CertificateSpec:
        """As an import/export entry (``file``: where its file is)."""
        return CertificateSpec.model_validate(
            {
                "number": self.number,
                "issuer": self.issuer,
                "calibration_date": self.calibration_date,
                "due_date": self.due_date,
                "value": self.value,
                "expanded_uncertainty": self.expanded_uncertainty,
                "coverage_factor": self.coverage_factor,
                "conditions": self.conditions,
                "notes": self.notes,
                "traceable_to": self.traceable_to,
                "file": file,
                "file_sha256": self.file.sha256 if self.file and file else None,
            }
        )


class StandardRecord(StandardSpec):
    """A registered standard with its certificates (oldest first)."""

    created_ns: int
    updated_ns: int
    certificates: list[CertificateRecord] = Field(default_factory=list)

    def spec(self) -> StandardSpec:
        """Its own fields and channel links."""
        return StandardSpec.model_validate(
            self.model_dump(exclude={"created_ns", "updated_ns", "certificates"})
        )

    @property
    def latest_certificate(self) -> CertificateRecord | None:
        """The certificate with the latest calibration date."""
        return self.certificates[-1] if self.certificates else None


class TraceView(BaseModel):
    """One step of a traceability chain as shown to an assessor."""

    lab: str
    standard: str
    description: str | None = None
    certificate: str | None = None
    national: bool = False
    registered: bool = Field(False, description="A standard of this registry (expanded).")
    calibrated_on: str | None = None
    traceable_to: list[TraceView] = Field(default_factory=list)


class TraceabilityChain(BaseModel):
    """The chain from a standard up to national standards, through its latest certificate."""

    standard: str
    root: TraceView
    complete: bool = Field(..., description="Every branch ends at a national standard.")
    open_ends: list[str] = Field(
        default_factory=list, description="Branches that end elsewhere: 'lab: standard'."
    )


@dataclass(frozen=True)
class NewCertificate:
    """A certificate to add, with its file already kept (or none)."""

    standard: str
    spec: CertificateSpec
    file: StoredFile | None
    extras: CertificateExtras | None = None
