"""The compact way through the pipeline (a driver's rows encoded by RowEncoder) writes the same
spool entry, to the byte, as the Reading way (finish, then encode_readings), whatever the rows
hold: plain numbers, scaled ones, BAD readings, strings, booleans, non-finite values, tags,
units the wire refuses, uncertainties, channels not read."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.config import ChannelBase, Uncertainty
from drivers.reading import Quality, Reading, Value
from edge_agent.pipeline import RowEncoder, Rows, count_bad, finish
from edge_agent.wire import encode_readings, join_batch
from edge_agent.wire_batches import decode_batch

TS = 1_795_438_217_002_076_936


def reference(instrument: str, channels: list[ChannelBase], rows: Rows) -> tuple[bytes, int, int]:
    """The Reading way: what the agent spooled before rows existed."""
    readings = [
        Reading(instrument, c.name, ts, value, c.unit)
        if reason is None
        else Reading.bad(instrument, c.name, ts, c.unit, reason)
        for c, ts, value, reason in zip(channels, *rows, strict=True)
        if ts >= 0
    ]
    finished = finish(readings, channels)
    return encode_readings(finished), len(finished), count_bad(finished)


def channel(name: str, **fields: object) -> ChannelBase:
    return ChannelBase.model_validate({"name": name, "unit": "V", **fields})


def test_a_plain_poll_is_the_reading_way_and_the_gateway_takes_it() -> None:
    channels = [channel(f"ch{k:02d}", interval_s=0.1) for k in range(20)]
    rows: Rows = ([TS] * 10 + [TS + 7] * 10, [k + 0.25 for k in range(19)] + [3], [None] * 20)
    data, count, bad = RowEncoder("dev1", channels).encode(rows)
    assert (data, count, bad) == reference("dev1", channels, rows)
    good, rejected, _ = decode_batch(join_batch("s", "a", 0, [data]), "s", "a")
    assert not rejected
    assert [r["value"] for r in good] == [k + 0.25 for k in range(19)] + [3]


def test_a_poll_of_one_timestamp_is_the_reading_way() -> None:
    # The usual Modbus poll: one request, one timestamp for every channel ('%' in a unit and a
    # tag: the poll's whole format must keep them).
    channels = [channel(f"ch{k:02d}", interval_s=0.1) for k in range(19)]
    channels.append(channel("rh", unit="%RH", tags={"note": "50%"}))
    rows: Rows = ([TS] * 20, [k + 0.25 for k in range(19)] + [-3], [None] * 20)
    encoded = RowEncoder("dev1", channels).encode(rows)
    assert encoded == reference("dev1", channels, rows)
    assert encoded[0].count(b'"ts":%d,' % TS) == 20


MIXED = [
    channel("plain"),
    channel("scaled", scale=0.1, offset=-40.0),
    channel("tagged", tags={"standard": "Z10", "room": "2"}),
    channel("uncertain", uncertainty=Uncertainty(absolute=1e-6, relative=1e-5)),
    channel("nounit", unit=""),
    # Units the wire refuses (config validation stops them; a template must not trust that).
    ChannelBase.model_construct(name="badunit", unit="V\\x"),
    ChannelBase.model_construct(name="longunit", unit="V" * 40),
    channel("scaled_int", scale=2.0),
    channel("percent", unit="%RH", tags={"note": "50%"}),  # '%' in a bytes format
]
VALUES: list[Value] = [
    1.5,
    -7,
    0,
    2**40,
    True,
    False,
    "text",
    "line\nbreak",
    "x" * 300,
    math.nan,
    math.inf,
    -math.inf,
    1e-300,
    1e300,
    None,
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(range(len(MIXED))),
            st.one_of(
                st.sampled_from(VALUES), st.floats(width=32), st.integers(-(2**63), 2**63 - 1)
            ),
            st.sampled_from([None, "ILLEGAL DATA ADDRESS (Modbus exception 2)", "line\nfeed"]),
            st.sampled_from([TS, TS + 1, -1]),
        ),
        max_size=12,
    )
)
def test_any_rows_are_encoded_as_the_reading_way(
    items: list[tuple[int, Value, str | None, int]],
) -> None:
    channels = [
        MIXED[k].model_copy(update={"name": f"{MIXED[k].name}{n}"})
        for n, (k, *_rest) in enumerate(items)
    ]
    rows: Rows = (
        [ts for *_, ts in items],
        [value if reason is None else None for _k, value, reason, _ts in items],
        [reason for _k, _value, reason, _ts in items],
    )
    try:
        expected: tuple[bytes, int, int] | type[Exception] = reference("dev", channels, rows)
    except (ValueError, OverflowError, orjson.JSONEncodeError) as exc:  # out of float range
        expected = type(exc)
    if isinstance(expected, tuple):
        assert RowEncoder("dev", channels).encode(rows) == expected
    else:
        with pytest.raises(expected):
            RowEncoder("dev", channels).encode(rows)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(range(len(MIXED))),
            st.one_of(st.sampled_from(VALUES), st.floats(width=32)),
            # Mostly what takes the row way, sometimes what must not.
            st.sampled_from(["good"] * 8 + ["uncertain", "bad"]),
            st.sampled_from([None] * 8 + [1e-3]),  # the driver's own uncertainty
            st.sampled_from(["", "V", "mV"]),  # the unit the driver read
            st.sampled_from([{}] * 8 + [{"k": "v"}]),
            st.sampled_from([True] * 8 + [False]),  # in the channels' order
        ),
        max_size=6,
    )
)
def test_reading_objects_go_the_row_way_only_when_that_is_the_reading_way(
    items: list[tuple[int, Value, str, float | None, str, dict[str, str], bool]],
) -> None:
    channels = [
        MIXED[k].model_copy(update={"name": f"{MIXED[k].name}{n}"})
        for n, (k, *_rest) in enumerate(items)
    ]

    def readings() -> list[Reading]:
        out = []
        for channel, (_k, value, quality, u, unit, tags, in_order) in zip(
            channels, items, strict=True
        ):
            name = channel.name if in_order else "elsewhere"
            if quality == "bad":
                out.append(Reading.bad("dev", name, TS, unit, "no reply"))
            else:
                out.append(
                    Reading("dev", name, TS, value, unit, Quality(quality), u=u, tags=dict(tags))
                )
        return out

    fast = RowEncoder("dev", channels).encode_readings(readings())
    if fast is None:
        return
    finished = finish(readings(), channels)
    assert fast == (encode_readings(finished), len(finished), count_bad(finished))


def test_a_plain_poll_of_reading_objects_goes_the_row_way() -> None:
    channels = [channel(f"ch{k}") for k in range(3)] + [channel("tagged", tags={"a": "b"})]
    readings = [Reading("dev", c.name, TS, 1.25 * k, "") for k, c in enumerate(channels)]
    fast = RowEncoder("dev", channels).encode_readings(readings)
    assert fast is not None
    assert fast == (encode_readings(finish(readings, channels)), 4, 0)
    readings[1].u = 0.5  # the driver's own uncertainty: finish() combines it
    assert RowEncoder("dev", channels).encode_readings(readings) is None


def test_a_percent_sign_in_a_unit_or_tag_survives_the_whole_poll_way() -> None:
    channels = [channel("rh", unit="%RH", tags={"note": "50%d"}), channel("t", unit="°C")]
    rows: Rows = ([TS, TS], [45.5, 21.25], [None, None])
    data, count, bad = RowEncoder("dev1", channels).encode(rows)
    assert (data, count, bad) == reference("dev1", channels, rows)
    assert b'"unit":"%RH"' in data and b'"note":"50%d"' in data
