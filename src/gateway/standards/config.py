"""The ``standards:`` section of the gateway config: where certificate files go and how the
scheduled analytics run. Light on purpose: it is imported by every gateway config load."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from core.clock import ClockConfig, SystemClockConfig
from core.models import FrozenModel
from core.secrets import Secret

ModelChoice = Literal["auto", "mean", "linear", "quadratic"]

SECONDS_PER_DAY = 86_400.0


FIRST_YEAR, LAST_YEAR = 1900, 2200
"""Dates a metrology record can hold (and that fit a nanosecond timestamp in 64 bits)."""


def in_range(value: date) -> date:
    """The date itself, if it is between FIRST_YEAR and LAST_YEAR."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"{value.isoformat()} is not between {FIRST_YEAR} and {LAST_YEAR}")
    return value


Day = Annotated[date, AfterValidator(in_range)]
"""A date, from 1900 to 2200."""


def end_after_start(value: date | None, info: ValidationInfo) -> date | None:
    """A field validator for ``baseline_end``: not before ``baseline_start``."""
    start = info.data.get("baseline_start")
    if value is not None and start is not None and value < start:
        raise ValueError(f"{value} is before baseline_start {start}")
    return value


def dates_together(start: date | None, end: date | None) -> None:
    """A dated baseline has both its dates, or neither."""
    if (start is None) != (end is None):
        raise ValueError("baseline_start and baseline_end are given together")


class HistoryConfig(FrozenModel):
    """How the analytics read a channel's history back from the time-series store."""

    api: Literal["auto", "sqlite", "influxql", "victoriametrics"] = Field(
        "auto",
        description="auto: the embedded store is read with SQL, InfluxDB 1.x with InfluxQL; for "
        "an InfluxDB v2 API store the gateway asks once whether the server offers "
        "VictoriaMetrics' /api/v1/export, else uses the InfluxDB 1.x-compatible /query.",
    )
    database: str | None = Field(
        None,
        min_length=1,
        description="InfluxQL database of an InfluxDB 2.x/3.x store (its DBRP mapping); "
        "default: the bucket's name.",
    )
    chunk_days: float = Field(
        31.0, gt=0, le=3660, description="Raw history is read in slices of this many days."
    )
    reread_periods: int = Field(
        2,
        ge=1,
        le=1000,
        description="The latest periods are read again at every evaluation (late readings); "
        "older ones are kept in memory.",
    )
    full_refresh_s: float = Field(
        86_400.0,
        ge=60,
        description="Seconds after which the whole window is read again (readings that arrived "
        "very late, e.g. an agent's spool replayed after days offline).",
    )


_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]+$"


class DccPersonConfig(FrozenModel):
    """A person responsible for the certificates this lab exports (``dcc:respPerson``)."""

    name: str = Field(..., min_length=1, max_length=200, pattern=_TEXT)
    role: str | None = Field(None, max_length=200, pattern=_TEXT)
    email: str | None = Field(None, max_length=200, pattern=_TEXT)
    main_signer: bool = False


class DccLabConfig(FrozenModel):
    """This laboratory's identity, as its exported DCCs name it (``dcc:calibrationLaboratory``,
    and the customer of the certificates it keeps for its own standards)."""

    name: str = Field(..., min_length=1, max_length=200, pattern=_TEXT)
    code: str | None = Field(
        None, max_length=100, pattern=_TEXT, description="E.g. the accreditation number."
    )
    email: str = Field(..., min_length=3, max_length=200, pattern=_TEXT)
    phone: str | None = Field(None, max_length=100, pattern=_TEXT)
    street: str | None = Field(None, max_length=200, pattern=_TEXT)
    street_no: str | None = Field(None, max_length=50, pattern=_TEXT)
    post_code: str | None = Field(None, max_length=50, pattern=_TEXT)
    city: str = Field(..., min_length=1, max_length=200, pattern=_TEXT)
    country_code: str = Field("VN", pattern=r"^[A-Z]{2}$")
    responsible_persons: list[DccPersonConfig] = Field(..., min_length=1)


class DccSigningConfig(FrozenModel):
    """The lab's X.509 signing key and certificate: exported DCCs are signed with them
    (enveloped XML signature, XAdES-BES, in ``dcc:comment``)."""

    key_file: Path = Field(..., description="PEM private key (RSA ≥ 2048 or ECDSA P-256/384/521).")
    certificate_file: Path = Field(..., description="PEM certificate of that key.")
    chain_files: list[Path] = Field(
        default_factory=list, description="Intermediate CA certificates (PEM), carried along."
    )
    password: Secret | None = Field(None, description="Of an encrypted key.")
    xades: bool = True


