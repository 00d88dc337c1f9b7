"""What the API's routers reach in the running gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.config import GatewayConfig
from gateway.ingest.events import EventHub
from gateway.metrics import GatewayMetrics
from gateway.records.store import RecordStore

if TYPE_CHECKING:
    from gateway.alerts.engine import AlertEngine
    from gateway.api.views import LimitsProvider, Views
    from gateway.corrections.corrector import Corrector
    from gateway.hubsync.sync import HubSync
    from gateway.records.monitor import RecordsMonitor
    from gateway.standards.service import StandardsService


@dataclass
class ApiContext:
    """Handles on the gateway's parts; a feature that is not running is None."""

    config: GatewayConfig
    records: RecordStore
    metrics: GatewayMetrics
    hub: EventHub
    alerts: AlertEngine | None = None
    standards: StandardsService | None = None
    limits: LimitsProvider | None = None
    """Where the overview's channel limits come from (the alert rules, else the dashboard's)."""
    hubsync: HubSync | None = None
    """The push to the national hub (its state is served at /api/v1/hub/sync)."""
    views: Views | None = None
    """The read side's services (live values, history), made when the API starts."""
    monitor: RecordsMonitor | None = None
    """The records' verification (the running gateway's)."""
    corrector: Corrector | None = None
    """The corrections of linked channels (the running gateway's)."""
