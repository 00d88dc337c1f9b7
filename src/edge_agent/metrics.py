"""The agent's self-metrics."""

from __future__ import annotations

from dataclasses import dataclass

from core.metrics import Counters


@dataclass
class AgentMetrics(Counters):
    """Counters of one agent run (they restart at 0 with the process, like Prometheus counters)."""

    readings_read: int = 0
    readings_bad: int = 0
    read_errors: int = 0
    read_timeouts: int = 0
    overruns: int = 0
    """Polls skipped because the previous read overran them (per instrument)."""
    readings_skipped: int = 0
    """Channel readings not taken because of overruns."""
    readings_repeated: int = 0
    """Channels left out of a read because the instrument returned the sample it had already
    given (an OPC UA node polled faster than it changes): the same sample is not sent twice."""
    reconnects: int = 0
    clock_steps: int = 0
    """Steps of the host's clock (NTP, a virtual machine's pause): readings either side of one
    are that much further apart in UTC than their schedule."""
    instruments_unavailable: int = 0
    spooled: int = 0
    spool_dropped: int = 0
    spool_depth: int = 0
    spool_bytes: int = 0
    published: int = 0
    publish_batches: int = 0
    acknowledged: int = 0
    publish_refused: int = 0
    mqtt_connected: int = 0
    mqtt_reconnects: int = 0
    protocol_faults: int = 0
    """What instruments sent that broke their protocol (a malformed frame, an oversized record,
    a reply to no request), or a serial port that vanished; every protocol together (see
    :mod:`drivers.faults`)."""
