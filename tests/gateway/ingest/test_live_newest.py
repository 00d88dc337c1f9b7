"""The live values take each channel's newest reading of a batch from its rows, making a dict of
those alone: the very values, and the very channels changed, of taking every reading one by one
as wire-format dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.wire_batches import decode_data
from gateway.ingest.events import EventHub, ReadingsArrived
from gateway.ingest.live import ChannelFilter, ChannelKey, LiveValues
from tests.gateway.ingest.harness import AGENT, ROOT, SITE, TS0, IngestRig, batch, reading

CHANNELS = [("dmm-1", "v"), ("dmm-1", "i"), ("dmm-2", "v"), ("scope", "ch-1")]


def one_by_one(
    latest: dict[ChannelKey, Any], site: str, agent: str, readings: list[dict[str, Any]]
) -> list[ChannelKey]:
    """The reference: every reading in order, as the live values took them before."""
    changed = []
    for r in readings:
        key = (site, agent, r["instrument"], r["channel"])
        previous = latest.get(key)
        if previous is None or r["ts"] >= previous["ts"]:
            latest[key] = r
            changed.append(key)
    return changed


def payload(agent: str, readings: list[dict[str, Any]]) -> bytes:
    body = {"schema": 1, "site": SITE, "agent": agent, "seq": 0, "readings": readings}
    return json.dumps(body).encode()


batches = st.lists(
    st.tuples(
        st.sampled_from([AGENT, "bench-2"]),
        st.sampled_from(
            [
                [0, 1, 2, 3],  # an order agents repeat
                [0, 1, 2, 3, 0, 1, 2, 3],
                [3, 3, 1],
            ]
        )
        | st.lists(st.integers(0, 3), min_size=1, max_size=12),
        st.booleans(),  # in time order or shuffled
        st.integers(0, 40),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches, st.data())
def test_the_newest_of_each_channel_from_rows_is_what_one_by_one_gives(
    plan: list[tuple[str, list[int], bool, int]], data: st.DataObject
) -> None:
    hub = EventHub()
    live = LiveValues(hub)
    subscription = live.subscribe(ChannelFilter())
    reference: dict[ChannelKey, Any] = {}
    for agent, order, in_time_order, start in plan:
        stamps = [TS0 + (start + k // 2) * 10**6 for k in range(len(order))]  # ties too
        if not in_time_order:
            stamps = data.draw(st.permutations(stamps))
        readings = [
            reading(0, instrument=CHANNELS[c][0], channel=CHANNELS[c][1], ts=ts, value=float(k))
            for k, (c, ts) in enumerate(zip(order, stamps, strict=True))
        ]
        decoded = decode_data(payload(agent, readings), SITE, agent)
        assert decoded.order is not None
        event = ReadingsArrived(
            SITE, agent, rows=decoded.rows, order=decoded.order, make=decoded.dicts
        )
        subscription.changed.clear()
        hub.publish(event)
        expected = one_by_one(reference, SITE, agent, decoded.dicts())
        assert live.latest == reference
        assert set(subscription.changed) == set(expected)  # the order sent may differ


def test_a_batch_given_as_dicts_is_taken_the_same_way() -> None:
    """A corrected batch, or one that went the salvaging way, comes as dicts alone."""
    hub = EventHub()
    live = LiveValues(hub)
    readings = [
        reading(2, channel="a", value=1.0),
        reading(1, channel="a", value=2.0),  # older: not the newest
        reading(2, channel="a", value=3.0),  # same time, later: the newest
        reading(0, channel="b"),
    ]
    hub.publish(ReadingsArrived(SITE, AGENT, readings))
    assert live.latest[(SITE, AGENT, "dmm-1", "a")]["value"] == 3.0
    reference: dict[ChannelKey, Any] = {}
    one_by_one(reference, SITE, AGENT, readings)
    assert live.latest == reference


async def test_ingest_makes_no_dict_per_reading_for_the_live_values(tmp_path: Path) -> None:
    """With only the live values listening, the event's dicts are never made: the newest
    readings come from the rows (a listener that asks still gets every reading)."""
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        hub = rig.ingest.hub
        live = LiveValues(hub)
        events: list[ReadingsArrived] = []
        hub.subscribe(ReadingsArrived, events.append)
        rig.deliver(f"{ROOT}/data", batch(reading(0), reading(1), reading(2, channel="i")))
        await rig.settle()
        (event,) = events
        assert event._readings is None and event.rows is not None
        assert live.latest[(SITE, AGENT, "dmm-1", "voltage")]["ts"] == reading(1)["ts"]
        assert live.latest[(SITE, AGENT, "dmm-1", "i")]["ts"] == reading(2)["ts"]
        assert [r["ts"] for r in event.readings] == [reading(k)["ts"] for k in range(3)]
