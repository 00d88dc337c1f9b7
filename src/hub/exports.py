"""Machine-readable exports of the registry: JSON (its schema published as ``hub-export`` by
``etalon schema``) and CSV (cells a spreadsheet would run as a formula are neutralised).

Both stream row by row from the database: an export of a million instruments never sits in
memory. DCCs are exported as received (``GET /api/v1/attachments/{sha256}``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import AsyncIterator
from typing import Any, Final, Literal

import orjson
from psycopg.rows import dict_row
from pydantic import Field

from core.models import FrozenModel
from hub.db import Database
from hub.search import ITEM_COLUMNS, CalibrationState, SearchQuery, calibration_state, where_clause

EXPORT_FORMAT: Final = "etalon-hub-export/1"
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS: Final = (
    "lab",
    "lab_name",
    "province",
    "type",
    "key",
    "kind",
    "manufacturer",
    "model",
    "serial",
    "description",
    "status",
    "calibration",
    "due",
    "calibrated",
    "lab_revoked",
)


class ExportItem(FrozenModel):
    """An instrument or standard of a lab, as the registry holds it."""

    lab: str
    lab_name: str
    province: str | None
    type: Literal["instrument", "standard"]
    key: str = Field(description="The standard's id, or the instrument's SITE/AGENT/INSTRUMENT.")
    kind: str | None
    manufacturer: str | None
    model: str | None
    serial: str | None
    description: str | None
    status: str
    calibration: CalibrationState
    due_ns: int | None = Field(description="Next calibration due, ns since 1970 UTC.")
    calibrated_ns: int | None
    lab_revoked: bool


class RegistryExport(FrozenModel):
    """A JSON export of the registry (``GET /api/v1/export/registry.json``)."""

    format: Literal["etalon-hub-export/1"] = EXPORT_FORMAT
    hub: str
    generated_ns: int
    query: dict[str, Any] = Field(description="The filters the export was made with.")
    items: list[ExportItem]


SCHEMAS: Final = {"hub-export": RegistryExport}
"""Models whose JSON Schema ``etalon schema`` publishes."""


def neutralise(value: str) -> str:
    """A cell a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``, tab, CR first) is
    prefixed with ``'`` so that it stays text (OWASP, CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _item(row: dict[str, Any], now: int, due_soon_days: int) -> dict[str, Any]:
    return {
        "lab": row["lab"],
        "lab_name": row["lab_name"],
        "province": row["province"],
        "type": row["item_type"],
        "key": row["item_key"],
        "kind": row["kind"],
        "manufacturer": row["manufacturer"],
        "model": row["model"],
        "serial": row["serial"],
        "description": row["description"],
        "status": row["status"],
        "calibration": calibration_state(row["due_ns"], now, due_soon_days),
        "due_ns": row["due_ns"],
        "calibrated_ns": row["calibrated_ns"],
        "lab_revoked": row["lab_revoked"],
    }


async def _rows(
    db: Database, query: SearchQuery, due_soon_days: int, now: int
) -> AsyncIterator[dict[str, Any]]:
    where, params = where_clause(query, now, due_soon_days)
    sql = f"SELECT {ITEM_COLUMNS} FROM registry r JOIN labs l ON l.id = r.lab"
    if where:
        sql += f" WHERE {' AND '.join(where)}"
    sql += " ORDER BY r.id"
    async with db.read() as conn, conn.cursor(row_factory=dict_row) as cur:
        async for row in cur.stream(sql, params):
            yield _item(row, now, due_soon_days)


def _date(ns: int | None) -> str:
    if ns is None:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).date().isoformat()


async def registry_json(
    db: Database, hub: str, query: SearchQuery, due_soon_days: int
) -> AsyncIterator[bytes]:
    """The JSON export, in chunks (valid against ``RegistryExport``)."""
    now = time.time_ns()
    filters = query.model_dump(mode="json", exclude_none=True, exclude={"after", "limit"})
    head = {"format": EXPORT_FORMAT, "hub": hub, "generated_ns": now, "query": filters}
    yield orjson.dumps(head)[:-1] + b',"items":['
    first = True
    chunk: list[bytes] = []
    async for item in _rows(db, query, due_soon_days, now):
        chunk.append(orjson.dumps(item) if first else b"," + orjson.dumps(item))
        first = False
        if len(chunk) >= 500:
            yield b"".join(chunk)
            chunk.clear()
    chunk.append(b"]}")
    yield b"".join(chunk)


async def registry_csv(
    db: Database, query: SearchQuery, due_soon_days: int
) -> AsyncIterator[bytes]:
    """The CSV export, in chunks (UTF-8 with a BOM, for spreadsheets)."""
    now = time.time_ns()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    count = 0
    async for item in _rows(db, query, due_soon_days, now):
        cells: list[str] = []
        for column in CSV_COLUMNS:
            if column == "type":
                value: Any = item["type"]
            elif column == "due":
                value = _date(item["due_ns"])
            elif column == "calibrated":
                value = _date(item["calibrated_ns"])
            elif column == "lab_revoked":
                value = "yes" if item["lab_revoked"] else "no"
            else:
                value = item[column]
            cells.append(neutralise("" if value is None else str(value)))
        writer.writerow(cells)
        count += 1
        if count % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
