"""What the API's routers reach in the running gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.config import GatewayConfig
from gateway.events import EventHub
from gateway.metrics import GatewayMetrics
from gateway.records import RecordStore


@dataclass
class ApiContext:
    """Handles on the gateway's parts. Features that are not running are None; ``extras`` holds
    what later features register (alert engine, standards service, live hub...)."""

    config: GatewayConfig
    records: RecordStore
    metrics: GatewayMetrics
    hub: EventHub
    extras: dict[str, Any] = field(default_factory=dict)
