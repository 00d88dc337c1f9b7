"""From a lab's verified entries to the hub's query tables, in the push's transaction.

Every entry is kept as it arrived (``entries``); the kinds the registry knows are also projected
(docs/hub.md, "Data model"), the others are stored and shown generically:

- ``standard`` (subject ``standard:ID``): the standard's row → ``standards`` and ``registry``;
- ``certificate`` (``certificate:N``): the row, its file's hash, the signature verdict →
  ``certificates``; its traceability (the references a DCC's measuring equipment names) →
  ``trace_links``; the standard's next due date → ``registry``;
- ``instrument_identity`` (``SITE/AGENT/INSTRUMENT``): every identity → ``instrument_identities``,
  the current one → ``instruments`` and ``registry``;
- ``calibration`` / ``calibration.result``: a calibration run of an instrument → ``calibrations``
  and the instrument's due date in ``registry``;
- stability and drift evaluation summaries (``standard.evaluation``, ``evaluation``,
  ``evaluation.*``, ``drift.summary``, ``stability.summary``) → ``evaluations``.

Bodies are what the lab's record store chained (gateway.records.bodies); a field of the wrong
type, or missing, becomes NULL here rather than refusing an entry the lab signed. Text that is
indexed is cut to ``INDEXED_MAX`` characters (a B-tree entry has a size limit).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

from hub.db import Connection
from ledger import Entry

INDEXED_MAX: Final = 200
TEXT_MAX: Final = 2000
STANDARD_KINDS: Final = frozenset({"standard"})
CERTIFICATE_KINDS: Final = frozenset({"certificate"})
IDENTITY_KINDS: Final = frozenset({"instrument_identity"})
CALIBRATION_KINDS: Final = frozenset({"calibration", "calibration.result"})
EVALUATION_KINDS: Final = frozenset(
    {"standard.evaluation", "evaluation", "drift.summary", "stability.summary"}
)
INT64_MAX: Final = 2**63 - 1


def is_evaluation(kind: str) -> bool:
    """Whether entries of ``kind`` are evaluation summaries."""
    return kind in EVALUATION_KINDS or kind.startswith("evaluation.")


def text(value: Any, limit: int = TEXT_MAX) -> str | None:
    """A scalar as text (numbers as the lab wrote them), cut to ``limit``; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        result = str(value).replace("\x00", "")
        return result[:limit] if result else None
    return None


def integer(value: Any) -> int | None:
    """An int64 from an integer or a decimal string (ns times are strings in bodies)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, int) and -INT64_MAX <= value <= INT64_MAX:
        return value
    return None


def json_text(value: Any) -> str | None:
    """A JSON value as text (a JSON text column stays as the lab stored it)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value[:100_000]
    return orjson.dumps(value).decode()[:100_000]


def subject_id(subject: str, prefix: str) -> str:
    """``standard:Z10`` → ``Z10``."""
    return subject[len(prefix) :] if subject.startswith(prefix) else subject


def upsert(table: str, columns: str, key: str) -> str:
    """``INSERT`` of a row of ``columns`` that, when a row of the same ``key`` is there, sets
    every other column to the new row's value: a projection table keeps the latest of each."""
    names = [name.strip() for name in columns.split(",")]
    keys = {name.strip() for name in key.split(",")}
    marks = ",".join(["%s"] * len(names))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names if name not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


_STANDARDS = upsert(
    "standards",
    "lab, standard_id, kind, description, nominal, unit, manufacturer, model, serial, owner_lab, "
    "status, entry_seq, updated_ns",
    "lab, standard_id",
)
_CERTIFICATES = upsert(
    "certificates",
    "lab, certificate_id, standard_id, number, issuer, calibration_date, calibration_ns, "
    "due_date, due_ns, value, unit, expanded_uncertainty, coverage_factor, file_name, "
    "file_sha256, media_type, signature, entry_seq",
    "lab, certificate_id",
)
_INSTRUMENTS = upsert(
    "instruments",
    "lab, instrument, manufacturer, model, serial, firmware, first_seen_ns, entry_seq",
    "lab, instrument",
)
_CALIBRATIONS = upsert(
    "calibrations",
    "lab, run, instrument, serial, procedure_id, decision, started_ns, finished_ns, due_ns, "
    "entry_seq",
    "lab, run",
)
_EVALUATIONS = upsert(
    "evaluations", "lab, subject, kind, ts_ns, summary, entry_seq", "lab, subject"
)


