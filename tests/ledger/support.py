"""Helpers for the ledger's tests: a clock, and ledgers built with the real writer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ledger import ChainHead, Checkpoint, Entry, LedgerWriter, SigningKey

LEDGER = "lab-test"
T0 = 1_733_370_000_000_000_000  # 2024-12-05, ns


class Clock:
    """A clock that moves one millisecond per reading."""

    def __init__(self, start: int = T0) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


@dataclass
class Built:
    """A ledger made by the writer: its entries, checkpoints, keys and writer."""

    entries: list[Entry]
    checkpoints: list[Checkpoint]
    writer: LedgerWriter
    keys: list[SigningKey] = field(default_factory=list)

    @property
    def key(self) -> SigningKey:
        return self.keys[-1]


def body(i: int) -> dict[str, object]:
    return {
        "action": "standard.update",
        "details": {"value": f"10.0000{i:04d}", "unit": "V", "k": 2, "n": i},
        "note": "Chuẩn điện áp 10 V" if i % 3 == 0 else "ok",
    }


def build(
    count: int,
    *,
    key: SigningKey | None = None,
    checkpoints_at: Iterable[int] = (),
    checkpoint_every: int | None = None,
    ledger: str = LEDGER,
) -> Built:
    """``count`` audit entries; a checkpoint after the entries named, or every N entries."""
    key = key or SigningKey.generate()
    writer = LedgerWriter(ChainHead.start(ledger), clock=Clock())
    at = set(checkpoints_at)
    entries: list[Entry] = []
    checkpoints: list[Checkpoint] = []
    for i in range(1, count + 1):
        entries.append(writer.append("audit", f"standard/Z10-{i % 4}", "alice", body(i)))
        if i in at or (checkpoint_every and i % checkpoint_every == 0):
            checkpoints.append(writer.checkpoint(key))
    return Built(entries, checkpoints, writer, [key])


def recomputed(entry: Entry, **changes: Any) -> Entry:
    """``entry`` with ``changes`` and its hash recomputed (what a forger without the key does)."""
    fields: dict[str, Any] = entry._asdict() | {"body": entry.body} | changes
    return Entry.create(
        fields["seq"],
        fields["ts_ns"],
        fields["kind"],
        fields["subject"],
        fields["actor"],
        fields["body"],
        fields["prev"],
    )


def rechain(entries: list[Entry], start: int) -> list[Entry]:
    """Recompute every hash and link from index ``start`` on (a whole-chain rewrite)."""
    out = list(entries[:start])
    for entry in entries[start:]:
        prev = out[-1].hash if out else entry.prev
        out.append(recomputed(entry, prev=prev, seq=len(out) + 1))
    return out
