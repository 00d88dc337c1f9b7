"""Calibrated instruments as the record store holds them: their certificates (DCC tables), the
links of certificate tables to channels, and the views the API and the CLI show. The changes
(import, link, unlink) are in :mod:`gateway.corrections.instruments`.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass, fields
from typing import Any

import orjson

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.refusals import Refusal
from gateway.corrections import messages  # noqa: F401 - registers the texts
from gateway.corrections.tables import CalibrationTable
from gateway.records.bodies import IDENTITY_FIELDS

DAY_NS = 86_400 * 1_000_000_000
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
_PATH = re.compile(rf"^({_NAME})/({_NAME})/({_NAME})/({_NAME})$")
_INSTRUMENT = re.compile(rf"^({_NAME})/({_NAME})/({_NAME})$")


class CorrectionsError(Refusal):
    """A calibrated-instrument operation that cannot be done: ``code`` and ``params`` give the
    message in English or Vietnamese (:meth:`message`)."""


class Refused(CorrectionsError, InvalidInputError):
    """The input cannot be used (a bad DCC, a serial mismatch, a unit that differs)."""


class Missing(CorrectionsError, NotFoundError):
    """No such certificate, channel or link."""


class Clash(CorrectionsError, ConflictError):
    """The change clashes with what is recorded (a certificate already registered)."""


ChannelPath = tuple[str, str, str, str]


def parse_channel(path: str) -> ChannelPath:
    """``site/agent/instrument/channel``; refused with the reason otherwise."""
    found = _PATH.match(path)
    if found is None:
        raise Refused("corrections.error.path", path=path)
    site, agent, instrument, channel = found.groups()
    return site, agent, instrument, channel


def parse_instrument(path: str) -> tuple[str, str, str]:
    """``site/agent/instrument``; refused with the reason otherwise."""
    found = _INSTRUMENT.match(path)
    if found is None:
        raise Refused("corrections.error.path", path=path)
    site, agent, instrument = found.groups()
    return site, agent, instrument


def day_ns(date: dt.date) -> int:
    """Midnight UTC at the start of ``date``, in ns."""
    return int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp()) * 10**9


def expiry_ns(due: dt.date) -> int:
    """When a certificate due on ``due`` stops vouching: the end of that day, UTC."""
    return day_ns(due) + DAY_NS


@dataclass(frozen=True)
class InstrumentCertificate:
    """An instrument certificate as registered (without its document)."""

    id: int
    number: str
    issuer: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    calibration_date: str
    due_date: str | None
    due_ns: int | None
    """When the certificate stops vouching (the end of its due date, UTC), or None."""
    tables: tuple[CalibrationTable, ...]
    signature: dict[str, Any]
    file_name: str | None
    file_sha256: str
    file_size: int
    created_ns: int
    created_by: str

    def table(self, index: int) -> CalibrationTable:
        """Table ``index``; Missing otherwise."""
        if not 0 <= index < len(self.tables):
            raise Missing(
                "corrections.error.no_such_table",
                number=self.number,
                table=index,
                tables=", ".join(str(t.index) for t in self.tables),
            )
        return self.tables[index]

    def view(self) -> dict[str, Any]:
        """As the API answers it."""
        tables = [
            {**table.model_dump(mode="json"), "low": table.low, "high": table.high}
            for table in self.tables
        ]
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"tables": tables}


@dataclass(frozen=True)
class Link:
    """A certificate table correcting a channel over ``[from_ns, until_ns)``."""

    id: int
    site: str
    agent: str
    instrument: str
    channel: str
    certificate_id: int
    table_index: int
    serial: str
    from_ns: int
    until_ns: int | None
    linked_by: str
    unlinked_by: str | None

    @property
    def path(self) -> str:
        """``site/agent/instrument/channel``."""
        return f"{self.site}/{self.agent}/{self.instrument}/{self.channel}"

    def view(self) -> dict[str, Any]:
        """As the API answers it."""
        return {**self.__dict__, "path": self.path}


_CERTIFICATE_COLUMNS = (
    "id, number, issuer, manufacturer, model, serial, calibration_date, due_date, due_ns, "
    "tables, signature, file_name, file_sha256, file_size, created_ns, created_by"
)


def _certificate(row: tuple[Any, ...]) -> InstrumentCertificate:
    (
        cid, number, issuer, manufacturer, model, serial, date, due_date, due_ns, tables,
        signature, file_name, sha256, size, created_ns, created_by,
    ) = row  # fmt: skip
    return InstrumentCertificate(
        cid, number, issuer, manufacturer, model, serial, date, due_date, due_ns,
        tuple(CalibrationTable.model_validate(t) for t in orjson.loads(tables)),
        orjson.loads(signature), file_name, sha256, size, created_ns, created_by,
    )  # fmt: skip


def load_certificate(db: sqlite3.Connection, certificate_id: int) -> InstrumentCertificate:
    """One certificate; Missing if there is none with this id."""
    row = db.execute(
        f"SELECT {_CERTIFICATE_COLUMNS} FROM instrument_certificates WHERE id=?",
        (certificate_id,),
    ).fetchone()
    if row is None:
        raise Missing("corrections.error.no_certificate", id=certificate_id)
    return _certificate(row)


def load_certificates(db: sqlite3.Connection) -> list[InstrumentCertificate]:
    """Every instrument certificate, oldest first."""
    rows = db.execute(f"SELECT {_CERTIFICATE_COLUMNS} FROM instrument_certificates ORDER BY id")
    return [_certificate(row) for row in rows.fetchall()]


def load_document(db: sqlite3.Connection, certificate_id: int) -> bytes:
    """A certificate's original DCC, byte for byte."""
    row = db.execute(
        "SELECT document FROM instrument_certificates WHERE id=?", (certificate_id,)
    ).fetchone()
    if row is None:
        raise Missing("corrections.error.no_certificate", id=certificate_id)
    return bytes(row[0])


