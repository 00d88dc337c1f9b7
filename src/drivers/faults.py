"""Protocol faults counted per process: what an instrument sent that breaks its protocol (a
malformed frame, an oversized record, a reply to no request), by protocol and kind.

Each such fault also fails the read it arrived in (counted per instrument by the agent) and is
logged once, naming the instrument; this is the count a user graphs to tell an instrument (or a
gateway box in front of it) that speaks its protocol badly from one that is merely slow or away.
The agent reports the sum as its ``protocol_faults`` self-metric.
"""

from __future__ import annotations

from collections import Counter

PROTOCOL_FAULTS: dict[str, Counter[str]] = {}
"""Every protocol's counter of faults by kind, under the protocol's name."""


def fault_counter(protocol: str) -> Counter[str]:
    """The process's counter of ``protocol``'s faults, by kind (made on first use)."""
    return PROTOCOL_FAULTS.setdefault(protocol, Counter())


def protocol_faults() -> int:
    """How many protocol faults this process's links have met, all protocols together."""
    return sum(sum(counter.values()) for counter in PROTOCOL_FAULTS.values())
