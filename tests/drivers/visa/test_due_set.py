"""The reading a reply makes: the short way for common replies gives what the parser gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ProtocolError
from drivers.reading import Quality, Reading
from drivers.visa.config import VisaChannel
from drivers.visa.due_set import PlannedChannel, make_reading
from drivers.visa.profiles import Measurement, parse_reply

MEASUREMENTS = [
    Measurement(query="READ?", unit="V"),
    Measurement(query="READ?", unit="V", overload_at=None),
    Measurement(query="READ?", unit="V", overload_at=100.0),
    Measurement(query="READ?", unit="V", overload_at=-1.0),
    Measurement(query="READ?", unit="°C", parse="number_with_unit", reply_unit="C"),
    Measurement(query="READ?", unit="Ω", parse="number_with_unit", reply_unit="ohm"),
    Measurement(query="READ?", unit="V", parse="values"),
    Measurement(query="READ?", unit="V", parse="mean"),
]
TOKENS = ["9.9E37", "99.5", "-99", "1e2", "nan", "-inf", "1e999", "1_0", " C", "c", "OHM", "K"]


def _expected(reply: str, measurement: Measurement, index: int | None) -> Reading:
    """What the reply makes by the parser alone (the way every reply went before the short way)."""
    parsed = parse_reply(reply, measurement, index)
    if parsed.value is None:
        return Reading.bad("dmm", "v", 7, measurement.unit, parsed.problem or "no value")
    return Reading("dmm", "v", 7, parsed.value, measurement.unit, Quality.GOOD, u=parsed.u)


replies = st.one_of(
    st.text(max_size=60),
    st.lists(
        st.floats().map(repr) | st.sampled_from(TOKENS) | st.integers().map(str), max_size=4
    ).map(lambda parts: " ".join(parts) if len(parts) == 2 else ",".join(parts)),
    st.tuples(st.sampled_from(["", " ", "\t", "+", "-"]), st.floats().map(repr)).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(replies, st.sampled_from(MEASUREMENTS), st.none() | st.integers(0, 3))
def test_a_reply_makes_the_reading_the_parser_says(
    reply: str, measurement: Measurement, index: int | None
) -> None:
    planned = PlannedChannel(
        VisaChannel(name="v", unit="V", measurement="m", index=index), 0, measurement
    )
    assert make_reading("dmm", planned, 7, reply, []) == _expected(reply, measurement, index)


@pytest.mark.parametrize(
    ("reply", "measurement", "reason"),
    [
        ("+9.90000000E+37", MEASUREMENTS[0], "overload (reply '+9.90000000E+37')"),
        ("NaN", MEASUREMENTS[0], "unparseable reply 'NaN'"),
        ("1e999", MEASUREMENTS[1], "unparseable reply '1e999'"),
        ("100", MEASUREMENTS[2], "overload (reply '100')"),
        ("0", MEASUREMENTS[3], "overload (reply '0')"),
        ("296.15 K", MEASUREMENTS[4], "reply in unit 'K', expected 'C'"),
        ("23.1", MEASUREMENTS[4], "unparseable reply '23.1'"),
    ],
)
def test_hostile_replies_keep_their_reason(
    reply: str, measurement: Measurement, reason: str
) -> None:
    planned = PlannedChannel(VisaChannel(name="v", unit="V", measurement="m"), 0, measurement)
    reading = make_reading("dmm", planned, 7, reply, [])
    assert (reading.value, reading.quality, reading.reason) == (None, Quality.BAD, reason)


def test_common_replies_are_good() -> None:
    for reply, measurement, value in [
        ("+1.00000080E+01\r", MEASUREMENTS[0], 10.0000080),
        ("  -0.5", MEASUREMENTS[1], -0.5),
        ("23.000120 c", MEASUREMENTS[4], 23.000120),
        ("100.0123,OHM", MEASUREMENTS[5], 100.0123),
    ]:
        planned = PlannedChannel(VisaChannel(name="v", unit="V", measurement="m"), 0, measurement)
        reading = make_reading("dmm", planned, 7, reply, [])
        assert reading.value == pytest.approx(value)
        assert (reading.quality, reading.unit) == (Quality.GOOD, measurement.unit)


def test_errors_and_undecodable_replies_win_over_the_value() -> None:
    planned = PlannedChannel(VisaChannel(name="v", unit="V", measurement="m"), 0, MEASUREMENTS[0])
    errored = make_reading("dmm", planned, 7, "1.0", ['-222,"Data out of range"'])
    assert errored.reason == 'instrument error: -222,"Data out of range"'
    garbled = make_reading("dmm", planned, 7, ProtocolError("dmm", "reply is not ascii"), [])
    assert (garbled.value, garbled.reason) == (None, "reply is not ascii")


@pytest.mark.parametrize(
    ("reply", "overload_at", "reason"),
    [
        ("8.987E307,8.99E307", 9.9e37, "overload (reply '8.987E307,8.99E307')"),  # the property's
        ("1.7E308,1.7E308", None, "unparseable reply '1.7E308,1.7E308'"),  # the sum is not finite
    ],
)
def test_a_mean_too_large_for_a_float_is_refused_with_a_reason(
    reply: str, overload_at: float | None, reason: str
) -> None:
    mean = Measurement(query="READ?", parse="mean", unit="V", overload_at=overload_at)
    planned = PlannedChannel(VisaChannel(name="v", unit="V", measurement="m"), 0, mean)
    reading = make_reading("dmm", planned, 7, reply, [])
    assert (reading.value, reading.quality, reading.reason) == (None, Quality.BAD, reason)
