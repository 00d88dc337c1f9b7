"""Self-metrics: the counters a user graphs, kept as plain attributes and snapshotted."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Counters:
    """Base of a process's self-metrics: a subclass declares its counters (and the gauges it sets
    when sampled) as dataclass fields; they restart at 0 with the process, like Prometheus
    counters."""

    def snapshot(self) -> dict[str, int | float]:
        """Every counter and gauge by name, in declaration order."""
        return asdict(self)
