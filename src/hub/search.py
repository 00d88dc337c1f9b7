"""What the hub serves from its query tables: the registry search across labs, each lab's
calibration due/overdue counts, a standard's and an instrument's page.

The search reads one table (``registry``) with an index per filter: a serial number or model is
matched as a prefix (B-tree) or a substring (trigram GIN); kind, lab, province and status are
equalities on indexed columns; results come in ``id`` order, a page at a time (keyset: ``after``
is the last id of the previous page), and the count is never computed over a million rows.
"""

from __future__ import annotations

import time
from typing import Any, Final, Literal

from pydantic import Field, field_validator

from core.models import FrozenModel
from hub.db import Connection, fetch_all, fetch_found, fetch_one

NS_PER_DAY: Final = 86_400 * 10**9
MAX_PAGE: Final = 500
TERM = r"^[^\x00-\x1f\x7f]*$"

CalibrationState = Literal["ok", "due", "overdue", "unknown"]


class SearchQuery(FrozenModel):
    """A search of the registry (every field optional; all given must match)."""

    q: str | None = Field(
        None, max_length=100, pattern=TERM, description="Part of a serial number or model."
    )
    serial: str | None = Field(None, max_length=200, pattern=TERM, description="Serial prefix.")
    model: str | None = Field(None, max_length=200, pattern=TERM, description="Part of a model.")
    type: Literal["instrument", "standard"] | None = None
    kind: str | None = Field(None, max_length=200, pattern=TERM)
    lab: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    province: str | None = Field(None, max_length=100, pattern=TERM)
    status: str | None = Field(None, max_length=200, pattern=TERM)
    calibration: CalibrationState | None = Field(
        None, description="ok, due (within the hub's due_soon_days), overdue, unknown."
    )
    after: int = Field(0, ge=0, le=2**63 - 1, description="The last id of the previous page.")
    limit: int = Field(50, ge=1, le=MAX_PAGE)

    @field_validator("q", "serial", "model", "kind", "province", "status", "lab")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None