def load_links(db: sqlite3.Connection, path: ChannelPath | None = None) -> list[Link]:
    """Every link (of one channel), in the order they were made."""
    sql = "SELECT * FROM calibration_links"
    params: tuple[str, ...] = ()
    if path is not None:
        sql += " WHERE site=? AND agent=? AND instrument=? AND channel=?"
        params = path
    return [Link(*row) for row in db.execute(sql + " ORDER BY id", params).fetchall()]


def reported_serial(db: sqlite3.Connection, site: str, agent: str, instrument: str) -> str | None:
    """The serial number the instrument's agent last reported, or None."""
    serial = _identity(db, site, agent, instrument)["serial"]
    if serial:
        return str(serial)
    row = db.execute(
        "SELECT identity FROM channels WHERE site=? AND agent=? AND instrument=? "
        "ORDER BY updated_ns DESC LIMIT 1",
        (site, agent, instrument),
    ).fetchone()
    if row is None:
        return None
    serial = orjson.loads(row[0]).get("serial")
    return str(serial) if serial else None


def instruments_view(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every instrument that has a link (in force or past), with its latest identity and its
    channels' links in force."""
    links = load_links(db)
    certificates = {c.id: c for c in load_certificates(db)}
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in links:
        key = (item.site, item.agent, item.instrument)
        entry = out.get(key)
        if entry is None:
            identity = _identity(db, *key)
            entry = out[key] = {
                "site": key[0],
                "agent": key[1],
                "instrument": key[2],
                "path": "/".join(key),
                **identity,
                "channels": {},
            }
        if item.until_ns is None:
            certificate = certificates[item.certificate_id]
            table = certificate.tables[item.table_index]
            entry["channels"][item.channel] = {
                "link": item.view(),
                "certificate": {
                    "id": certificate.id,
                    "number": certificate.number,
                    "issuer": certificate.issuer,
                    "due_date": certificate.due_date,
                    "due_ns": certificate.due_ns,
                },
                "table": {
                    "index": table.index,
                    "name": table.name,
                    "unit": table.unit,
                    "low": table.low,
                    "high": table.high,
                    "points": len(table.points),
                },
            }
    return [out[key] for key in sorted(out)]


def _identity(db: sqlite3.Connection, site: str, agent: str, instrument: str) -> dict[str, Any]:
    """The instrument's latest identity as its agent announced it (every field None when it
    never did)."""
    row = db.execute(
        f"SELECT {', '.join(IDENTITY_FIELDS)} FROM instrument_identities WHERE site=? "
        "AND agent=? AND instrument=? ORDER BY id DESC LIMIT 1",
        (site, agent, instrument),
    ).fetchone()
    return dict(zip(IDENTITY_FIELDS, row or (None,) * len(IDENTITY_FIELDS), strict=True))


def instrument_view(
    db: sqlite3.Connection, site: str, agent: str, instrument: str
) -> dict[str, Any]:
    """One instrument: identity, every link of its channels (past and in force), and the
    certificates registered for its serial or linked to it."""
    key = (site, agent, instrument)
    identity = _identity(db, *key)
    links = [x for x in load_links(db) if (x.site, x.agent, x.instrument) == key]
    channels = db.execute(
        "SELECT channel, unit FROM channels WHERE site=? AND agent=? AND instrument=? "
        "ORDER BY channel",
        key,
    ).fetchall()
    if not links and not channels and identity["serial"] is None:
        raise Missing("corrections.show.none", instrument="/".join(key))
    certificates = load_certificates(db)
    linked = {x.certificate_id for x in links}
    serial = identity["serial"]
    mine = [c for c in certificates if c.id in linked or (serial and c.serial == serial)]
    return {
        "site": site,
        "agent": agent,
        "instrument": instrument,
        "path": "/".join(key),
        **identity,
        "channels": [{"channel": c, "unit": u} for c, u in channels],
        "links": [x.view() for x in links],
        "certificates": [c.view() for c in mine],
    }
