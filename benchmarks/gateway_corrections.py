"""What corrections add to the gateway's per-reading work (issue 19: at most 1 µs per reading).

Run:  .venv/bin/python -m benchmarks.gateway_corrections [--batches 400] [--size 100] [--repeat 9]
          [--wakeup 1] [--handed] [--shuffle]

One process, no network: each round runs the gateway's own per-reading path over the same
data-message payloads (``--batches`` messages of ``--size`` readings, 10 channels of one agent):

    decode_data (validation) → Corrector.batches → the spool entry (the payload, its corrections
    beside it) → decode_entry (the writer reading it back) → LineBuilder.lines (line protocol)

Ingest validates each message as it arrives and corrects all the messages one wake-up of its
spooling task takes together (``Ingest.run``: one ``Corrector.batches`` call for them):
``--wakeup`` is how many messages a wake-up takes (1: every message alone, the most a message
can cost; a gateway taking a burst takes several at each wake-up, as many as arrived while it
spooled the previous ones — see docs/corrections.md#cost for what a real gateway sees).

By default the writer's read-back is measured (not the in-memory hand-over ingest gives a writer
that keeps up), so every correction goes through the spool's JSON both ways; ``--handed`` measures
the hand-over instead (the writer takes the rows ingest decoded with the very entry: what a
gateway whose writer keeps up does). Agents send their channels in the same order batch after
batch; ``--shuffle`` shuffles each message's readings (every batch a new order).

- ``uncorrected (baseline)``: corrections off (no corrector), the path before issue 19;
- ``no channel linked``: corrections on, the agent's channels not linked (what every unlinked
  reading pays);
- ``linear``: every channel linked, piecewise linear (11 points, the default method);
- ``linear + conformity``: the same with a tolerance and a guarded-acceptance decision;
- ``polynomial deg 3``: every channel linked, a least-squares cubic.

Each row: CPU ns per reading (this thread's CPU time, not the wall clock: the machine is shared
by other developers' test suites, and waiting for a core is not work the gateway does; best of
``--repeat`` rounds, candidates interleaved so a burst of load hits them alike), the ns added
against the baseline of the same run, and the ratio. Under heavy load even CPU time inflates
(caches and cores are shared): the ratios are the stable result, the added ns the budget.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import orjson

from edge_agent.wire_batches import decode_data
from gateway.corrections.config import CorrectionsConfig
from gateway.corrections.corrector import Corrector
from gateway.corrections.instruments import InstrumentCertificate, Link
from gateway.corrections.tables import CalibrationTable, TablePoint
from gateway.ingest.entries import Spoolable, spool_entries
from gateway.records.store import RecordStore
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import ReadingsBatch
from gateway.tsdb.writer import decode_entry

SITE, AGENT = "lab", "bench-1"
CHANNELS = [("readout", f"ch{i}") for i in range(10)]


def payloads(batches: int, size: int, shuffle: bool = False) -> list[bytes]:
    """Data messages as an agent publishes them: readings in 0 … 100 °C (``shuffle``: each
    message's readings in another order)."""
    rng = random.Random(19)
    ts = 1_764_000_000_000_000_000
    out = []
    for seq in range(batches):
        readings = []
        for index in range(size):
            instrument, channel = CHANNELS[index % len(CHANNELS)]
            ts += 1_000
            readings.append(
                {
                    "instrument": instrument,
                    "channel": channel,
                    "ts": ts,
                    "value": round(rng.uniform(0.5, 99.5), 4),
                    "unit": "°C",
                    "quality": "good",
                }
            )
        if shuffle:
            rng.shuffle(readings)
        body = {"schema": 1, "site": SITE, "agent": AGENT, "seq": seq, "readings": readings}
        out.append(orjson.dumps(body))
    return out


def certificate() -> InstrumentCertificate:
    """An 11-point table of a curved error, as a DCC gives it."""
    points = tuple(
        TablePoint(
            indication=f"{x + 0.02 + 1e-4 * x - 2e-6 * x * x:.4f}",
            value=f"{0.02 + 1e-4 * x - 2e-6 * x * x:.4f}",
            expanded_uncertainty="0.010",
            coverage_factor="2",
        )
        for x in range(0, 101, 10)
    )
    table = CalibrationTable(
        index=0, name="t", name_vi="t", path="p", kind="error", unit="°C", points=points
    )
    return InstrumentCertificate(
        1, "BENCH-1", "lab", None, None, "S1", "2026-11-03", "2099-01-01", 2**62, (table,),
        {}, None, "0" * 64, 0, 0, "bench",
    )  # fmt: skip


def corrector(settings: dict[str, object] | None, linked: bool) -> Corrector:
    """A corrector with the agent's channels linked (or not), built without a record store."""
    made = Corrector(
        CorrectionsConfig.model_validate(settings or {}), RecordStore.__new__(RecordStore)
    )
    links = [
        Link(i + 1, SITE, AGENT, instrument, channel, 1, 0, "S1", 0, None, "bench", None)
        for i, (instrument, channel) in enumerate(CHANNELS)
    ]
    made.install(links if linked else [], [certificate()], {(SITE, AGENT, "readout"): "S1"})
    return made


def path(
    messages: list[bytes], fix: Corrector | None, handed: bool, wakeup: int = 1
) -> Callable[[], float]:
    """One round of the gateway's per-reading path; returns ns per reading (``handed``: the
    writer takes ingest's rows, else it reads the spool entry back; ``wakeup``: messages
    ingest takes per wake-up, corrected together)."""
    builder = LineBuilder()
    wakeups = [messages[at : at + wakeup] for at in range(0, len(messages), wakeup)]

    def run() -> float:
        count = 0
        started = time.thread_time_ns()
        for taken in wakeups:
            spooled: list[tuple[bytes, ReadingsBatch]] = []
            linked: list[Spoolable] = []
            for payload in taken:  # Ingest.on_message: each message as it arrives
                decoded = decode_data(payload, SITE, AGENT)
                good = decoded.rows
                count += len(good)
                if fix is not None and fix.covers(SITE, AGENT):
                    linked.append((SITE, AGENT, payload, good, decoded.order))
                else:
                    spooled.append((payload, ReadingsBatch(SITE, AGENT, rows=good)))
            if fix is not None and linked:  # Ingest.run: the wake-up's messages at once
                spooled += [(entry, rows) for entry, rows, _ in spool_entries(fix, linked)]
            for entry, rows in spooled:  # the writer
                item = rows if handed else decode_entry(entry)
                assert isinstance(item, ReadingsBatch)
                builder.lines(item)
        return (time.thread_time_ns() - started) / count

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--wakeup", type=int, default=1, help="messages per ingest wake-up")
    parser.add_argument("--handed", action="store_true", help="the writer takes ingest's rows")
    parser.add_argument("--shuffle", action="store_true", help="each message in a new order")
    args = parser.parse_args()
    messages = payloads(args.batches, args.size, args.shuffle)
    tolerance = {
        "channels": [
            {
                "channel": "*/*/*/*",
                "tolerance": {"lower": 0.0, "upper": 100.0},
                "decision_rule": {"kind": "guarded_acceptance"},
            }
        ]
    }
    cubic = {"channels": [{"channel": "*/*/*/*", "method": "polynomial", "degree": 3}]}
    handed, wakeup = args.handed, max(1, args.wakeup)
    candidates = {
        "uncorrected (baseline)": path(messages, None, handed, wakeup),
        "no channel linked": path(messages, corrector(None, linked=False), handed, wakeup),
        "linear": path(messages, corrector(None, linked=True), handed, wakeup),
        "linear + conformity": path(messages, corrector(tolerance, linked=True), handed, wakeup),
        "polynomial deg 3": path(messages, corrector(cubic, linked=True), handed, wakeup),
    }
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(args.repeat):
        for name, candidate in candidates.items():
            best[name] = min(best[name], candidate())
    base = best["uncorrected (baseline)"]
    readings = args.batches * args.size
    print(
        f"{readings} readings in {args.batches} messages, {wakeup} per wake-up, best of "
        f"{args.repeat} rounds; writer "
        f"{'takes ingest rows' if handed else 'reads entries back'}"
        f"{'; every message in a new order' if args.shuffle else ''}"
    )
    print(f"{'path':<26} {'ns/reading':>11} {'added ns':>9} {'× baseline':>11}")
    for name, ns in best.items():
        print(f"{name:<26} {ns:>11.0f} {ns - base:>9.0f} {ns / base:>11.2f}")


if __name__ == "__main__":
    main()
