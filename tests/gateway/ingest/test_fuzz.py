"""Fuzzing the real Ingest against the real spool and record store with structure-aware hostile
messages of every kind (see strategies.py). For every message: no exception escapes, it is
acknowledged, a refused one is dead-lettered with a reason (a hostile reading alone, the rest of
its batch spooled), a valid one is spooled or recorded exactly as sent; after every example a
valid batch still arrives. No message may reach the catch-all (``ingest_errors``): that would be
a check the wire format misses.

The default run tries a few dozen examples; ``-m slow`` runs for a bounded time and prints how
many examples and messages it tried.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.ingest.harness import AGENT, ROOT, SITE, TS0, IngestRig, Outcome, batch, reading
from tests.gateway.ingest.strategies import Case, any_case

SLOW_SECONDS = 240


class Checker:
    """Sends each example's messages through the rig and checks what each left behind."""

    def __init__(self, rig: IngestRig) -> None:
        self.rig = rig
        self.examples = 0
        self.messages = 0
        self.refused = 0
        self.control_ts = TS0

    async def check(self, cases: list[Case]) -> None:
        for case in cases:
            outcome = await self.rig.send(case.topic, case.payload, retain=case.kind != "data")
            self.messages += 1
            self.refused += bool(outcome.letters)
            await self.check_one(case, outcome)
        self.control_ts += 10**9
        control = await self.rig.send(f"{ROOT}/data", batch(reading(ts=self.control_ts)))
        assert [len(e["readings"]) for e in control.entries] == [1], "a valid batch was lost"
        assert self.rig.task is not None and not self.rig.task.done()
        assert self.rig.metrics.ingest_errors == 0, self.rig.link.published[-1]
        assert self.rig.metrics.records_failed == 0
        self.examples += 1

    async def check_one(self, case: Case, outcome: Outcome) -> None:
        assert outcome.acked
        assert len(outcome.letters) == len(outcome.rows) <= 1
        for letter, row in zip(outcome.letters, outcome.rows, strict=True):
            assert letter["reason"] and row["reason"]
            assert letter["topic"] == row["topic"] == case.topic
        if case.expect == "valid":
            assert not outcome.letters, (outcome.letters, case.body)
            await self.accepted(case, outcome)
        elif case.expect == "refused":
            assert outcome.letters, ("not refused", case.topic, case.payload[:300])
            if case.kind == "data" and not case.whole:
                kept = [r for i, r in enumerate(case.body["readings"]) if i != case.bad_index]
                assert [r["index"] for r in outcome.letters[0]["rejected"]] == [case.bad_index]
                assert [e["readings"] for e in outcome.entries] == ([kept] if kept else [])
            else:
                assert outcome.entries == []

    async def accepted(self, case: Case, outcome: Outcome) -> None:
        """A valid message is spooled or recorded as it was sent."""
        body: Any = case.body
        if case.kind == "data":
            assert [e["readings"] for e in outcome.entries] == [
                orjson.loads(orjson.dumps(body["readings"]))
            ]
        elif case.kind == "metrics":
            (entry,) = outcome.entries
            assert entry["values"] == body["metrics"] and entry["ts"] == body["ts"]
        elif case.kind == "status":
            (row,) = await self.rig.query(
                "SELECT state, version, reason FROM agents WHERE site=? AND agent=?", (SITE, AGENT)
            )
            assert (row["state"], row["version"], row["reason"]) == (
                body["state"],
                body["version"],
                body["reason"],
            )
        elif case.kind == "instrument":
            name = case.topic.rsplit("/", 1)[1]
            (row,) = await self.rig.query(
                "SELECT state, since_ns, reason FROM instrument_states WHERE instrument=?", (name,)
            )
            assert (row["state"], row["since_ns"], row["reason"]) == (
                body["state"],
                body["since"],
                body["reason"],
            )


def fuzz(tmp_path: Path, max_examples: int, seconds: float = 0.0) -> Checker:
    """Run ``max_examples`` examples through one rig, again and again until ``seconds`` passed
    (checked between runs); returns the checker."""
    with asyncio.Runner() as runner:
        rig = runner.run(IngestRig(tmp_path).open())
        checker = Checker(rig)

        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(any_case(TS0 + 10**12), min_size=1, max_size=6))
        def example(cases: list[Case]) -> None:
            runner.run(checker.check(cases))

        try:
            deadline = time.monotonic() + seconds
            example()
            while time.monotonic() < deadline:
                example()
        finally:
            runner.run(rig.close())
    return checker


def test_hostile_messages_through_ingest(tmp_path: Path) -> None:
    checker = fuzz(tmp_path, max_examples=40)
    assert checker.examples >= 40 and checker.refused > 0


@pytest.mark.slow
def test_hostile_messages_through_ingest_for_minutes(tmp_path: Path) -> None:
    checker = fuzz(tmp_path, max_examples=100, seconds=SLOW_SECONDS)
    print(
        f"\ningest fuzz: {checker.examples} examples, {checker.messages} messages "
        f"({checker.refused} refused) in {SLOW_SECONDS} s"
    )
    assert checker.examples >= 200
