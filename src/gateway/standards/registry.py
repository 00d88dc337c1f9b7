"""The registry of reference standards in the record store.

Every change is one short SQLite transaction that also appends its audit-log entry (who, what,
the record before and after), so the change and its audit entry exist together or not at all.
Readers (the gateway's analytics, the API, ``etalon standards``) may run in other processes:
the record store is in WAL mode.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.records.bodies import append_audit, chain_certificate, chain_standard
from gateway.records.store import RecordStore
from gateway.standards.errors import Conflict, NotFound
from gateway.standards.files import CertificateFiles, FileState, StoredFile
from gateway.standards.models import (
    AnalysisOverrides,
    CertificateSpec,
    ChannelLink,
    Conditions,
    StandardSpec,
    Tolerance,
    TraceabilityNode,
    certificate_fields,
    standard_fields,
    when_ns,
    when_text,
)
from metrology import units
from metrology.errors import UnsupportedUnit

T = TypeVar("T")


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


def audit(db: sqlite3.Connection, actor: str, action: str, subject: str, details: Any) -> None:
    """Append one audit-log entry (and its ledger entry) inside the caller's transaction."""
    append_audit(db, actor, action, subject, details)


def transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` in one IMMEDIATE transaction (rolled back if it raises)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


# -- reading -------------------------------------------------------------------------------------


def _rows(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _trace_nodes(db: sqlite3.Connection, certificate_id: int) -> list[TraceabilityNode]:
    rows = _rows(
        db,
        "SELECT id, parent_id, lab, standard, description, certificate, national "
        "FROM certificate_traceability WHERE certificate_id=? ORDER BY position, id",
        (certificate_id,),
    )
    children: dict[int | None, list[dict[str, Any]]] = {}
    for row in rows:
        children.setdefault(row["parent_id"], []).append(row)

    def build(parent: int | None) -> list[TraceabilityNode]:
        return [
            TraceabilityNode(
                lab=row["lab"],
                standard=row["standard"],
                description=row["description"],
                certificate=row["certificate"],
                national=bool(row["national"]),
                traceable_to=build(row["id"]),
            )
            for row in children.get(parent, [])
        ]

    return build(None)


def _certificate(db: sqlite3.Connection, row: dict[str, Any]) -> CertificateRecord:
    file = None
    if row["file_sha256"]:
        file = FileInfo(
            name=row["file_name"],
            sha256=row["file_sha256"],
            size=row["file_size"],
            media_type=row["media_type"],
        )
    points = [
        CertificatePoint.model_validate(
            point
            | {
                key: orjson.loads(point[key])
                for key in ("measurement_result", "result", "quantity", "ref_types",
                            "coverage_interval")
                if point[key] is not None
            }
            | {"conditions": _with_symbols(orjson.loads(point["conditions"]))}
        )
        for point in _rows(
            db,
            "SELECT * FROM certificate_points WHERE certificate_id=? ORDER BY position",
            (row["id"],),
        )
    ]  # fmt: skip
    return CertificateRecord(
        value_text=row["value_text"] or repr(row["value"]),
        expanded_uncertainty_text=row["expanded_uncertainty_text"]
        or repr(row["expanded_uncertainty"]),
        coverage_factor_text=row["coverage_factor_text"] or repr(row["coverage_factor"]),
        coverage_probability=row["coverage_probability"],
        points=points,
        dcc=orjson.loads(row["dcc"]) if row["dcc"] else None,
        signature=orjson.loads(row["signature"]) if row["signature"] else None,
        id=row["id"],
        standard=row["standard_id"],
        number=row["number"],
        issuer=row["issuer"],
        calibration_date=row["calibration_date"],
        calibration_ns=row["calibration_ns"],
        due_date=row["due_date"],
        due_ns=row["due_ns"],
        value=row["value"],
        expanded_uncertainty=row["expanded_uncertainty"],
        coverage_factor=row["coverage_factor"],
        conditions=Conditions.model_validate_json(row["conditions"]),
        notes=row["notes"],
        traceable_to=_trace_nodes(db, row["id"]),
        file=file,
        created_ns=row["created_ns"],
        updated_ns=row["updated_ns"],
    )


def _with_symbols(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions as stored (D-SI units), each with its unit's symbol for people to read."""
    for condition in conditions:
        unit = (condition.get("value") or {}).get("unit", "")
        try:
            condition["symbol"] = units.dsi_to_symbol(unit)
        except UnsupportedUnit:
            condition["symbol"] = unit
    return conditions


def load_certificates(db: sqlite3.Connection, standard_id: str) -> list[CertificateRecord]:
    """A standard's certificates, oldest calibration first."""
    rows = _rows(
        db,
        "SELECT * FROM certificates WHERE standard_id=? ORDER BY calibration_ns, id",
        (standard_id,),
    )
    return [_certificate(db, row) for row in rows]


def load_certificate(db: sqlite3.Connection, certificate_id: int) -> CertificateRecord | None:
    """One certificate by id."""
    rows = _rows(db, "SELECT * FROM certificates WHERE id=?", (certificate_id,))
    return _certificate(db, rows[0]) if rows else None


def _channels(db: sqlite3.Connection, standard_id: str) -> list[ChannelLink]:
    rows = _rows(
        db,
        'SELECT site, agent, instrument, channel, unit, scale, "offset", note '
        "FROM standard_channels WHERE standard_id=? ORDER BY position",
        (standard_id,),
    )
    return [ChannelLink.model_validate(row) for row in rows]


def _standard(
    db: sqlite3.Connection, row: dict[str, Any], with_certificates: bool
) -> StandardRecord:
    tolerance = Tolerance.model_validate_json(row["tolerance"]) if row["tolerance"] else None
    return StandardRecord(
        id=row["id"],
        kind=row["kind"],
        description=row["description"],
        nominal=row["nominal"],
        unit=row["unit"],
        manufacturer=row["manufacturer"],
        model=row["model"],
        serial=row["serial"],
        owner_lab=row["owner_lab"],
        tolerance=tolerance,
        status=row["status"],
        analysis=AnalysisOverrides.model_validate_json(row["analysis"]),
        channels=_channels(db, row["id"]),
        created_ns=row["created_ns"],
        updated_ns=row["updated_ns"],
        certificates=load_certificates(db, row["id"]) if with_certificates else [],
    )


def load_standard(
    db: sqlite3.Connection, standard_id: str, with_certificates: bool = True
) -> StandardRecord | None:
    """One standard, or None."""
    rows = _rows(db, "SELECT * FROM standards WHERE id=?", (standard_id,))
    return _standard(db, rows[0], with_certificates) if rows else None


def load_standards(
    db: sqlite3.Connection, with_certificates: bool = True, active_only: bool = False
) -> list[StandardRecord]:
    """Every standard, by id."""
    sql = "SELECT * FROM standards" + (" WHERE status='active'" if active_only else "")
    return [_standard(db, row, with_certificates) for row in _rows(db, sql + " ORDER BY id")]


def certificate_id_of(db: sqlite3.Connection, issuer: str, number: str) -> int | None:
    """The id of the certificate ``number`` of ``issuer``, if registered."""
    row = db.execute(
        "SELECT id FROM certificates WHERE issuer=? AND number=?", (issuer, number)
    ).fetchone()
    return None if row is None else int(row[0])


# -- writing -------------------------------------------------------------------------------------


def _resolved(spec: StandardSpec, default_site: str) -> StandardSpec:
    """The spec with every channel link's site filled in."""
    links = [
        link if link.site else link.model_copy(update={"site": default_site})
        for link in spec.channels
    ]
    return spec.model_copy(update={"channels": links})


def _write_channels(db: sqlite3.Connection, spec: StandardSpec) -> None:
    db.execute("DELETE FROM standard_channels WHERE standard_id=?", (spec.id,))
    db.executemany(
        "INSERT INTO standard_channels(standard_id, site, agent, instrument, channel, unit, "
        'scale, "offset", note, position) VALUES (?,?,?,?,?,?,?,?,?,?)',
        [
            (
                spec.id,
                link.site,
                link.agent,
                link.instrument,
                link.channel,
                link.unit,
                link.scale,
                link.offset,
                link.note,
                position,
            )
            for position, link in enumerate(spec.channels)
        ],
    )


def _standard_values(spec: StandardSpec) -> tuple[Any, ...]:
    return (
        spec.kind,
        spec.description,
        spec.nominal,
        spec.unit,
        spec.manufacturer,
        spec.model,
        spec.serial,
        spec.owner_lab,
        spec.tolerance.model_dump_json() if spec.tolerance else None,
        spec.status,
        spec.analysis.model_dump_json(exclude_none=True),
    )


def _audit_view(spec: StandardSpec) -> dict[str, Any]:
    data = standard_fields(spec)
    data["channels"] = [link.model_dump(mode="json") for link in spec.channels]
    return data


def insert_standard(
    db: sqlite3.Connection, spec: StandardSpec, actor: str, default_site: str
) -> StandardSpec:
    """Add a new standard (Conflict if the id is taken); returns it with sites resolved."""
    spec = _resolved(spec, default_site)
    if load_standard(db, spec.id, with_certificates=False) is not None:
        raise Conflict(f"standard {spec.id} is already registered")
    now = time.time_ns()
    db.execute(
        "INSERT INTO standards(kind, description, nominal, unit, manufacturer, model, serial, "
        "owner_lab, tolerance, status, analysis, id, created_ns, updated_ns) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (*_standard_values(spec), spec.id, now, now),
    )
    _write_channels(db, spec)
    audit(db, actor, "standard.add", f"standard:{spec.id}", {"after": _audit_view(spec)})
    chain_standard(db, spec.id, actor)
    return spec


def update_standard(
    db: sqlite3.Connection, spec: StandardSpec, actor: str, default_site: str
) -> tuple[StandardSpec, bool]:
    """Replace a standard's fields and channel links; returns it and whether anything changed."""
    spec = _resolved(spec, default_site)
    before = load_standard(db, spec.id, with_certificates=False)
    if before is None:
        raise NotFound(f"no standard {spec.id}")
    old = before.spec()
    if old == spec:
        return spec, False
    db.execute(
        "UPDATE standards SET kind=?, description=?, nominal=?, unit=?, manufacturer=?, "
        "model=?, serial=?, owner_lab=?, tolerance=?, status=?, analysis=?, updated_ns=? "
        "WHERE id=?",
        (*_standard_values(spec), time.time_ns(), spec.id),
    )
    _write_channels(db, spec)
    audit(
        db,
        actor,
        "standard.update",
        f"standard:{spec.id}",
        {"before": _audit_view(old), "after": _audit_view(spec)},
    )
    chain_standard(db, spec.id, actor)
    return spec, True


def _insert_nodes(
    db: sqlite3.Connection,
    certificate_id: int,
    nodes: Sequence[TraceabilityNode],
    parent: int | None,
) -> None:
    for position, node in enumerate(nodes):
        cursor = db.execute(
            "INSERT INTO certificate_traceability(certificate_id, parent_id, position, lab, "
            "standard, description, certificate, national) VALUES (?,?,?,?,?,?,?,?)",
            (
                certificate_id,
                parent,
                position,
                node.lab,
                node.standard,
                node.description,
                node.certificate,
                int(node.national),
            ),
        )
        _insert_nodes(db, certificate_id, node.traceable_to, cursor.lastrowid)


def _certificate_audit(spec: CertificateSpec, file: StoredFile | None) -> dict[str, Any]:
    data = certificate_fields(spec)
    data["traceable_to"] = [node.model_dump(mode="json") for node in spec.traceable_to]
    data["file"] = None if file is None else {"name": file.name, "sha256": file.sha256}
    return data


def _check_plausible(db: sqlite3.Connection, standard_id: str, spec: CertificateSpec) -> None:
    row = db.execute("SELECT nominal, unit FROM standards WHERE id=?", (standard_id,)).fetchone()
    if row is None:
        raise NotFound(f"no standard {standard_id}")
    nominal, unit = float(row[0]), row[1]
    if nominal != 0.0 and abs(spec.value / nominal - 1.0) > 0.5:
        raise Conflict(
            f"certificate {spec.number}: value {spec.value!r} is far from the nominal "
            f"{nominal!r} {unit} of standard {standard_id} (values are in the standard's unit)"
        )


def _certificate_values(spec: CertificateSpec) -> tuple[Any, ...]:
    """A certificate's columns from number to notes, as INSERT and UPDATE both write them."""
    return (
        spec.number,
        spec.issuer,
        when_text(spec.calibration_date),
        when_ns(spec.calibration_date),
        when_text(spec.due_date) if spec.due_date else None,
        when_ns(spec.due_date) if spec.due_date else None,
        spec.value,
        spec.expanded_uncertainty,
        spec.coverage_factor,
        spec.conditions.model_dump_json(exclude_none=True),
        spec.notes,
    )


def _exact(text: str | None, value: float) -> str:
    """The registered text of a number if it still says ``value``, else the float's own."""
    if text is not None:
        try:
            if float(text) == value:
                return text
        except ValueError:
            pass
    return repr(value)


def _write_texts(
    db: sqlite3.Connection,
    certificate_id: int,
    spec: CertificateSpec,
    extras: CertificateExtras | None,
    before: CertificateRecord | None = None,
) -> None:
    """The exact texts of value, U and k (a DCC's, else the floats' own or the earlier ones
    that still say the same) and, for a DCC, its points, fields and signature verdict."""
    if extras is not None:
        texts = (extras.value_text, extras.expanded_uncertainty_text, extras.coverage_factor_text)
        probability: str | None = extras.coverage_probability
    else:
        texts = (
            _exact(before.value_text if before else None, spec.value),
            _exact(before.expanded_uncertainty_text if before else None, spec.expanded_uncertainty),
            _exact(before.coverage_factor_text if before else None, spec.coverage_factor),
        )
        probability = before.coverage_probability if before else None
    db.execute(
        "UPDATE certificates SET value_text=?, expanded_uncertainty_text=?, "
        "coverage_factor_text=?, coverage_probability=? WHERE id=?",
        (*texts, probability, certificate_id),
    )
    if extras is None:
        return
    db.execute(
        "UPDATE certificates SET dcc=?, signature=? WHERE id=?",
        (extras.dcc, extras.signature, certificate_id),
    )
    db.executemany(
        "INSERT INTO certificate_points(certificate_id, position, path, measurement_result, "
        "result, quantity, ref_types, row_index, value, unit, dsi_unit, expanded_uncertainty, "
        "coverage_factor, coverage_probability, distribution, label, date_time, "
        "coverage_interval, conditions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                certificate_id,
                point["position"],
                point["path"],
                point["measurement_result"],
                point["result"],
                point["quantity"],
                point["ref_types"],
                point["row_index"],
                point["value"],
                point["unit"],
                point["dsi_unit"],
                point["expanded_uncertainty"],
                point["coverage_factor"],
                point["coverage_probability"],
                point["distribution"],
                point["label"],
                point["date_time"],
                point["coverage_interval"],
                point["conditions"],
            )
            for point in extras.points
        ],
    )


def insert_certificate(db: sqlite3.Connection, new: NewCertificate, actor: str) -> int:
    """Add a certificate (Conflict if its issuer already issued that number); returns its id."""
    spec = new.spec
    _check_plausible(db, new.standard, spec)
    existing = certificate_id_of(db, spec.issuer, spec.number)
    if existing is not None:
        raise Conflict(f"certificate {spec.number} of {spec.issuer} is already registered")
    now = time.time_ns()
    file = new.file
    cursor = db.execute(
        "INSERT INTO certificates(standard_id, number, issuer, calibration_date, calibration_ns, "
        "due_date, due_ns, value, expanded_uncertainty, coverage_factor, conditions, notes, "
        "file_name, file_sha256, file_size, media_type, created_ns, updated_ns) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            new.standard,
            *_certificate_values(spec),
            file.name if file else None,
            file.sha256 if file else None,
            file.size if file else None,
            file.media_type if file else None,
            now,
            now,
        ),
    )
    certificate_id = int(cursor.lastrowid or 0)
    _insert_nodes(db, certificate_id, spec.traceable_to, None)
    _write_texts(db, certificate_id, spec, new.extras)
    audit(
        db,
        actor,
        "certificate.add",
        f"standard:{new.standard}/certificate:{certificate_id}",
        {"after": _certificate_audit(spec, file)},
    )
    chain_certificate(db, certificate_id, actor)
    return certificate_id


def same_certificate(record: CertificateRecord, spec: CertificateSpec) -> bool:
    """Whether a registered certificate says what ``spec`` says (file aside)."""
    return record.spec().model_dump(exclude={"file", "file_sha256"}) == spec.model_dump(
        exclude={"file", "file_sha256"}
    )


def update_certificate(
    db: sqlite3.Connection, certificate_id: int, spec: CertificateSpec, actor: str
) -> bool:
    """Correct a certificate's fields and traceability (the file is kept); True if changed."""
    before = load_certificate(db, certificate_id)
    if before is None:
        raise NotFound(f"no certificate {certificate_id}")
    if same_certificate(before, spec):
        return False
    _check_plausible(db, before.standard, spec)
    other = certificate_id_of(db, spec.issuer, spec.number)
    if other is not None and other != certificate_id:
        raise Conflict(f"certificate {spec.number} of {spec.issuer} is already registered")
    db.execute(
        "UPDATE certificates SET number=?, issuer=?, calibration_date=?, calibration_ns=?, "
        "due_date=?, due_ns=?, value=?, expanded_uncertainty=?, coverage_factor=?, "
        "conditions=?, notes=?, updated_ns=? WHERE id=?",
        (
            *_certificate_values(spec),
            time.time_ns(),
            certificate_id,
        ),
    )
    db.execute("DELETE FROM certificate_traceability WHERE certificate_id=?", (certificate_id,))
    _insert_nodes(db, certificate_id, spec.traceable_to, None)
    _write_texts(db, certificate_id, spec, None, before)
    file = before.file.stored() if before.file else None
    audit(
        db,
        actor,
        "certificate.update",
        f"standard:{before.standard}/certificate:{certificate_id}",
        {
            "before": _certificate_audit(before.spec(), file),
            "after": _certificate_audit(spec, file),
        },
    )
    chain_certificate(db, certificate_id, actor)
    return True


def attach_file(db: sqlite3.Connection, certificate_id: int, file: StoredFile, actor: str) -> None:
    """Record (or replace) a certificate's file."""
    before = load_certificate(db, certificate_id)
    if before is None:
        raise NotFound(f"no certificate {certificate_id}")
    db.execute(
        "UPDATE certificates SET file_name=?, file_sha256=?, file_size=?, media_type=?, "
        "updated_ns=? WHERE id=?",
        (file.name, file.sha256, file.size, file.media_type, time.time_ns(), certificate_id),
    )
    audit(
        db,
        actor,
        "certificate.file",
        f"standard:{before.standard}/certificate:{certificate_id}",
        {
            "before": None
            if before.file is None
            else {"name": before.file.name, "sha256": before.file.sha256},
            "after": {"name": file.name, "sha256": file.sha256, "size": file.size},
        },
    )
    chain_certificate(db, certificate_id, actor)


# -- traceability --------------------------------------------------------------------------------


def traceability_chain(db: sqlite3.Connection, standard_id: str) -> TraceabilityChain:
    """The chain through the standard's latest certificate, registered standards expanded."""
    standard = load_standard(db, standard_id)
    if standard is None:
        raise NotFound(f"no standard {standard_id}")
    open_ends: list[str] = []

    def expand_registered(record: StandardRecord, seen: frozenset[str]) -> TraceView:
        latest = record.latest_certificate
        view = TraceView(
            lab=record.owner_lab,
            standard=record.id,
            description=record.description,
            certificate=latest.number if latest else None,
            registered=True,
            calibrated_on=latest.calibration_date if latest else None,
        )
        if latest is None:
            open_ends.append(f"{record.owner_lab}: {record.id} (no certificate)")
            return view
        children = [node_view(node, seen | {record.id}) for node in latest.traceable_to]
        if not children:
            open_ends.append(
                f"{record.owner_lab}: {record.id} (certificate {latest.number} names no standard)"
            )
        return view.model_copy(update={"traceable_to": children})

    def node_view(node: TraceabilityNode, seen: frozenset[str]) -> TraceView:
        registered = None
        if node.standard not in seen:
            candidate = load_standard(db, node.standard)
            if candidate is not None and candidate.owner_lab == node.lab:
                registered = candidate
        if registered is not None and not node.traceable_to:
            expanded = expand_registered(registered, seen)
            return expanded.model_copy(
                update={"certificate": node.certificate or expanded.certificate}
            )
        children = [node_view(child, seen) for child in node.traceable_to]
        if not children and not node.national:
            open_ends.append(f"{node.lab}: {node.standard}")
        return TraceView(
            lab=node.lab,
            standard=node.standard,
            description=node.description,
            certificate=node.certificate,
            national=node.national,
            traceable_to=children,
        )

    root = expand_registered(standard, frozenset())
    return TraceabilityChain(
        standard=standard_id, root=root, complete=not open_ends, open_ends=open_ends
    )


# -- the async face ------------------------------------------------------------------------------


class Registry:
    """The registry over a :class:`RecordStore` and the certificate files' directory."""

    def __init__(self, records: RecordStore, certificates_dir: Path, default_site: str) -> None:
        self.records = records
        self.files = CertificateFiles(certificates_dir)
        self.default_site = default_site

    async def standards(self, active_only: bool = False) -> list[StandardRecord]:
        """Every standard with its certificates."""
        return await self.records.run(lambda db: load_standards(db, True, active_only))

    async def standard(self, standard_id: str) -> StandardRecord:
        """One standard (NotFound if unknown)."""
        found = await self.records.run(lambda db: load_standard(db, standard_id))
        if found is None:
            raise NotFound(f"no standard {standard_id}")
        return found

    async def certificate(self, standard_id: str, certificate_id: int) -> CertificateRecord:
        """One certificate of a standard (NotFound if it is not one of its)."""
        found = await self.records.run(lambda db: load_certificate(db, certificate_id))
        if found is None or found.standard != standard_id:
            raise NotFound(f"standard {standard_id} has no certificate {certificate_id}")
        return found

    async def add_standard(self, spec: StandardSpec, actor: str) -> StandardSpec:
        """Register a standard."""
        return await self.records.run(
            lambda db: transaction(
                db, lambda db: insert_standard(db, spec, actor, self.default_site)
            )
        )

    async def update_standard(self, spec: StandardSpec, actor: str) -> bool:
        """Change a standard; True if anything changed."""
        _, changed = await self.records.run(
            lambda db: transaction(
                db, lambda db: update_standard(db, spec, actor, self.default_site)
            )
        )
        return changed

    async def add_certificate(
        self,
        standard_id: str,
        spec: CertificateSpec,
        actor: str,
        file: tuple[bytes, str] | None = None,
    ) -> int:
        """Register a certificate, keeping its file (bytes, original name) if given."""
        stored, new = (None, False)
        if file is not None:
            stored, new = await self._io(lambda: self.files.put(*file))
        try:
            return await self.records.run(
                lambda db: transaction(
                    db,
                    lambda db: insert_certificate(
                        db, NewCertificate(standard_id, spec, stored), actor
                    ),
                )
            )
        except BaseException:
            if stored is not None and new:
                self.files.remove(stored)
            raise

    async def update_certificate(
        self, standard_id: str, certificate_id: int, spec: CertificateSpec, actor: str
    ) -> bool:
        """Correct a certificate; True if anything changed."""
        await self.certificate(standard_id, certificate_id)
        return await self.records.run(
            lambda db: transaction(
                db, lambda db: update_certificate(db, certificate_id, spec, actor)
            )
        )

    async def attach_file(
        self, standard_id: str, certificate_id: int, data: bytes, name: str, actor: str
    ) -> FileInfo:
        """Keep a certificate's file and record it."""
        await self.certificate(standard_id, certificate_id)
        stored, _ = await self._io(lambda: self.files.put(data, name))
        await self.records.run(
            lambda db: transaction(db, lambda db: attach_file(db, certificate_id, stored, actor))
        )
        return FileInfo(
            name=stored.name,
            sha256=stored.sha256,
            size=stored.size,
            media_type=stored.media_type,
            state="ok",
        )

    async def traceability(self, standard_id: str) -> TraceabilityChain:
        """The traceability chain of a standard."""
        return await self.records.run(lambda db: traceability_chain(db, standard_id))

    async def _io(self, work: Callable[[], T]) -> T:
        """Blocking file work (hashing, fsync) off the event loop, on the record store's thread:
        short, and no thread of its own to manage."""
        return await self.records.run(lambda _db: work())

    async def verified(self, certificate: CertificateRecord) -> CertificateRecord:
        """The certificate with its file's hash verified now (off the event loop)."""
        return await self._io(lambda: self.checked(certificate))

    async def read_file(self, certificate: CertificateRecord) -> tuple[bytes, FileState]:
        """A certificate's file and whether it still has its recorded hash."""
        if certificate.file is None:
            raise NotFound(f"certificate {certificate.number} has no file")
        stored = certificate.file.stored()
        return await self._io(lambda: self.files.read(stored))

    def checked(self, certificate: CertificateRecord) -> CertificateRecord:
        """The certificate with its file's hash verified now."""
        if certificate.file is None:
            return certificate
        state = self.files.verify(certificate.file.stored())
        return certificate.model_copy(
            update={"file": certificate.file.model_copy(update={"state": state})}
        )
