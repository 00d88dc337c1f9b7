"""The gateway's self-metrics."""

from __future__ import annotations

from dataclasses import dataclass

from core.metrics import Counters


@dataclass
class GatewayMetrics(Counters):
    """Counters of one gateway run; gauges (depth, up, online) are set when sampled."""

    messages_received: int = 0
    readings_received: int = 0
    readings_rejected: int = 0
    payloads_deadlettered: int = 0
    """Messages refused (each dead-lettered once), whatever the reason."""
    payloads_spoofed: int = 0
    """Of those: a body naming another site or agent than its topic."""
    ingest_errors: int = 0
    """Of those: handling the message raised an unexpected exception (a bug or a hostile input
    the wire checks missed); the message alone was refused."""
    records_failed: int = 0
    """Messages whose record (agent, catalogue, instrument state) could not be written."""
    deadletters_trimmed: int = 0
    """Dead letters deleted by retention (age, total size)."""
    spooled: int = 0
    spool_dropped: int = 0
    spool_depth: int = 0
    spool_bytes: int = 0
    written: int = 0
    readings_written: int = 0
    write_batches: int = 0
    write_errors: int = 0
    write_rejected: int = 0
    write_latency_ms: float = 0.0
    write_latency_ms_max: float = 0.0
    store_up: int = 0
    agents_online: int = 0
    mqtt_connected: int = 0
    mqtt_reconnects: int = 0
    standards_evaluations: int = 0
    standards_evaluation_errors: int = 0
    standards_evaluations_skipped: int = 0
    standards_evaluation_ms: float = 0.0
    standards_evaluation_ms_max: float = 0.0
    api_auth_failures: int = 0
    """Requests with a token the API does not know."""
    api_auth_throttled: int = 0
    """Requests refused with 429: their address failed too often."""
    readings_corrected: int = 0
    readings_calibration_flagged: int = 0
    calibrations_received: int = 0
    """Calibration records stored (one per run)."""
    calibrations_duplicate: int = 0
    """Redeliveries of a stored record (same hash), taken as such."""
