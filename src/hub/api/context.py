"""What the hub's routers reach in the running hub."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from hub.audit import HubAudit
from hub.config import HubConfig
from hub.db import Database
from hub.ingest import Ingest


@dataclass
class HubContext:
    """Handles on the hub's parts."""

    config: HubConfig
    db: Database
    audit: HubAudit
    ingest: Ingest


def context_of(request: Request) -> HubContext:
    """The running hub's parts."""
    context: HubContext = request.app.state.context
    return context
