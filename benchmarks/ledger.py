"""How fast the ledger appends and verifies, against bare SHA-256 over the same bytes.

N entries (default 100,000) of a typical audit body (an action, a nested detail with a decimal
string, an integer, a unit, Vietnamese text on a third of them), made by the real writer, with a
signed checkpoint every 1,000 entries. Measured in the same run:

- raw: ``hashlib.sha256(content).hexdigest()`` over every entry's canonical content, nothing
  else: the floor any verifier of this format stands on;
- append: ``LedgerWriter.append`` (validation, canonical JSON, content, hash, chain);
- verify, signed: ``verify`` over the entries and their checkpoints (bodies under a checkpoint
  are vouched for by its signature, so only their hashes and links are checked);
- verify, unsigned: no checkpoint at all, so every body is also parsed and checked canonical
  (the work done on the tail after the last checkpoint);
- verify, SQLite: the entries read back from a SQLite file by a cursor and verified as they
  stream (what ``etalon records verify`` will do), beside the bare read of the same rows;
- hub ingest: segments of 1,000 entries as JSON, parsed (pydantic) and ``verify_segment``-ed.

Rates are entries per second of the process's CPU time (other processes on the machine do not
skew them), best of ``--rounds``; wall time of the best verify is printed too, and the ratio of
each rate to raw. The aim: a clean ledger of 100,000 entries verifies in under 1 s.

    .venv/bin/python -m benchmarks.ledger [--entries 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ledger import (  # noqa: E402
    ChainHead,
    Checkpoint,
    Entry,
    LedgerWriter,
    Segment,
    SigningKey,
    export_segment,
    verify,
    verify_segment,
)

LEDGER = "bench-lab"
T0 = 1_790_000_000_000_000_000
EVERY = 1_000
COLUMNS = "seq, ts_ns, kind, subject, actor, body_json, prev, hash"


def body(i: int) -> dict[str, Any]:
    return {
        "action": "standard.update",
        "details": {"value": f"10.0000{i % 10_000:04d}", "unit": "V", "k": 2, "n": i},
        "agent_ts_ns": str(T0 - i),
        "note": "Chuẩn điện áp 10 V đã hiệu chuẩn" if i % 3 == 0 else "ok",
    }


def clock() -> Callable[[], int]:
    now = [T0]

    def tick() -> int:
        now[0] += 1_000_000
        return now[0]

    return tick


def append(count: int, key: SigningKey) -> tuple[list[Entry], list[Checkpoint], float]:
    """The entries made by the writer, a checkpoint every EVERY, and the CPU time of it all."""
    bodies = [body(i) for i in range(count)]  # made before the clock starts
    subjects = [f"standard/Z10-{i % 50:02d}" for i in range(count)]
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=clock())
    entries: list[Entry] = []
    checkpoints: list[Checkpoint] = []
    start = time.process_time()
    for i in range(count):
        entries.append(writer.append("audit", subjects[i], "alice", bodies[i]))
        if (i + 1) % EVERY == 0:
            checkpoints.append(writer.checkpoint(key))
    return entries, checkpoints, time.process_time() - start


def raw(contents: list[bytes]) -> float:
    sha256 = hashlib.sha256
    start = time.process_time()
    for content in contents:
        sha256(content).hexdigest()
    return time.process_time() - start


def timed(action: Callable[[], bool]) -> tuple[float, float]:
    """CPU and wall seconds of ``action``, which must say it succeeded."""
    wall, cpu = time.perf_counter(), time.process_time()
    assert action(), "verification failed on a clean ledger"
    return time.process_time() - cpu, time.perf_counter() - wall


def sqlite_file(directory: Path, entries: list[Entry]) -> Path:
    path = directory / "records.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE ledger (seq INTEGER PRIMARY KEY, ts_ns INTEGER, kind TEXT, "
            "subject TEXT, actor TEXT, body_json TEXT, prev TEXT, hash TEXT)"
        )
        db.executemany(f"INSERT INTO ledger ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", entries)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count = args.entries
    key = SigningKey.generate()
    trusted = [key.public_key]

    best: dict[str, float] = {}
    walls: dict[str, float] = {}

    def keep(name: str, cpu: float, wall: float | None = None) -> None:
        if cpu < best.get(name, float("inf")):
            best[name] = cpu
            if wall is not None:
                walls[name] = wall

    with tempfile.TemporaryDirectory() as tmp:
        entries, checkpoints, _ = append(count, key)
        contents = [entry.content() for entry in entries]
        database = sqlite_file(Path(tmp), entries)
        segments = [
            export_segment(
                entries, checkpoints, ledger=LEDGER, from_seq=start, to_seq=start + EVERY - 1
            ).to_json()
            for start in range(1, count - EVERY + 2, EVERY)
        ]

        def from_sqlite() -> bool:
            with sqlite3.connect(database) as db:
                cursor = db.execute(f"SELECT {COLUMNS} FROM ledger ORDER BY seq")
                return verify(cursor, checkpoints, trusted, ledger=LEDGER).ok

        def read_sqlite() -> bool:
            with sqlite3.connect(database) as db:
                cursor = db.execute(f"SELECT {COLUMNS} FROM ledger ORDER BY seq")
                return sum(1 for _ in cursor) == count

        def hub() -> bool:
            head: ChainHead | None = None
            for data in segments:
                verdict = verify_segment(Segment.model_validate_json(data), head, trusted)
                if not verdict.accepted:
                    return False
                head = verdict.head
            return True

        for _ in range(args.rounds):
            keep("raw", raw(contents))
            keep("append", append(count, key)[2])
            keep(
                "verify signed",
                *timed(lambda: verify(entries, checkpoints, trusted, ledger=LEDGER).ok),
            )
            keep("verify unsigned", *timed(lambda: verify(entries, [], [], ledger=LEDGER).ok))
            keep("SQLite read only", *timed(read_sqlite))
            keep("verify from SQLite", *timed(from_sqlite))
            keep("hub ingest (segments)", *timed(hub))

    load = os.getloadavg()[0]
    print(
        f"{count:,} entries, a checkpoint every {EVERY:,}; CPU time, best of {args.rounds}; "
        f"load average {load:.1f} on {os.cpu_count()} cores"
    )
    results: dict[str, Any] = {"entries": count, "load": round(load, 1)}
    for name, seconds in best.items():
        rate = count / seconds
        ratio = seconds / best["raw"]
        wall = f"   wall {walls[name]:.2f} s" if name in walls else ""
        print(f"  {name:24} {rate:12,.0f} entries/s   {ratio:5.1f} × raw   {seconds:6.3f} s{wall}")
        results[name] = {"per_s": round(rate), "ratio": round(ratio, 2), "cpu_s": round(seconds, 3)}
    per_100k = best["verify signed"] * 100_000 / count
    print(f"  a clean ledger of 100,000 entries verifies in {per_100k:.2f} s of CPU (aim < 1 s)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
