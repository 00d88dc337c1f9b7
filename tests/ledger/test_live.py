"""Live tables against the ledger: the latest entry per subject, and whether a row matches it."""

from __future__ import annotations

from ledger import body_matches, latest_by_subject

from .support import build


def test_latest_by_subject_and_body_matches() -> None:
    built = build(12)
    writer = built.writer
    entries = list(built.entries)
    entries.append(writer.append("standard", "Z10", "alice", {"value": "10.000012", "unit": "V"}))
    entries.append(writer.append("standard", "Z10", "bob", {"value": "10.000013", "unit": "V"}))
    entries.append(writer.append("standard", "R1", "bob", {"value": "1.0000001", "unit": "Ω"}))
    latest = latest_by_subject(entries, kinds=["standard"])
    assert set(latest) == {("standard", "Z10"), ("standard", "R1")}
    z10 = latest[("standard", "Z10")]
    assert z10.actor == "bob"
    assert body_matches(z10, {"unit": "V", "value": "10.000013"})
    assert not body_matches(z10, {"unit": "V", "value": "10.000012"})  # edited behind its back
    assert not body_matches(z10, {"unit": "V", "value": 10.000013})  # a float: never equal
    assert not body_matches(z10, {"unit": "V"})
    everything = latest_by_subject(tuple(e) for e in entries)
    assert ("audit", "standard/Z10-1") in everything
    assert everything[("standard", "R1")] == entries[-1]
