"""Changes to the registry, each inside the caller's transaction with its audit-log entry."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from gateway.records.bodies import append_audit, chain_certificate, chain_standard
from gateway.standards.errors import Conflict, NotFound
from gateway.standards.files import StoredFile
from gateway.standards.models import (
    CertificateSpec,
    StandardSpec,
    TraceabilityNode,
    certificate_fields,
    standard_fields,
    when_ns,
    when_text,
)
from gateway.standards.registry.reading import certificate_id_of, load_certificate, load_standard
from gateway.standards.registry.records import CertificateExtras, CertificateRecord, NewCertificate

T = TypeVar("T")


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
