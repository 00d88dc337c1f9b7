"""Push the gateway's signed record ledger to the national hub (issue 16; docs/hub.md).

``gateway.hubsync.config`` is imported with every gateway config (light); the pusher itself is
``gateway.hubsync.sync`` (httpx), imported only when a ``hub:`` section is configured."""