def _like(text: str) -> str:
    """A LIKE pattern that matches ``text`` literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def calibration_state(due_ns: int | None, now_ns: int, due_soon_days: int) -> CalibrationState:
    """Where an item stands with its calibration."""
    if due_ns is None:
        return "unknown"
    if due_ns < now_ns:
        return "overdue"
    if due_ns < now_ns + due_soon_days * NS_PER_DAY:
        return "due"
    return "ok"


ITEM_COLUMNS: Final = (
    "r.id, r.lab, l.name AS lab_name, r.province, r.item_type, r.item_key, r.kind, "
    "r.manufacturer, r.model, r.serial, r.description, r.status, r.due_ns, r.calibrated_ns, "
    "l.revoked_ns IS NOT NULL AS lab_revoked"
)


def where_clause(
    query: SearchQuery, now_ns: int, due_soon_days: int
) -> tuple[list[str], list[Any]]:
    """The WHERE conditions and parameters of a search (shared with the exports)."""
    where: list[str] = []
    params: list[Any] = []
    if query.q:
        where.append("(lower(r.serial) LIKE %s OR lower(r.model) LIKE %s)")
        pattern = f"%{_like(query.q.lower())}%"
        params += [pattern, pattern]
    if query.serial:
        where.append("lower(r.serial) LIKE %s")
        params.append(f"{_like(query.serial.lower())}%")
    if query.model:
        where.append("lower(r.model) LIKE %s")
        params.append(f"%{_like(query.model.lower())}%")
    for column, value in (
        ("item_type", query.type),
        ("kind", query.kind),
        ("lab", query.lab),
        ("province", query.province),
        ("status", query.status),
    ):
        if value is not None:
            where.append(f"r.{column} = %s")
            params.append(value)
    soon = now_ns + due_soon_days * NS_PER_DAY
    if query.calibration == "unknown":
        where.append("r.due_ns IS NULL")
    elif query.calibration == "overdue":
        where.append("r.due_ns < %s")
        params.append(now_ns)
    elif query.calibration == "due":
        where.append("r.due_ns >= %s AND r.due_ns < %s")
        params += [now_ns, soon]
    elif query.calibration == "ok":
        where.append("r.due_ns >= %s")
        params.append(soon)
    return where, params


async def search(
    conn: Connection, query: SearchQuery, due_soon_days: int, now_ns: int | None = None
) -> dict[str, Any]:
    """One page of items matching ``query``; ``next`` is the ``after`` of the next page."""
    now = time.time_ns() if now_ns is None else now_ns
    where, params = where_clause(query, now, due_soon_days)
    where.append("r.id > %s")
    params.append(query.after)
    rows = await fetch_all(
        conn,
        f"SELECT {ITEM_COLUMNS} FROM registry r JOIN labs l ON l.id = r.lab "
        f"WHERE {' AND '.join(where)} ORDER BY r.id LIMIT %s",
        [*params, query.limit + 1],
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    for row in rows:
        row["calibration"] = calibration_state(row["due_ns"], now, due_soon_days)
    return {"items": rows, "next": rows[-1]["id"] if more else None}


async def due_counts(
    conn: Connection, due_soon_days: int, lab: str | None = None, now_ns: int | None = None
) -> list[dict[str, Any]]:
    """Per lab: instruments and standards, how many are overdue, due soon, of unknown due."""
    now = time.time_ns() if now_ns is None else now_ns
    soon = now + due_soon_days * NS_PER_DAY
    return await fetch_all(
        conn,
        "SELECT l.id AS lab, l.name, l.province, l.revoked_ns IS NOT NULL AS revoked, "
        "count(r.id) FILTER (WHERE r.item_type = 'standard') AS standards, "
        "count(r.id) FILTER (WHERE r.item_type = 'instrument') AS instruments, "
        "count(r.id) FILTER (WHERE r.due_ns < %s) AS overdue, "
        "count(r.id) FILTER (WHERE r.due_ns >= %s AND r.due_ns < %s) AS due, "
        "count(r.id) FILTER (WHERE r.id IS NOT NULL AND r.due_ns IS NULL) AS unknown "
        "FROM labs l LEFT JOIN registry r ON r.lab = l.id "
        + ("WHERE l.id = %s " if lab is not None else "")
        + "GROUP BY l.id ORDER BY l.id",
        [now, now, soon] + ([lab] if lab is not None else []),
    )


async def standard_page(
    conn: Connection, lab: str, standard_id: str, due_soon_days: int
) -> dict[str, Any]:
    """A standard at a lab: its row, certificates (newest first), evaluation, entries."""
    row = await fetch_found(
        conn,
        "SELECT s.*, l.name AS lab_name, l.province, l.revoked_ns IS NOT NULL AS lab_revoked "
        "FROM standards s JOIN labs l ON l.id = s.lab WHERE s.lab = %s AND s.standard_id = %s",
        (lab, standard_id),
        f"lab {lab} has no standard {standard_id} at the hub",
    )
    certificates = await fetch_all(
        conn,
        "SELECT c.*, a.sha256 IS NOT NULL AS file_held FROM certificates c "
        "LEFT JOIN attachments a ON a.sha256 = c.file_sha256 "
        "WHERE c.lab = %s AND c.standard_id = %s "
        "ORDER BY c.calibration_ns DESC NULLS LAST, c.entry_seq DESC",
        (lab, standard_id),
    )
    evaluation = await fetch_one(
        conn,
        "SELECT kind, ts_ns, summary FROM evaluations WHERE lab = %s AND subject IN (%s, %s)",
        (lab, standard_id, f"standard:{standard_id}"),
    )
    history = await fetch_all(
        conn,
        "SELECT seq, ts_ns, kind, actor, hash FROM entries WHERE lab = %s AND kind = 'standard' "
        "AND subject = %s ORDER BY seq DESC LIMIT 50",
        (lab, f"standard:{standard_id}"),
    )
    now = time.time_ns()
    due = certificates[0]["due_ns"] if certificates else None
    return {
        "standard": row,
        "calibration": calibration_state(due, now, due_soon_days),
        "due_ns": due,
        "certificates": certificates,
        "evaluation": evaluation,
        "history": history,
    }


async def instrument_page(
    conn: Connection, lab: str, instrument: str, due_soon_days: int
) -> dict[str, Any]:
    """An instrument at a lab: its current identity, every identity it had, calibrations."""
    row = await fetch_found(
        conn,
        "SELECT i.*, l.name AS lab_name, l.province, l.revoked_ns IS NOT NULL AS lab_revoked, "
        "r.due_ns, r.calibrated_ns FROM instruments i JOIN labs l ON l.id = i.lab "
        "LEFT JOIN registry r ON r.lab = i.lab AND r.item_type = 'instrument' "
        "AND r.item_key = i.instrument WHERE i.lab = %s AND i.instrument = %s",
        (lab, instrument),
        f"lab {lab} has no instrument {instrument} at the hub",
    )
    identities = await fetch_all(
        conn,
        "SELECT entry_seq, manufacturer, model, serial, firmware, first_seen_ns "
        "FROM instrument_identities WHERE lab = %s AND instrument = %s ORDER BY entry_seq DESC",
        (lab, instrument),
    )
    serials = sorted({i["serial"].lower() for i in identities if i["serial"]})
    calibrations = await fetch_all(
        conn,
        "SELECT run, serial, procedure_id, decision, started_ns, finished_ns, due_ns "
        "FROM calibrations WHERE lab = %s AND lower(serial) = ANY(%s) "
        "ORDER BY finished_ns DESC NULLS LAST LIMIT 100",
        (lab, serials),
    )
    return {
        "instrument": row,
        "calibration": calibration_state(row["due_ns"], time.time_ns(), due_soon_days),
        "identities": identities,
        "calibrations": calibrations,
    }


async def lab_page(conn: Connection, lab: str, due_soon_days: int) -> dict[str, Any]:
    """A lab's overview: who it is, where its chain stands, its counts, its standards, and its
    entries by kind (every kind, known to the registry or not)."""
    from hub.labs import LAB_COLUMNS, lab_keys

    row = await fetch_found(
        conn,
        f"SELECT {LAB_COLUMNS} FROM labs l JOIN lab_heads h ON h.lab = l.id WHERE l.id = %s",
        (lab,),
        f"lab {lab} is not enrolled",
    )
    counts = await due_counts(conn, due_soon_days, lab)
    standards = await fetch_all(
        conn,
        "SELECT r.item_key AS standard_id, r.kind, r.description, r.serial, r.status, r.due_ns "
        "FROM registry r WHERE r.lab = %s AND r.item_type = 'standard' ORDER BY r.item_key "
        "LIMIT 1000",
        (lab,),
    )
    now = time.time_ns()
    for standard in standards:
        standard["calibration"] = calibration_state(standard["due_ns"], now, due_soon_days)
    kinds = await fetch_all(
        conn,
        "SELECT kind, count(*) AS entries, max(seq) AS last_seq FROM entries WHERE lab = %s "
        "GROUP BY kind ORDER BY kind",
        (lab,),
    )
    recent = await fetch_all(
        conn,
        "SELECT seq, ts_ns, kind, subject, actor FROM entries WHERE lab = %s "
        "ORDER BY seq DESC LIMIT 20",
        (lab,),
    )
    return {
        "lab": row,
        "counts": counts[0] if counts else {},
        "keys": await lab_keys(conn, lab),
        "standards": standards,
        "kinds": kinds,
        "recent": recent,
    }
