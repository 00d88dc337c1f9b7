"""The record of a calibration run: what a certificate, a report and an assessor rely on.

A :class:`CalibrationRecord` is written once, when a run on a calibration bench completes, and
never changed: who calibrated what, when and where, with which procedure (and its hash), the
unit under test's identity as read at the start and at the end of the run, the reference and its
certificate, the environment, every point with its readings, its uncertainty budget and its
statement of conformity, every write made to an instrument, and the overall decision.

The bench (``calibration``) builds it; the gateway receives it on the wire, checks its hash and
keeps it; both render the same HTML report (:mod:`metrology.certificate.report`) and the same
DCC (:mod:`metrology.certificate.dcc`) from it. The model is pure data: it imports nothing of the
drivers, the agent or the gateway.

**Canonical form and hash.** :func:`canonical_bytes` is the record's JSON with keys sorted, no
whitespace, UTF-8 (no ``\\u`` escapes for non-ASCII), numbers as Python writes the shortest
round-trip text of each float, infinite degrees of freedom as ``null``; :func:`record_sha256` is
the SHA-256 of those bytes. A record read back from its JSON gives the same bytes, so the hash a
bench computes is the hash the gateway computes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from metrology._common import MetrologyError, MetrologyModel
from metrology.conformity import Decision, DecisionRule, Verdict
from metrology.uncertainty import BudgetResult, FormattedResult

SCHEMA = "etalon.calibration/1"
MAX_POINTS = 500
MAX_READINGS = 1000
MAX_WRITES = 20_000


def _printable(text: str) -> str:
    # Every text ends up in HTML, in XML and in a terminal: one printable line.
    if not text.isprintable():
        raise MetrologyError("the text holds a control character or a line break")
    return text


def _multiline(text: str) -> str:
    # A procedure's own YAML text keeps its line breaks and tabs, nothing else below U+0020.
    for character in text:
        if character < " " and character not in "\n\r\t":
            raise MetrologyError("the text holds a control character")
        if character in "\ufffe\uffff":
            raise MetrologyError("the text holds a non-character")
    return text


Line = Annotated[str, Field(max_length=500), AfterValidator(_printable)]
"""One printable line of at most 500 characters."""
Word = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_printable)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
"""An identifier that is also an MQTT topic level (run ids, agents, instruments, channels)."""
Unit = Annotated[str, Field(max_length=32), AfterValidator(_printable)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Identity = Annotated[dict[Word, Line], Field(max_length=16)]
"""What an instrument says it is (manufacturer, model, serial, firmware, …)."""
Status = Literal["ok", "failed"]
OverallDecision = Literal["pass", "conditional_pass", "conditional_fail", "fail", "incomplete"]


class Party(MetrologyModel):
    """A laboratory or a customer, as a certificate names it."""

    name: Line = Field(min_length=1)
    email: Line = Field(min_length=3)
    street: Line | None = None
    city: Line | None = None
    post_code: Line | None = None
    country_code: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1, e.g. VN.")
    code: Line | None = Field(
        None, description="The laboratory's code, e.g. its accreditation number."
    )
    phone: Line | None = None


class ProcedureInfo(MetrologyModel):
    """The procedure the run followed: its identity, the SHA-256 of its file and its text."""

    id: Name
    title: Line = Field(min_length=1)
    version: Word
    sha256: Sha256
    text: Annotated[str, Field(max_length=262_144), AfterValidator(_multiline)]


class UnitUnderTest(MetrologyModel):
    """The instrument calibrated: where it is wired, what was declared and what it said."""

    instrument: Name
    channel: Name
    description: Line
    declared: Identity
    """What the operator declared on the command line (``--uut serial=…``)."""
    identity_start: Identity
    """What the instrument said it is at the start of the run (empty: it cannot tell)."""
    identity_end: Identity
    """… and at the end (the same, or the run would have been aborted)."""
    specification: Line
    resolution: float = Field(gt=0.0)
    unit: Unit


class InstrumentUsed(MetrologyModel):
    """Another instrument of the run (source, reference meter, environment sensor)."""

    role: Literal["source", "reference", "environment"]
    name: Name
    protocol: Word
    identity: Identity


class CertificateInfo(MetrologyModel):
    """The certificate of the reference, as used on the run date."""

    number: Line = Field(min_length=1)
    issuer: Line = Field(min_length=1)
    calibration_date: dt.date
    due_date: dt.date | None = None
    expired: bool = False
    """Past its due date on the run date (used only because the procedure allowed it)."""
    source: Literal["procedure", "dcc", "registry"]
    dcc_sha256: Sha256 | None = None
    """SHA-256 of the DCC file the certificate was read from."""
    signature: Line | None = None
    """The DCC signature verdict, where one was checked."""


class ReferenceInfo(MetrologyModel):
    """The reference of the run: a reference meter with its certificate, or a registered
    standard at its value in use on the run date."""

    kind: Literal["meter", "standard"]
    name: Name
    """The reference meter's instrument, or the standard's registry id."""
    description: Line
    certificate: CertificateInfo | None
    value_from: Line
    """How the value in use was obtained (certificate correction, drift fit, latest
    certificate)."""
    drift_per_year: Line | None = None
    """The declared drift limit per year, as written (a specification)."""


class EnvironmentStats(MetrologyModel):
    """One environment channel over a point or a run."""

    quantity: Literal["temperature", "humidity"]
    instrument: Name
    channel: Name
    unit: Unit
    mean: float
    minimum: float
    maximum: float
    n: int = Field(ge=1)


class Settling(MetrologyModel):
    """How the point settled (or did not)."""

    settled: bool
    seconds: float = Field(ge=0.0)
    readings: int = Field(ge=0)
    slope_per_s: float | None
    """|slope| of the line fitted over the last window, unit per second."""
    std: float | None
    """Standard deviation about that line, in the unit."""


class ToleranceBand(MetrologyModel):
    """The tolerance on the error at a point (± MPE of the UUT's specification)."""

    lower: float
    upper: float
    mpe: float = Field(ge=0.0)


class PointResult(MetrologyModel):
    """One calibration point: what was set, read and computed."""

    index: int = Field(ge=0)
    nominal: float
    range: float | None
    unit: Unit
    status: Status
    reason: Line | None = None
    started_ns: int = Field(ge=0)
    finished_ns: int = Field(ge=0)
    settling: Settling | None = None
    uut_readings: tuple[float, ...] = Field((), max_length=MAX_READINGS)
    reference_readings: tuple[float, ...] = Field((), max_length=MAX_READINGS)
    indication: float | None = None
    """Mean of the UUT's readings."""
    reference_value: float | None = None
    """The reference's value in use at the point (corrected by its certificate)."""
    error: float | None = None
    """indication − reference value (the budget's estimate)."""
    budget: BudgetResult | None = None
    rounded: FormattedResult | None = None
    tolerance: ToleranceBand | None = None
    verdict: Verdict | None = None
    environment: tuple[EnvironmentStats, ...] = Field((), max_length=2)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.status == "ok":
            missing = [
                name
                for name in ("indication", "reference_value", "error", "budget", "rounded")
                if getattr(self, name) is None
            ]
            if missing:
                raise MetrologyError(f"point {self.index} is ok but has no {', '.join(missing)}")
        elif not self.reason:
            raise MetrologyError(f"point {self.index} failed without a reason")
        if self.finished_ns < self.started_ns:
            raise MetrologyError(f"point {self.index} finished before it started")
        return self


class WriteEntry(MetrologyModel):
    """One write to an instrument (a set-point or a safe-state step), for the audit."""

    instrument: Name
    target: Word | None
    value: float | bool | Line | None
    unit: Unit
    sent: tuple[Line, ...] = Field(max_length=32)
    confirmed: tuple[Line, ...] = Field(max_length=32)
    started_ns: int = Field(ge=0)
    finished_ns: int = Field(ge=0)
    ok: bool
    error: Line | None = None
    purpose: Literal["write", "safe_state"]
    point: int | None = Field(None, ge=0)
    """The point the write belongs to (None: set-up or the end of the run)."""


def overall_decision(points: tuple[PointResult, ...]) -> OverallDecision:
    """The run's decision: ``incomplete`` if a point could not be measured, else the worst of
    the points' decisions (fail < conditional fail < conditional pass < pass)."""
    if not points or any(p.status != "ok" or p.verdict is None for p in points):
        return "incomplete"
    order: tuple[Decision, ...] = ("fail", "conditional_fail", "conditional_pass", "pass")
    return min((p.verdict.decision for p in points if p.verdict), key=order.index)


class CalibrationRecord(MetrologyModel):
    """A completed calibration run; see the module doc."""

    schema_: Literal["etalon.calibration/1"] = Field("etalon.calibration/1", alias="schema")
    run: Name
    site: Name
    agent: Name
    """The identity the bench publishes under (``etalon/v1/{site}/{agent}/…``)."""
    bench_agent: Name
    """The agent config whose instruments the run used."""
    operator: Line = Field(min_length=1)
    started_ns: int = Field(ge=0)
    finished_ns: int = Field(ge=0)
    run_date: dt.date
    """The date (UTC) the reference's value in use and its certificate are taken on."""
    language: Literal["en", "vi"]
    laboratory: Party
    customer: Party | None = None
    procedure: ProcedureInfo
    uut: UnitUnderTest
    instruments: tuple[InstrumentUsed, ...] = Field((), max_length=16)
    reference: ReferenceInfo
    decision_rule: DecisionRule
    coverage_probability: float = Field(gt=0.0, lt=1.0)
    points: tuple[PointResult, ...] = Field(min_length=1, max_length=MAX_POINTS)
    environment: tuple[EnvironmentStats, ...] = Field((), max_length=2)
    decision: OverallDecision
    writes: tuple[WriteEntry, ...] = Field((), max_length=MAX_WRITES)
    notes: tuple[Line, ...] = Field((), max_length=64)
    software: Line

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("coverage_probability")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise MetrologyError("the coverage probability must be finite")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.finished_ns < self.started_ns:
            raise MetrologyError("the run finished before it started")
        indexes = [p.index for p in self.points]
        if indexes != list(range(len(indexes))):
            raise MetrologyError("points must be numbered 0, 1, 2, … in order")
        if self.decision != overall_decision(self.points):
            raise MetrologyError(
                f"the decision {self.decision!r} does not follow from the points "
                f"({overall_decision(self.points)!r})"
            )
        return self

    def ok_points(self) -> tuple[PointResult, ...]:
        """The points that were measured."""
        return tuple(p for p in self.points if p.status == "ok")


def _refuse_constant(token: str) -> float:
    raise MetrologyError(f"{token} is not a JSON number")


def _no_non_finite(value: Any, path: str = "$") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise MetrologyError(f"{path}: not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_non_finite(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _no_non_finite(item, f"{path}[{index}]")


def as_data(record: CalibrationRecord) -> dict[str, Any]:
    """The record as JSON data (infinite degrees of freedom as null)."""
    data: dict[str, Any] = record.model_dump(mode="json", by_alias=True)
    return data


def canonical_bytes(record: CalibrationRecord) -> bytes:
    """The canonical JSON of a record (see the module doc)."""
    return json.dumps(
        as_data(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_sha256(record: CalibrationRecord) -> str:
    """SHA-256 (hex) of the canonical bytes."""
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def load_record(data: bytes | str | dict[str, Any]) -> CalibrationRecord:
    """A record from its JSON (bytes or text) or JSON data; NaN and infinities are refused (JSON
    has none; infinite degrees of freedom are null). Raises MetrologyError or pydantic's
    ValidationError."""
    if isinstance(data, bytes | str):
        try:
            parsed = json.loads(data, parse_constant=_refuse_constant)
        except RecursionError:
            raise MetrologyError("the record is nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, MetrologyError):
                raise
            raise MetrologyError(f"not JSON: {exc}") from None
    else:
        parsed = data
    if not isinstance(parsed, dict):
        raise MetrologyError("a record is a JSON object")
    _no_non_finite(parsed)
    return CalibrationRecord.model_validate(parsed)
