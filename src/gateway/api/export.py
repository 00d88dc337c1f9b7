"""Lists as JSON or CSV: every list endpoint takes ``?format=json|csv``.

CSV follows RFC 4180 (comma, CRLF, quotes doubled), UTF-8 with a byte-order mark so spreadsheet
programs read Vietnamese text right. Nested values go in dotted columns (``latest.value``);
dicts and lists that remain are JSON text. Timestamp columns (integer ns) get an ISO 8601 UTC
twin (``ts_ns`` → ``ts_utc``) so a quality manager can read them. Text that a spreadsheet would
run as a formula (``= + - @`` first) gets a leading apostrophe (:mod:`core.csv_cells`): names,
reasons and comments come from agents and users.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Response
from pydantic import BaseModel

from core.csv_cells import neutralise

Format = Literal["json", "csv"]

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "JSON, or CSV with ?format=csv",
    }
}


def iso_utc(ts_ns: int | None) -> str:
    """ISO 8601 UTC with nanoseconds, e.g. ``2026-11-23T14:27:01.123456789Z``."""
    if ts_ns is None:
        return ""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _get(row: Mapping[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str):
        return neutralise(value)
    return str(value)


def csv_text(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], times: Sequence[str] = ()
) -> str:
    """CSV of ``rows``: one column per dotted path; each path in ``times`` (ns) gets its ISO
    twin right before it."""
    header: list[str] = []
    for column in columns:
        if column in times:
            header.append(column.removesuffix("_ns") + "_utc")
        header.append(column)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        cells = []
        for column in columns:
            value = _get(row, column)
            if column in times:
                cells.append(iso_utc(value) if isinstance(value, int) else "")
            cells.append(_cell(value))
        writer.writerow(cells)
    return "\ufeff" + out.getvalue()


def tabular(
    items: Sequence[BaseModel] | Sequence[Mapping[str, Any]],
    format: Format,
    name: str,
    columns: Sequence[str],
    times: Sequence[str] = (),
) -> Sequence[BaseModel] | Sequence[Mapping[str, Any]] | Response:
    """The items themselves (JSON), or a CSV download named ``name.csv``."""
    if format == "json":
        return items
    rows = (item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in items)
    return attachment(csv_text(rows, columns, times), CSV_MEDIA_TYPE, f"{name}.csv")


def attachment(
    content: str | bytes,
    media_type: str,
    file_name: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``content`` as a download named ``file_name`` (a name the caller made safe)."""
    disposition = {"Content-Disposition": f'attachment; filename="{file_name}"'}
    return Response(content, media_type=media_type, headers=disposition | dict(headers or {}))


def safe_file_name(text: str, default: str, allowed: str = "._-") -> str:
    """``text`` with only letters, digits and ``allowed`` kept (``default`` if none is left)."""
    return "".join(ch for ch in text if ch.isalnum() or ch in allowed) or default
