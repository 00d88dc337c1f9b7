"""What the hub's routers reach in the running hub."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request

from hub.audit import HubAudit
from hub.config import HubConfig
from hub.db import Connection, Database
from hub.ingest import Ingest

T = TypeVar("T")


@dataclass
class HubContext:
    """Handles on the hub's parts."""

    config: HubConfig
    db: Database
    audit: HubAudit
    ingest: Ingest

    async def audited(self, change: Callable[[Connection, HubAudit], Awaitable[T]]) -> T:
        """Make a staff change in one write transaction, recorded in the hub's audit chain."""
        async with self.db.write() as conn:
            return await change(conn, self.audit)


def context_of(request: Request) -> HubContext:
    """The running hub's parts."""
    context: HubContext = request.app.state.context
    return context
