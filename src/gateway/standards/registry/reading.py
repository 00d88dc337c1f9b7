"""Loading standards and certificates from the record store's tables (inside the caller's
connection)."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from gateway.records.bodies import query_rows
from gateway.standards.models import (
    AnalysisOverrides,
    ChannelLink,
    Conditions,
    Tolerance,
    TraceabilityNode,
)
from gateway.standards.registry.records import (
    CertificatePoint,
    CertificateRecord,
    FileInfo,
    StandardRecord,
)
from metrology import units
from metrology.errors import UnsupportedUnit


def _trace_nodes(db: sqlite3.Connection, certificate_id: int) -> list[TraceabilityNode]:
    rows = query_rows(
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
        for point in query_rows(
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
    rows = query_rows(
        db,
        "SELECT * FROM certificates WHERE standard_id=? ORDER BY calibration_ns, id",
        (standard_id,),
    )
    return [_certificate(db, row) for row in rows]


def load_certificate(db: sqlite3.Connection, certificate_id: int) -> CertificateRecord | None:
    """One certificate by id."""
    rows = query_rows(db, "SELECT * FROM certificates WHERE id=?", (certificate_id,))
    return _certificate(db, rows[0]) if rows else None


def _channels(db: sqlite3.Connection, standard_id: str) -> list[ChannelLink]:
    rows = query_rows(
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
    rows = query_rows(db, "SELECT * FROM standards WHERE id=?", (standard_id,))
    return _standard(db, rows[0], with_certificates) if rows else None


def load_standards(
    db: sqlite3.Connection, with_certificates: bool = True, active_only: bool = False
) -> list[StandardRecord]:
    """Every standard, by id."""
    sql = "SELECT * FROM standards" + (" WHERE status='active'" if active_only else "")
    return [_standard(db, row, with_certificates) for row in query_rows(db, sql + " ORDER BY id")]


def certificate_id_of(db: sqlite3.Connection, issuer: str, number: str) -> int | None:
    """The id of the certificate ``number`` of ``issuer``, if registered."""
    row = db.execute(
        "SELECT id FROM certificates WHERE issuer=? AND number=?", (issuer, number)
    ).fetchone()
    return None if row is None else int(row[0])
