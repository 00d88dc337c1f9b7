"""The event hub: typed delivery, and a broken listener never stops the others."""

from __future__ import annotations

import pytest

from gateway.ingest.events import AgentStateChanged, EventHub, ReadingsArrived


def test_events_reach_their_subscribers_and_a_failing_one_is_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = EventHub()
    seen: list[object] = []

    def broken(_event: ReadingsArrived) -> None:
        raise RuntimeError("listener bug")

    hub.subscribe(ReadingsArrived, broken)
    hub.subscribe(ReadingsArrived, seen.append)
    hub.subscribe(AgentStateChanged, seen.append)
    readings = ReadingsArrived("s", "a", [])
    state = AgentStateChanged("s", "a", "offline", "online", "connection lost", 1)
    hub.publish(readings)
    hub.publish(state)
    hub.publish(object())  # nobody listens: nothing happens
    assert seen == [readings, state]
    assert hub.handler_errors == 1
    [record] = [r for r in caplog.records if r.getMessage() == "event handler failed"]
    assert record.reason == "RuntimeError: listener bug"  # type: ignore[attr-defined]
    assert record.kind == "ReadingsArrived"  # type: ignore[attr-defined]
