"""Cost of the gateway's wire decode per reading, against a raw JSON parse of the same payloads.

What the gateway does with every data message before it spools it is ``decode_batch``: parse and
validate (strict types, bounds, names, control characters), salvaging the good readings of a
batch that holds a bad one. Measured in CPU time of this process (so the load of other processes
on the machine does not skew it), best of ``--repeat`` runs, on payloads as an agent builds them:

- ``clean``: 100 readings per batch, as an agent publishes them (some with tags, reasons, u);
- ``one-bad``: the same with one reading refused (a string unit), the slow path that re-parses
  and validates reading by reading;
- ``status``: an agent's birth message with a catalogue of 10 instruments × 10 channels.

The baseline is ``orjson.loads`` of the same bytes (a parse that validates nothing).

    .venv/bin/python -m benchmarks.ingest_decode [--batches 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from drivers.reading import Quality, Reading  # noqa: E402
from edge_agent.wire import AgentStatus, encode_reading, join_batch  # noqa: E402
from edge_agent.wire_batches import decode_batch  # noqa: E402

SITE, AGENT = "bench", "agent-1"
T0 = 1_790_000_000_000_000_000
PER_BATCH = 100


def batch_payload(seq: int, bad_index: int | None = None) -> bytes:
    """One batch as the agent joins it: 100 readings of 100 channels."""
    encoded = []
    for i in range(PER_BATCH):
        reading = Reading(
            f"dmm-{i % 10}",
            f"ch-{i // 10}",
            T0 + seq * 1_000_000 + i,
            10.0 + i * 1e-9,
            "V",
            Quality.UNCERTAIN if i % 10 == 0 else Quality.GOOD,
            reason="range change in progress" if i % 10 == 0 else None,
            u=5e-7 if i % 2 else None,
            tags={"room": "A", "standard": "Z10-01"} if i % 5 == 0 else {},
        )
        encoded.append(encode_reading(reading))
    if bad_index is not None:
        encoded[bad_index] = encoded[bad_index].replace(b'"unit":"V"', b'"unit":7')
    return join_batch(SITE, AGENT, seq, encoded)


def status_payload() -> bytes:
    """A birth message: 10 instruments of 10 channels."""
    instruments = [
        {
            "name": f"dmm-{i}",
            "protocol": "visa",
            "identity": {"manufacturer": "Keysight", "model": "3458A", "serial": f"MY{i:06d}"},
            "channels": [
                {"name": f"ch-{c}", "unit": "V", "interval_s": 1.0, "tags": {"room": "A"}}
                for c in range(10)
            ],
        }
        for i in range(10)
    ]
    body = {
        "schema": 1,
        "state": "online",
        "site": SITE,
        "agent": AGENT,
        "version": "0.1.0",
        "ts": T0,
        "clock": {"source": "system", "synchronized": True, "steps": 0},
        "instruments": instruments,
    }
    return json.dumps(body).encode()


def cpu_per_item(work: Callable[[], object], items: int, repeat: int) -> float:
    """Best CPU seconds per item over ``repeat`` runs of ``work``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best / items


def main() -> None:
    """Measure and print µs per reading (per message for status) and the ratio to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    clean = [batch_payload(s) for s in range(args.batches)]
    one_bad = [batch_payload(s, bad_index=37) for s in range(args.batches // 4)]
    status = [status_payload()] * (args.batches // 4)
    for payload in clean[:3] + one_bad[:3]:  # the payloads are what the bench says they are
        good, rejected, _ = decode_batch(payload, SITE, AGENT)
        assert len(good) + len(rejected) == PER_BATCH
    assert len(decode_batch(one_bad[0], SITE, AGENT)[1]) == 1

    def decode_all(payloads: list[bytes]) -> Callable[[], object]:
        return lambda: [decode_batch(p, SITE, AGENT) for p in payloads]

    def parse_all(payloads: list[bytes]) -> Callable[[], object]:
        return lambda: [orjson.loads(p) for p in payloads]

    rows = []
    for name, payloads, per in (
        ("clean", clean, PER_BATCH),
        ("one-bad", one_bad, PER_BATCH),
    ):
        decoded = cpu_per_item(decode_all(payloads), len(payloads) * per, args.repeat)
        raw = cpu_per_item(parse_all(payloads), len(payloads) * per, args.repeat)
        rows.append((name, "reading", decoded, raw))
    decoded = cpu_per_item(
        lambda: [AgentStatus.model_validate_json(p) for p in status], len(status), args.repeat
    )
    raw = cpu_per_item(parse_all(status), len(status), args.repeat)
    rows.append(("status", "message", decoded, raw))
    print(f"{'payload':<10} {'decode µs':>10} {'orjson µs':>10} {'ratio':>7}")
    for name, per, decoded, raw in rows:
        ratio = decoded / raw
        print(f"{name:<10} {decoded * 1e6:>10.3f} {raw * 1e6:>10.3f} {ratio:>7.2f}  per {per}")


if __name__ == "__main__":
    main()
