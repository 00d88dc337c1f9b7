"""Calibrated instruments in the record store: their certificates (DCC) and which certificate
table corrects which channel, from when until when.

- :func:`import_certificate` validates a DCC (schema, signature against the trust anchors),
  extracts its calibration tables (:mod:`.tables`) and keeps the document byte for byte;
- :func:`link` checks the serial the instrument's agent reports against the certificate's item
  serial (refused naming both when they differ), the channel's unit against the table's, and
  that the channel's configured method can use the table; it ends the link in force (a
  replaced certificate) and starts the new one at the same instant;
- :func:`unlink` ends a link.

Every change is one transaction with its ledger entries and an audit row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway.corrections import messages  # noqa: F401 - registers the texts
from gateway.corrections.certificates import (
    DAY_NS,
    ChannelPath,
    Clash,
    CorrectionsError,
    InstrumentCertificate,
    Link,
    Missing,
    Refused,
    day_ns,
    expiry_ns,
    instrument_view,
    instruments_view,
    load_certificate,
    load_certificates,
    load_document,
    load_links,
    parse_channel,
    parse_instrument,
    reported_serial,
)
from gateway.corrections.config import CorrectionsConfig
from gateway.corrections.tables import CalibrationTable, TableError, tables_from_dcc
from gateway.records.bodies import (
    append_audit,
    chain_calibration_link,
    chain_instrument_certificate,
    dumps,
)
from gateway.records.store import RecordStore
from metrology import units
from metrology._common import MetrologyError
from metrology.correction import ChannelCalibration, build_correction
from metrology.errors import DccError
from metrology.limits import MAX_DCC_BYTES

if TYPE_CHECKING:
    from metrology import dcc

__all__ = [
    "DAY_NS",
    "MAX_DCC_BYTES",
    "ChannelPath",
    "Clash",
    "CorrectionsError",
    "Imported",
    "InstrumentCertificate",
    "Link",
    "Linked",
    "Missing",
    "Refused",
    "check_link",
    "day_ns",
    "expiry_ns",
    "import_certificate",
    "instrument_view",
    "instruments_view",
    "link",
    "link_in_transaction",
    "load_certificate",
    "load_certificates",
    "load_document",
    "load_links",
    "parse_channel",
    "parse_instrument",
    "reported_serial",
    "unlink",
    "unlink_in_transaction",
]
"""The read side (:mod:`gateway.corrections.certificates`) is named here too: this module is
the feature's face for the API, the CLI and the corrector."""


# -- import ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """What an import registered."""

    certificate: InstrumentCertificate
    signature: dcc.SignatureVerdict


def _due(document: dcc.Dcc, due: dt.date | None) -> dt.date | None:
    stated = document.recalibration_date
    return stated if stated is not None else due


