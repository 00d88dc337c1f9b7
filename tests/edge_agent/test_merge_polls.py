"""The polls one spool commit takes become as few entries as hold a batch each."""

from __future__ import annotations

import orjson

from edge_agent.agent import merge_polls


def poll(first: int, count: int) -> tuple[bytes, int]:
    return b",".join(orjson.dumps({"n": first + k}) for k in range(count)), count


def test_polls_merge_up_to_a_batch_and_keep_every_reading_in_order() -> None:
    polls = [poll(0, 20), poll(20, 20), poll(40, 20), poll(60, 700), poll(760, 5)]
    entries = merge_polls(polls, 50)
    assert [count for _, count in entries] == [40, 20, 700, 5]  # a poll over 50 stays alone
    readings = orjson.loads(b"[" + b",".join(data for data, _ in entries) + b"]")
    assert [r["n"] for r in readings] == list(range(765))


def test_one_poll_is_its_own_entry() -> None:
    only = [poll(0, 3)]
    assert merge_polls(only, 500) is only