class DccConfig(FrozenModel):
    """Digital Calibration Certificates (DCC 3.1.2): this lab's identity and signing key for
    exports, the trust anchors imports are verified against."""

    laboratory: DccLabConfig | None = Field(
        None, description="Needed to export certificates this lab issued itself."
    )
    signing: DccSigningConfig | None = Field(None, description="Sign exported DCCs.")
    trust_anchors: list[Path] = Field(
        default_factory=list,
        description="PEM files of CA (or signer) certificates whose signatures on imported DCCs "
        "are trusted; a signature that chains to none of them is 'untrusted'.",
    )


class StandardsConfig(FrozenModel):
    """Reference standards: certificate files and the scheduled drift analytics."""

    certificates_dir: Path | None = Field(
        None,
        description="Where certificate files (PDF, DCC XML) are kept, named by their SHA-256; "
        "default: 'certificates' next to the record store.",
    )
    analytics: bool = Field(True, description="Run the scheduled analytics.")
    analytics_interval_s: float = Field(
        600.0, ge=1, le=86_400, description="Seconds between two evaluations of every standard."
    )
    period_s: float = Field(
        SECONDS_PER_DAY,
        ge=1,
        description="Monitored readings are averaged over periods of this length (a day).",
    )
    min_period_readings: int = Field(
        2, ge=1, description="A period with fewer good readings is left out of the analysis."
    )
    window_days: float = Field(
        730.0, gt=0, description="How far back monitored readings are analysed."
    )
    baseline_periods: int = Field(
        20,
        ge=3,
        description="The first periods of the window set the control chart's centre and sigma "
        "(unless a dated baseline is given).",
    )
    baseline_start: Day | None = Field(
        None,
        description="First day of a dated, frozen control-chart baseline (with baseline_end): "
        "the drift model, centre and sigma come from the periods of these days only. A "
        "standard's own analysis.baseline_start/baseline_end take precedence.",
    )
    baseline_end: Day | None = Field(
        None, description="Last day (included) of the dated control-chart baseline."
    )
    recent_periods: int = Field(
        7,
        ge=1,
        description="Control-chart violations at points in the latest N periods are reported "
        "(older ones were reported by earlier evaluations).",
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of every interval.")
    certificate_model: ModelChoice = Field(
        "auto", description="Drift model of the certificate history (3 or more certificates)."
    )
    monitor_model: ModelChoice = Field(
        "linear", description="Drift model of the monitored period means."
    )
    horizon_days: float = Field(
        3652.5, gt=0, description="How far ahead an out-of-tolerance date is searched."
    )
    worker: Literal["process", "thread"] = Field(
        "process",
        description="Where the CPU work (parsing, aggregation, fits) runs: a process of its own "
        "at low priority (ingest keeps its core and the interpreter lock), or a thread.",
    )
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    dcc: DccConfig = Field(
        default_factory=DccConfig,
        description="Digital Calibration Certificates: lab identity, signing, trust anchors.",
    )
    clock: ClockConfig = Field(
        default_factory=SystemClockConfig,
        description="The analytics' clock. 'accelerated' only to follow agents on an "
        "accelerated clock (simulated histories); never with real instruments.",
    )

    _baseline_end_after_start = field_validator("baseline_end")(end_after_start)

    @model_validator(mode="after")
    def _baseline_fits_window(self) -> StandardsConfig:
        dates_together(self.baseline_start, self.baseline_end)
        if self.baseline_periods * self.period_s > self.window_days * SECONDS_PER_DAY:
            raise ValueError("baseline_periods periods do not fit in window_days")
        return self

    def check_store(self, store_kind: str) -> None:
        """Raise ValueError if ``history.api`` cannot read a store of this kind."""
        allowed = {
            "sqlite": ("auto", "sqlite"),
            "influxdb_v1": ("auto", "influxql"),
            "influxdb_v2": ("auto", "influxql", "victoriametrics"),
        }[store_kind]
        if self.history.api not in allowed:
            raise ValueError(
                f"standards.history.api {self.history.api!r} cannot read a {store_kind} store "
                f"(use {' or '.join(allowed)})"
            )

    def certificates_path(self, records_path: Path) -> Path:
        """The directory of certificate files."""
        return self.certificates_dir or records_path.parent / "certificates"


def certificates_path(config: StandardsConfig | None, records_path: Path) -> Path:
    """The certificate directory of a gateway, configured or not."""
    return (config or StandardsConfig()).certificates_path(records_path)