async def import_certificate(
    records: RecordStore,
    data: bytes,
    *,
    anchors: list[Any],
    actor: str,
    accept_invalid: bool = False,
    file_name: str | None = None,
    due: dt.date | None = None,
    now_ns: Callable[[], int] = time.time_ns,
) -> Imported:
    """Register an instrument's DCC (module doc). ``due``: the due date when the DCC states
    none (a DCC's own recalibration date wins)."""
    if len(data) > MAX_DCC_BYTES:
        raise Refused("corrections.error.size", mib=MAX_DCC_BYTES // 2**20)
    from metrology import dcc

    document = await asyncio.to_thread(dcc.parse, data)
    verdict = await asyncio.to_thread(dcc.verify, data, anchors=anchors)
    if verdict.status == "invalid" and not accept_invalid:
        raise Refused("corrections.error.signature", reason=verdict.reason or "")
    try:
        tables = tables_from_dcc(document)
    except (TableError, DccError, MetrologyError, ValidationError, ArithmeticError) as exc:
        raise Refused(
            "corrections.error.table", number=document.unique_identifier, reason=str(exc)
        ) from None
    if not tables:
        raise Refused("corrections.error.no_table", number=document.unique_identifier)
    for table in tables:
        try:  # each table must make a correction at least by the default method
            build_correction(ChannelCalibration(channel="check", points=table.calibration_points()))
        except (MetrologyError, ValidationError, ValueError) as exc:
            raise Refused(
                "corrections.error.table",
                number=document.unique_identifier,
                reason=f"table {table.index} ({table.name}): {exc}",
            ) from None
    item = document.item
    issuer = document.laboratory.name.get("en")
    calibrated = document.end_performance_date or document.begin_performance_date
    due_date = _due(document, due)
    signature = verdict.model_dump(mode="json")
    if verdict.status == "invalid":
        signature["accepted_by"] = actor
    sha256 = hashlib.sha256(data).hexdigest()
    row = {
        "number": document.unique_identifier,
        "issuer": issuer,
        "manufacturer": item.manufacturer.get("en") if item.manufacturer else None,
        "model": item.model,
        "serial": item.serial_number,
        "calibration_date": calibrated.isoformat(),
        "due_date": None if due_date is None else due_date.isoformat(),
        "due_ns": None if due_date is None else expiry_ns(due_date),
        "tables": dumps([table.model_dump(mode="json") for table in tables]),
        "signature": dumps(signature),
        "file_name": file_name,
        "file_sha256": sha256,
        "file_size": len(data),
        "document": data,
        "created_ns": now_ns(),
        "created_by": actor,
    }

    def work(db: sqlite3.Connection) -> InstrumentCertificate:
        db.execute("BEGIN IMMEDIATE")
        known = db.execute(
            "SELECT id FROM instrument_certificates WHERE issuer=? AND number=?",
            (row["issuer"], row["number"]),
        ).fetchone()
        if known is not None:
            db.execute("ROLLBACK")
            raise Clash(
                "corrections.error.duplicate", number=row["number"], issuer=issuer, id=known[0]
            )
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        cursor = db.execute(
            f"INSERT INTO instrument_certificates({columns}) VALUES ({marks})", tuple(row.values())
        )
        certificate_id = int(cursor.lastrowid or 0)
        chain_instrument_certificate(db, certificate_id, actor)
        append_audit(
            db,
            actor,
            "instrument certificate imported",
            f"instrument-certificate:{certificate_id}",
            {
                "number": row["number"],
                "issuer": issuer,
                "serial": row["serial"],
                "sha256": sha256,
                "signature": verdict.status,
                "tables": len(tables),
            },
        )
        certificate = load_certificate(db, certificate_id)
        db.execute("COMMIT")
        return certificate

    return Imported(await records.run(work), verdict)


# -- link / unlink --------------------------------------------------------------------------------


def _same_unit(first: str, second: str) -> bool:
    if first == second:
        return True
    try:
        return units.same_unit(units.symbol_to_dsi(first), units.symbol_to_dsi(second))
    except DccError:
        return False


def _choose_table(
    certificate: InstrumentCertificate, unit: str, table: int | None
) -> CalibrationTable:
    if table is not None:
        return certificate.table(table)
    fitting = [t for t in certificate.tables if _same_unit(t.unit, unit)]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting and len(certificate.tables) == 1:
        return certificate.tables[0]  # refused below, naming both units
    raise Refused(
        "corrections.error.which_table",
        number=certificate.number,
        count=len(fitting or certificate.tables),
        unit=unit,
        tables=", ".join(f"{t.index}: {t.name} [{t.unit}]" for t in certificate.tables),
    )


@dataclass(frozen=True)
class Linked:
    """What a link did: the new link, and the one it ended (a replaced certificate)."""

    link: Link
    certificate: InstrumentCertificate
    replaced: Link | None
    replaced_certificate: InstrumentCertificate | None


def check_link(
    db: sqlite3.Connection,
    path: ChannelPath,
    certificate: InstrumentCertificate,
    table: int | None,
    config: CorrectionsConfig,
) -> tuple[CalibrationTable, str]:
    """Whether the certificate may correct the channel: the table to use and the serial
    matched; Refused/Missing with the reason otherwise."""
    site, agent, instrument, channel = path
    text = "/".join(path)
    row = db.execute(
        "SELECT unit FROM channels WHERE site=? AND agent=? AND instrument=? AND channel=?",
        path,
    ).fetchone()
    if row is None:
        raise Missing("corrections.error.no_channel", channel=text)
    if not certificate.serial:
        raise Refused("corrections.error.certificate_no_serial", number=certificate.number)
    serial = reported_serial(db, site, agent, instrument)
    name = f"{site}/{agent}/{instrument}"
    if serial is None:
        raise Refused(
            "corrections.error.no_serial",
            instrument=name,
            certificate_serial=certificate.serial,
        )
    if serial.strip() != certificate.serial.strip():
        raise Refused(
            "corrections.error.serial_mismatch",
            instrument=name,
            instrument_serial=serial,
            number=certificate.number,
            certificate_serial=certificate.serial,
        )
    chosen = _choose_table(certificate, row[0], table)
    if not _same_unit(chosen.unit, row[0]):
        raise Refused(
            "corrections.error.unit",
            channel=text,
            channel_unit=row[0] or "-",
            table=chosen.index,
            number=certificate.number,
            table_unit=chosen.unit,
        )
    try:
        build_correction(
            ChannelCalibration.model_validate(
                {
                    "channel": channel,
                    "points": chosen.calibration_points(),
                    **config.for_channel(text).options(),
                }
            )
        )
    except (MetrologyError, ValidationError, ValueError) as exc:
        raise Refused(
            "corrections.error.method",
            channel=text,
            table=chosen.index,
            number=certificate.number,
            reason=str(exc),
        ) from None
    return chosen, serial


def _not_before(current: Link, at_ns: int) -> None:
    """A link in force cannot end before it starts (links of a channel never overlap)."""
    if at_ns < current.from_ns:
        raise Refused(
            "corrections.error.before_start",
            channel=current.path,
            at=_iso(at_ns),
            start=_iso(current.from_ns),
        )


def _in_force(db: sqlite3.Connection, path: ChannelPath) -> Link | None:
    row = db.execute(
        "SELECT * FROM calibration_links WHERE site=? AND agent=? AND instrument=? AND "
        "channel=? AND until_ns IS NULL ORDER BY id DESC LIMIT 1",
        path,
    ).fetchone()
    return None if row is None else Link(*row)


def _end(db: sqlite3.Connection, current: Link, at_ns: int, actor: str) -> InstrumentCertificate:
    """End the link in force at ``at_ns`` (never before it started), chained; its certificate."""
    _not_before(current, at_ns)
    certificate = load_certificate(db, current.certificate_id)
    db.execute(
        "UPDATE calibration_links SET until_ns=?, unlinked_by=? WHERE id=?",
        (at_ns, actor, current.id),
    )
    chain_calibration_link(db, current.id, actor)
    return certificate


def _reloaded(db: sqlite3.Connection, link: Link) -> Link:
    """``link`` as stored now."""
    path = (link.site, link.agent, link.instrument, link.channel)
    return next(x for x in load_links(db, path) if x.id == link.id)


def link_in_transaction(
    db: sqlite3.Connection,
    path: ChannelPath,
    certificate_id: int,
    *,
    table: int | None,
    config: CorrectionsConfig,
    actor: str,
    at_ns: int,
) -> Linked:
    """:func:`link`'s work on the record store's thread (one transaction)."""
    db.execute("BEGIN IMMEDIATE")
    certificate = load_certificate(db, certificate_id)
    chosen, serial = check_link(db, path, certificate, table, config)
    current = _in_force(db, path)
    text = "/".join(path)
    replaced_certificate = None
    if current is not None:
        if current.certificate_id == certificate_id and current.table_index == chosen.index:
            raise Clash(
                "corrections.error.already_linked",
                channel=text,
                table=chosen.index,
                number=certificate.number,
            )
        replaced_certificate = _end(db, current, at_ns, actor)
    cursor = db.execute(
        "INSERT INTO calibration_links(site, agent, instrument, channel, certificate_id, "
        "table_index, serial, from_ns, until_ns, linked_by, unlinked_by) "
        "VALUES (?,?,?,?,?,?,?,?,NULL,?,NULL)",
        (*path, certificate_id, chosen.index, serial, at_ns, actor),
    )
    link_id = int(cursor.lastrowid or 0)
    chain_calibration_link(db, link_id, actor)
    append_audit(
        db,
        actor,
        "calibration linked",
        f"channel:{text}",
        {
            "certificate_id": certificate_id,
            "number": certificate.number,
            "table": chosen.index,
            "serial": serial,
            "from_ns": at_ns,
            "replaces": None if current is None else current.certificate_id,
        },
        at_ns,
    )
    new = load_links(db, path)[-1]
    replaced = None if current is None else _reloaded(db, current)
    db.execute("COMMIT")
    return Linked(new, certificate, replaced, replaced_certificate)


def unlink_in_transaction(
    db: sqlite3.Connection, path: ChannelPath, *, actor: str, at_ns: int
) -> tuple[Link, InstrumentCertificate]:
    """:func:`unlink`'s work on the record store's thread (one transaction)."""
    db.execute("BEGIN IMMEDIATE")
    current = _in_force(db, path)
    text = "/".join(path)
    if current is None:
        raise Missing("corrections.error.not_linked", channel=text)
    certificate = _end(db, current, at_ns, actor)
    append_audit(
        db,
        actor,
        "calibration unlinked",
        f"channel:{text}",
        {"certificate_id": current.certificate_id, "number": certificate.number, "until_ns": at_ns},
        at_ns,
    )
    ended = _reloaded(db, current)
    db.execute("COMMIT")
    return ended, certificate


def _not_past(at_ns: int | None) -> int:
    """The instant of a link change: now by default; never in the past (readings already
    stored were corrected, or not, by what was in force when they were taken)."""
    now = time.time_ns()
    if at_ns is None:
        return now
    if at_ns < now:
        raise Refused("corrections.error.at_past", at=_iso(at_ns), now=_iso(now))
    return at_ns


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="milliseconds")


async def link(
    records: RecordStore,
    path: ChannelPath,
    certificate_id: int,
    *,
    table: int | None,
    config: CorrectionsConfig,
    actor: str,
    at_ns: int | None = None,
) -> Linked:
    """Link a certificate's table to a channel from ``at_ns`` (default: now), ending the link
    in force at the same instant (module doc)."""
    when = _not_past(at_ns)
    return await records.run(
        lambda db: link_in_transaction(
            db, path, certificate_id, table=table, config=config, actor=actor, at_ns=when
        )
    )


async def unlink(
    records: RecordStore, path: ChannelPath, *, actor: str, at_ns: int | None = None
) -> tuple[Link, InstrumentCertificate]:
    """End the link in force on a channel from ``at_ns`` (default: now)."""
    when = _not_past(at_ns)
    return await records.run(lambda db: unlink_in_transaction(db, path, actor=actor, at_ns=when))
