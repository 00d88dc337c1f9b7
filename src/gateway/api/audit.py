"""The audit log, read-only: who did what to which subject, and when (ISO/IEC 17025 §7.11).

Entries are appended by the gateway (agent and instrument state changes) and by every feature
that changes records (acknowledgements, certificates…); the record store refuses to change or
delete them. Newest first by default; page with ``before_id`` (or ``after_id`` in ascending order).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from gateway.api.auth import Viewer
from gateway.api.export import CSV_RESPONSE, Format, tabular
from gateway.api.views import ERRORS, TS_MAX_NS, api_context, to_ns

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=ERRORS)

Text = Annotated[str | None, Query(min_length=1, max_length=256)]
RowId = Annotated[int | None, Query(ge=0, le=2**63 - 1)]


class AuditEntry(BaseModel):
    """One entry of the audit log."""

    id: int
    ts_ns: int
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


AUDIT_COLUMNS = ["id", "ts_ns", "actor", "action", "subject", "details"]


def _details(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


@router.get("/audit", response_model=list[AuditEntry], responses=CSV_RESPONSE)
async def audit_log(
    request: Request,
    _who: Viewer,
    actor: Text = None,
    action: Text = None,
    subject: Text = None,
    subject_prefix: Annotated[
        str | None, Query(min_length=1, max_length=256, description="e.g. 'alert:' or 'standard:'")
    ] = None,
    start: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    before_id: RowId = None,
    after_id: RowId = None,
    order: Literal["desc", "asc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 200,
    format: Format = "json",
) -> list[AuditEntry] | Response:
    """Entries of the audit log matching every filter given."""
    start_ns = to_ns(start, "start", 0)
    end_ns = to_ns(end, "end", TS_MAX_NS)
    rows = await api_context(request).records.query(
        "SELECT id, ts_ns, actor, action, subject, details FROM audit_log "
        "WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2) "
        "AND (?3 IS NULL OR subject = ?3) "
        "AND (?4 IS NULL OR substr(subject, 1, length(?4)) = ?4) "
        "AND ts_ns >= ?5 AND ts_ns < ?6 AND (?7 IS NULL OR id < ?7) AND (?8 IS NULL OR id > ?8) "
        f"ORDER BY id {'DESC' if order == 'desc' else 'ASC'} LIMIT ?9",
        (actor, action, subject, subject_prefix, start_ns, end_ns, before_id, after_id, limit),
    )
    entries = [AuditEntry(**row | {"details": _details(row["details"])}) for row in rows]
    return tabular(entries, format, "audit-log", AUDIT_COLUMNS, times=["ts_ns"])  # type: ignore[return-value]  # JSON list or CSV
