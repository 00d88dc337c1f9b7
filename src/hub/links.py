"""Traceability links typed in by the national institute (``etalon hub link``): a standard
designated national, the BIPM key comparison or CMC that underpins it, or a calibration link the
institute vouches for. Each addition and withdrawal is recorded in the hub's audit chain."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from core.models import FrozenModel
from hub.audit import LINK_ADDED, LINK_WITHDRAWN, HubAudit
from hub.db import Connection, fetch_all, fetch_one
from hub.errors import HubConflict, HubNotFound
from hub.labs import LAB_ID, Revocation, plain_text

LinkKind = Literal["standard", "national", "kcdb_comparison", "cmc"]
REF = r"^[^\x00-\x1f\x7f]{1,200}$"


class LinkSpec(FrozenModel):
    """An institute's link from a lab's standard to what it is traceable to."""

    from_lab: str = Field(pattern=LAB_ID)
    from_standard: str = Field(pattern=REF)
    to_kind: LinkKind = Field(
        description="standard: another lab's standard; national: the standard is designated "
        "a national standard (to_ref: the designation); kcdb_comparison / cmc: the BIPM key "
        "comparison or CMC that underpins it (to_ref: its KCDB identifier)."
    )
    to_lab: str | None = Field(None, pattern=LAB_ID)
    to_standard: str | None = Field(None, pattern=REF)
    to_ref: str | None = Field(None, pattern=REF)
    certificate: str | None = Field(None, pattern=REF)
    valid_until: dt.date | None = Field(None, description="After this date the link is expired.")
    note: str | None = Field(None, max_length=500)

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        return plain_text("note", value, 500)

    @model_validator(mode="after")
    def _target(self) -> LinkSpec:
        if self.to_kind == "standard":
            if self.to_lab is None or self.to_standard is None:
                raise ValueError("a link to a standard needs to_lab and to_standard")
            if (self.to_lab, self.to_standard) == (self.from_lab, self.from_standard):
                raise ValueError("a standard cannot be traceable to itself")
        elif self.to_ref is None:
            raise ValueError(f"a {self.to_kind} link needs to_ref (its identifier)")
        return self

    def valid_until_ns(self) -> int | None:
        """The end of the validity day (UTC), in ns."""
        if self.valid_until is None:
            return None
        end = dt.datetime.combine(self.valid_until, dt.time.max, tzinfo=dt.UTC)
        return int(end.timestamp()) * 10**9 + 999_999_999


async def add_link(conn: Connection, audit: HubAudit, spec: LinkSpec, actor: str) -> int:
    """Record an institute link; returns its id."""
    if await fetch_one(conn, "SELECT id FROM labs WHERE id = %s", (spec.from_lab,)) is None:
        raise HubNotFound("hub.error.not_enrolled", lab=spec.from_lab)
    row = await fetch_one(
        conn,
        "INSERT INTO trace_links (source, from_lab, from_standard, to_kind, to_lab, to_standard, "
        "to_ref, certificate, valid_until_ns, note, created_ns, created_by) "
        "VALUES ('institute', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            spec.from_lab,
            spec.from_standard,
            spec.to_kind,
            spec.to_lab,
            spec.to_standard,
            spec.to_ref,
            spec.certificate,
            spec.valid_until_ns(),
            spec.note,
            time.time_ns(),
            actor,
        ),
    )
    assert row is not None
    link_id = int(row["id"])
    body = spec.model_dump(mode="json", exclude_none=True) | {"id": link_id}
    await audit.append(conn, LINK_ADDED, f"link:{link_id}", actor, body)
    return link_id


async def withdraw_link(
    conn: Connection, audit: HubAudit, link_id: int, revocation: Revocation, actor: str
) -> None:
    """Withdraw an institute link (it stays on record, out of the graph)."""
    row = await fetch_one(
        conn, "SELECT source, withdrawn_ns FROM trace_links WHERE id = %s FOR UPDATE", (link_id,)
    )
    if row is None:
        raise HubNotFound("hub.error.no_link", id=link_id)
    if row["source"] != "institute":
        raise HubConflict("hub.error.link_from_certificate", id=link_id)
    if row["withdrawn_ns"] is not None:
        raise HubConflict("hub.error.withdrawn_already", id=link_id)
    await conn.execute(
        "UPDATE trace_links SET withdrawn_ns = %s, withdrawn_by = %s, withdrawn_reason = %s "
        "WHERE id = %s",
        (time.time_ns(), actor, revocation.reason, link_id),
    )
    await audit.append(
        conn, LINK_WITHDRAWN, f"link:{link_id}", actor, {"reason": revocation.reason}
    )


async def list_links(
    conn: Connection, lab: str | None = None, *, withdrawn: bool = False
) -> list[dict[str, Any]]:
    """Links (institute and certificate), of one lab's standards or all."""
    where = ["(%s::text IS NULL OR from_lab = %s)"]
    if not withdrawn:
        where.append("withdrawn_ns IS NULL")
    return await fetch_all(
        conn,
        "SELECT id, source, from_lab, from_standard, to_kind, to_lab, to_standard, to_ref, "
        "certificate, valid_until_ns, note, created_ns, created_by, withdrawn_ns, "
        f"withdrawn_reason FROM trace_links WHERE {' AND '.join(where)} ORDER BY id",
        (lab, lab),
    )
