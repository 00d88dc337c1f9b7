"""Push the gateway's signed record ledger to the national hub (issue 16; docs/hub.md)."""

from gateway.hubsync.config import HubSyncConfig
from gateway.hubsync.sync import HubSync, HubUnreachable, LedgerSource, Refusal, SyncState

__all__ = ["HubSync", "HubSyncConfig", "HubUnreachable", "LedgerSource", "Refusal", "SyncState"]