def _latest(entries: Iterable[Entry], kinds: frozenset[str]) -> list[Entry]:
    """The last entry of each subject among ``kinds`` (the state a table keeps)."""
    found: dict[str, Entry] = {}
    for entry in entries:
        if entry.kind in kinds:
            found[entry.subject] = entry
    return list(found.values())


class Projection:
    """Projects one push's new entries of one lab."""

    def __init__(self, conn: Connection, lab: str, province: str | None) -> None:
        self.conn = conn
        self.lab = lab
        self.province = province

    async def run(self, entries: Sequence[Entry]) -> None:
        """Project ``entries`` (new, in chain order)."""
        bodies: dict[int, dict[str, Any]] = {}

        def body(entry: Entry) -> dict[str, Any]:
            if entry.seq not in bodies:
                bodies[entry.seq] = orjson.loads(entry.body_json)
            return bodies[entry.seq]

        touched: set[str] = set()
        standards = _latest(entries, STANDARD_KINDS)
        if standards:
            touched |= await self._standards([(e, body(e)) for e in standards])
        certificates = _latest(entries, CERTIFICATE_KINDS)
        if certificates:
            touched |= await self._certificates([(e, body(e)) for e in certificates])
        if touched:
            await self._standard_due(sorted(touched))
        identities = [(e, body(e)) for e in entries if e.kind in IDENTITY_KINDS]
        if identities:
            await self._identities(identities)
        calibrations = [(e, body(e)) for e in entries if e.kind in CALIBRATION_KINDS]
        if calibrations:
            await self._calibrations(calibrations)
        evaluations = [(e, body(e)) for e in entries if is_evaluation(e.kind)]
        if evaluations:
            await self._evaluations(evaluations)

    async def _standards(self, items: list[tuple[Entry, dict[str, Any]]]) -> set[str]:
        rows = []
        for entry, body in items:
            standard_id = (text(body.get("id"), INDEXED_MAX) or "") or subject_id(
                entry.subject, "standard:"
            )[:INDEXED_MAX]
            rows.append(
                (
                    self.lab,
                    standard_id,
                    text(body.get("kind"), INDEXED_MAX),
                    text(body.get("description")),
                    text(body.get("nominal"), INDEXED_MAX),
                    text(body.get("unit"), INDEXED_MAX),
                    text(body.get("manufacturer"), INDEXED_MAX),
                    text(body.get("model"), INDEXED_MAX),
                    text(body.get("serial"), INDEXED_MAX),
                    text(body.get("owner_lab"), INDEXED_MAX),
                    text(body.get("status"), INDEXED_MAX) or "active",
                    entry.seq,
                    entry.ts_ns,
                )
            )
        async with self.conn.cursor() as cur:
            await cur.executemany(_STANDARDS, rows)
            await cur.executemany(
                "INSERT INTO registry (lab, item_type, item_key, kind, manufacturer, model, "
                "serial, description, status, province, entry_seq) "
                "VALUES (%s, 'standard', %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (lab, item_type, item_key) DO UPDATE SET kind = EXCLUDED.kind, "
                "manufacturer = EXCLUDED.manufacturer, model = EXCLUDED.model, "
                "serial = EXCLUDED.serial, description = EXCLUDED.description, "
                "status = EXCLUDED.status, entry_seq = EXCLUDED.entry_seq",
                [
                    (
                        *r[0:3],
                        *r[6:9],
                        (r[3] or "")[:INDEXED_MAX] or None,
                        r[10],
                        self.province,
                        r[11],
                    )
                    for r in rows
                ],
            )
        return {r[1] for r in rows}

    async def _certificates(self, items: list[tuple[Entry, dict[str, Any]]]) -> set[str]:
        rows = []
        links = []
        now = time.time_ns()
        for entry, body in items:
            certificate_id = (text(body.get("id"), INDEXED_MAX) or "") or subject_id(
                entry.subject, "certificate:"
            )[:INDEXED_MAX]
            standard_id = text(body.get("standard_id"), INDEXED_MAX)
            number = text(body.get("number"), INDEXED_MAX)
            due_ns = integer(body.get("due_ns"))
            rows.append(
                (
                    self.lab,
                    certificate_id,
                    standard_id,
                    number,
                    text(body.get("issuer"), INDEXED_MAX),
                    text(body.get("calibration_date"), 64),
                    integer(body.get("calibration_ns")),
                    text(body.get("due_date"), 64),
                    due_ns,
                    text(body.get("value_text")) or text(body.get("value")),
                    text(body.get("unit"), 64),
                    text(body.get("expanded_uncertainty_text"))
                    or text(body.get("expanded_uncertainty")),
                    text(body.get("coverage_factor_text")) or text(body.get("coverage_factor")),
                    text(body.get("file_name"), INDEXED_MAX),
                    _sha256(body.get("file_sha256")),
                    text(body.get("media_type"), 100),
                    json_text(body.get("signature")),
                    entry.seq,
                )
            )
            if standard_id is None:
                continue
            traceability = body.get("traceability")
            for node in traceability if isinstance(traceability, list) else ():
                if not isinstance(node, Mapping) or node.get("parent_id") is not None:
                    continue  # the reference used; deeper levels are that lab's to vouch for
                to_lab, to_standard = (
                    text(node.get("lab"), INDEXED_MAX),
                    text(node.get("standard"), INDEXED_MAX),
                )
                if to_lab is None or to_standard is None:
                    continue
                links.append(
                    (
                        self.lab,
                        standard_id,
                        to_lab,
                        to_standard,
                        text(node.get("certificate"), INDEXED_MAX),
                        number,
                        due_ns,
                        "national" if node.get("national") in (1, True, "1") else None,
                        certificate_id,
                        entry.seq,
                        now,
                        f"lab:{self.lab}",
                    )
                )
        async with self.conn.cursor() as cur:
            await cur.executemany(_CERTIFICATES, rows)
            await cur.execute(
                "DELETE FROM trace_links WHERE source = 'certificate' AND from_lab = %s "
                "AND lab_certificate = ANY(%s)",
                (self.lab, [r[1] for r in rows]),
            )
            if links:
                await cur.executemany(
                    "INSERT INTO trace_links (source, from_lab, from_standard, to_kind, to_lab, "
                    "to_standard, to_ref, certificate, valid_until_ns, note, lab_certificate, "
                    "entry_seq, created_ns, created_by) "
                    "VALUES ('certificate', %s, %s, 'standard', %s, %s, %s, %s, %s, %s, %s, %s, "
                    "%s, %s)",
                    links,
                )
        return {r[2] for r in rows if r[2] is not None}

    async def _standard_due(self, standard_ids: list[str]) -> None:
        """The registry's due date of each standard: its latest certificate's."""
        await self.conn.execute(
            "UPDATE registry r SET due_ns = c.due_ns, calibrated_ns = c.calibration_ns "
            "FROM (SELECT DISTINCT ON (standard_id) standard_id, due_ns, calibration_ns "
            "      FROM certificates WHERE lab = %s AND standard_id = ANY(%s) "
            "      ORDER BY standard_id, calibration_ns DESC NULLS LAST, entry_seq DESC) c "
            "WHERE r.lab = %s AND r.item_type = 'standard' AND r.item_key = c.standard_id",
            (self.lab, standard_ids, self.lab),
        )

    async def _identities(self, items: list[tuple[Entry, dict[str, Any]]]) -> None:
        rows = [
            (
                self.lab,
                entry.seq,
                entry.subject[:INDEXED_MAX],
                text(body.get("manufacturer"), INDEXED_MAX),
                text(body.get("model"), INDEXED_MAX),
                text(body.get("serial"), INDEXED_MAX),
                text(body.get("firmware"), INDEXED_MAX),
                integer(body.get("first_seen_ns")),
            )
            for entry, body in items
        ]
        latest = {row[2]: row for row in rows}
        async with self.conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO instrument_identities (lab, entry_seq, instrument, manufacturer, "
                "model, serial, firmware, first_seen_ns) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT DO NOTHING",
                rows,
            )
            await cur.executemany(
                _INSTRUMENTS,
                [(r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[1]) for r in latest.values()],
            )
            await cur.executemany(
                "INSERT INTO registry (lab, item_type, item_key, manufacturer, model, serial, "
                "province, entry_seq, due_ns, calibrated_ns) "
                "SELECT %s, 'instrument', %s, %s, %s, %s, %s, %s, c.due_ns, c.finished_ns "
                "FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT due_ns, finished_ns FROM "
                "calibrations WHERE lab = %s AND lower(serial) = lower(%s) "
                "ORDER BY finished_ns DESC NULLS LAST LIMIT 1) c ON true "
                "ON CONFLICT (lab, item_type, item_key) DO UPDATE SET "
                "manufacturer = EXCLUDED.manufacturer, model = EXCLUDED.model, "
                "serial = EXCLUDED.serial, entry_seq = EXCLUDED.entry_seq, "
                "due_ns = EXCLUDED.due_ns, calibrated_ns = EXCLUDED.calibrated_ns",
                [
                    (r[0], r[2], r[3], r[4], r[5], self.province, r[1], self.lab, r[5])
                    for r in latest.values()
                ],
            )

    async def _calibrations(self, items: list[tuple[Entry, dict[str, Any]]]) -> None:
        rows = []
        for entry, body in items:
            uut = body.get("uut") if isinstance(body.get("uut"), Mapping) else {}
            assert isinstance(uut, Mapping)
            identity = (
                uut.get("identity_start") if isinstance(uut.get("identity_start"), Mapping) else {}
            )
            declared = uut.get("declared") if isinstance(uut.get("declared"), Mapping) else {}
            assert isinstance(identity, Mapping) and isinstance(declared, Mapping)
            procedure = body.get("procedure")
            serial = (
                text(body.get("uut_serial"), INDEXED_MAX)
                or text(identity.get("serial"), INDEXED_MAX)
                or text(declared.get("serial"), INDEXED_MAX)
            )
            rows.append(
                (
                    self.lab,
                    (text(body.get("run"), INDEXED_MAX) or entry.subject)[:INDEXED_MAX],
                    text(body.get("instrument"), INDEXED_MAX) or text(uut.get("instrument")),
                    serial,
                    text(body.get("procedure_id"), INDEXED_MAX)
                    or (
                        text(procedure.get("id"), INDEXED_MAX)
                        if isinstance(procedure, Mapping)
                        else None
                    ),
                    text(body.get("decision"), 64),
                    integer(body.get("started_ns")),
                    integer(body.get("finished_ns")) or entry.ts_ns,
                    integer(body.get("due_ns")),
                    entry.seq,
                )
            )
        async with self.conn.cursor() as cur:
            await cur.executemany(_CALIBRATIONS, rows)
            serials = sorted({r[3] for r in rows if r[3]})
            if serials:
                await cur.execute(
                    "UPDATE registry r SET due_ns = c.due_ns, calibrated_ns = c.finished_ns "
                    "FROM (SELECT DISTINCT ON (lower(serial)) lower(serial) AS serial, due_ns, "
                    "      finished_ns FROM calibrations WHERE lab = %s "
                    "      AND lower(serial) = ANY(%s) "
                    "      ORDER BY lower(serial), finished_ns DESC NULLS LAST) c "
                    "WHERE r.lab = %s AND r.item_type = 'instrument' "
                    "AND lower(r.serial) = c.serial",
                    (self.lab, [s.lower() for s in serials], self.lab),
                )

    async def _evaluations(self, items: list[tuple[Entry, dict[str, Any]]]) -> None:
        latest = {entry.subject: (entry, body) for entry, body in items}
        async with self.conn.cursor() as cur:
            await cur.executemany(
                _EVALUATIONS,
                [
                    (self.lab, subject[:INDEXED_MAX], e.kind, e.ts_ns, e.body_json, e.seq)
                    for subject, (e, _body) in latest.items()
                ],
            )


def _sha256(value: Any) -> str | None:
    found = text(value, 64)
    if found is None or len(found) != 64 or any(c not in "0123456789abcdef" for c in found.lower()):
        return None
    return found.lower()
