"""The wire format: the documented examples validate, and each kind of bad payload is refused
with its reason while the good readings of a batch are kept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.errors import PayloadError
from drivers.config import ChannelBase
from drivers.reading import Quality, Reading
from edge_agent.pipeline import finish
from edge_agent.wire import (
    BATCH,
    AgentStatus,
    InstrumentState,
    Topics,
    decode_metrics,
    encode_reading,
    join_batch,
)
from edge_agent.wire_batches import decode_batch
from edge_agent.wire_marks import mark, put_corrected

DOC = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"
TS = 1_795_438_217_002_076_936


def doc_examples() -> list[dict[str, object]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    return [json.loads(block) for block in blocks]


def test_every_documented_example_validates() -> None:
    batch, letter, status, state, metrics = doc_examples()
    parsed = BATCH.validate_json(json.dumps(batch))
    assert [r["quality"] for r in parsed["readings"]] == ["good", "uncertain", "bad"]
    good, rejected, seq = decode_batch(json.dumps(batch).encode(), "hanoi", "bench-1")
    assert (len(good), rejected, seq) == (3, [], 42)
    assert set(letter) >= {"schema", "topic", "reason", "payload_b64", "payload_bytes", "rejected"}
    AgentStatus.model_validate_json(json.dumps(status))
    InstrumentState.model_validate_json(json.dumps(state))
    decode_metrics(json.dumps(metrics).encode(), "hanoi", "bench-1")


def test_agent_encoding_is_what_the_gateway_accepts() -> None:
    readings = [
        Reading("zener-10v", "voltage", TS, 10.0000047, "V", u=5e-7, tags={"standard": "Z10"}),
        Reading("counter", "events", TS + 1, 12, "1"),
        Reading("relay", "closed", TS + 2, True, ""),
        Reading("dmm", "id", TS + 3, "OVLD", "V", Quality.BAD, "overload"),
        Reading.bad("dmm", "voltage", TS + 4, "V", "no reply within 5 s"),
    ]
    payload = join_batch("hanoi", "bench-1", 7, [encode_reading(r) for r in readings])
    good, rejected, seq = decode_batch(payload, "hanoi", "bench-1")
    assert not rejected
    assert seq == 7
    assert [(r["value"], r["quality"], r.get("reason")) for r in good] == [
        (10.0000047, "good", None),
        (12, "good", None),
        (True, "good", None),
        ("OVLD", "bad", "overload"),
        (None, "bad", "no reply within 5 s"),
    ]
    assert good[0].get("u") == 5e-7 and good[0].get("tags") == {"standard": "Z10"}


def test_a_value_scaled_or_uncertain_out_of_the_float_range_is_bad_not_an_exception() -> None:
    """A relative uncertainty of 1e300 used to raise OverflowError out of finish() (the
    instrument's runner, and the agent, stopped); a scale to infinity reached the wire."""
    channels = [
        ChannelBase(name="rel", unit="V", uncertainty={"relative": 0.01}),
        ChannelBase(name="scaled", unit="V", scale=1e10),
        ChannelBase(name="fine", unit="V", uncertainty={"relative": 0.01}),
    ]
    raw = [
        Reading("dmm", "rel", TS, 1e300, "V"),
        Reading("dmm", "scaled", TS, 1e300, "V"),
        Reading("dmm", "fine", TS, 2.0, "V"),
    ]
    finished = finish(raw, channels)
    payload = join_batch("hanoi", "bench-1", 1, [encode_reading(r) for r in finished])
    good, rejected, _ = decode_batch(payload, "hanoi", "bench-1")
    assert rejected == []
    assert [r["quality"] for r in good] == ["good", "bad", "good"]
    assert good[0]["u"] == pytest.approx(1e298)
    assert "out of range after scaling or uncertainty" in good[1]["reason"]
    assert good[2]["u"] == pytest.approx(0.02)


def test_what_an_instrument_sends_never_gets_a_reading_refused() -> None:
    """The agent makes an instrument's text one line (or the reading bad, saying why), so the
    gateway accepts every reading it publishes."""
    channels = [ChannelBase(name=c, unit="") for c in ("a", "b", "c", "d", "e")]
    raw = [
        Reading("dmm", "a", TS, 1.0, "V", Quality.UNCERTAIN, "no reply\r\nretrying\x00"),
        Reading("dmm", "b", TS, "OVLD\r\n", "V"),
        Reading("dmm", "c", TS, "x" * 300, "V"),
        Reading("dmm", "d", TS, 2.0, "V\n"),
        Reading("dmm", "e", TS, 3.0, "V", Quality.BAD, "r" * 5000),
    ]
    finished = finish(raw, channels)
    payload = join_batch("hanoi", "bench-1", 1, [encode_reading(r) for r in finished])
    good, rejected, _ = decode_batch(payload, "hanoi", "bench-1")
    assert rejected == [] and len(good) == 5
    assert good[0]["reason"] == "no reply\\r\\nretrying\\x00"
    assert (
        good[1]["quality"] == "bad"
        and "string value holds a control character" in good[1]["reason"]
    )
    assert good[2]["quality"] == "bad" and "longer than 256" in good[2]["reason"]
    assert (good[3]["quality"], good[3]["unit"]) == ("bad", "")
    assert "unit from the instrument holds a control character" in good[3]["reason"]
    assert len(good[4]["reason"]) == 1024 and good[4]["reason"].endswith("…")


def test_the_agent_never_encodes_a_non_finite_number() -> None:
    with pytest.raises(ValueError, match="Out of range float values"):
        encode_reading(Reading("a", "b", TS, float("nan"), "V"))


def envelope(readings: list[object], **kw: object) -> bytes:
    body = {"schema": 1, "site": "s", "agent": "a", "seq": 0, "readings": readings} | kw
    return json.dumps(body).encode()


GOOD = {"instrument": "i", "channel": "c", "ts": TS, "value": 1.5, "unit": "V", "quality": "good"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "invalid JSON"),
        (b'{"schema": 1, "site"', "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (envelope([GOOD], schema=2), "unknown schema version 2"),
        (envelope([GOOD], schema="1"), "unknown schema version '1'"),
        (envelope([GOOD], seq=-1), "bad envelope: seq: Input should be greater than or equal to 0"),
        (envelope([GOOD], extra=1), "bad envelope: extra: Extra inputs are not permitted"),
        (envelope([]), "readings must be a non-empty list"),
        (envelope([GOOD], site="other"), "envelope names other/a but was published on s/a"),
    ],
)
def test_unusable_payloads_are_refused_whole(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as error:
        decode_batch(payload, "s", "a")
    assert reason in error.value.reason


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"value": "NaN-token"}, None),
        ({"ts": "1795438217"}, "ts: Input should be a valid integer"),
        ({"ts": 10}, "ts: Input should be greater than or equal to"),
        ({"value": None}, "a reading without a value must have quality 'bad'"),
        ({"quality": "excellent"}, "quality: Input should be 'good', 'uncertain' or 'bad'"),
        ({"unit": "a\\b"}, "unit: holds a backslash (at 1)"),
        ({"u": -1.0}, "u: Input should be greater than or equal to 0"),
        ({"instrument": "a/b"}, "instrument: is not a name"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"tags": {"room": ""}}, "tags.room: String should have at least 1 character"),
        ({"reason": "no reply\r\n"}, "reason: holds a control character (U+000D at 8)"),
        ({"value": "line\nbreak"}, "value: holds a control character (U+000A at 4)"),
        ({"value": "x\u2028"}, "value: holds a control character (U+2028 at 1)"),
        ({"unit": "V\x85"}, "unit: holds a control character (U+0085 at 1)"),
        ({"tags": {"room": "A\n"}}, "tags.room: holds a control character (U+000A at 1)"),
        ({"tags": {"bad key": "A"}}, "tags.bad key.(key): is not a tag key"),
        ({"value": [1]}, "value: unexpected type list"),
        ({"ts": 99999999999999999999}, "ts: Input should be less than or equal to"),
        ({"value": 10**400}, "value: Input should be"),  # not int64, not a finite float
    ],
)
def test_one_bad_reading_is_refused_and_its_neighbours_kept(
    bad: dict[str, object], reason: str | None
) -> None:
    payload = envelope([GOOD, GOOD | bad, GOOD])
    if reason is None:  # NaN is not JSON, so json.dumps cannot write it: put it in by hand
        payload = payload.replace(b'"NaN-token"', b"NaN")
        reason = "value: Input should be a finite number"
    good, rejected, _ = decode_batch(payload, "s", "a")
    assert len(good) == 2
    assert [r.index for r in rejected] == [1]
    assert reason in rejected[0].reason


def test_topics() -> None:
    topics = Topics("lab/etalon")
    assert topics.data("hanoi", "b1") == "lab/etalon/v1/hanoi/b1/data"
    assert topics.parse("lab/etalon/v1/hanoi/b1/data") == ("hanoi", "b1", "data", None)
    assert topics.parse("lab/etalon/v1/hanoi/b1/instruments/z") == (
        "hanoi",
        "b1",
        "instrument",
        "z",
    )
    assert topics.parse(topics.gateway("hanoi", "gw", "metrics")) is None
    assert topics.parse("etalon/v1/hanoi/b1/data") is None
    assert topics.parse("lab/etalon/v1/hanoi/b1/other") is None


def test_mark_keeps_a_bad_reading_bad_and_its_reason_first() -> None:
    good: dict[str, object] = {"quality": "good"}
    bad: dict[str, object] = {"quality": "bad", "reason": "overload", "calibration": 1}
    mark(good, 2, "out of range")
    mark(bad, 2, "out of range")
    assert good == {"quality": "uncertain", "reason": "out of range", "calibration": 2}
    assert bad == {"quality": "bad", "reason": "overload; out of range", "calibration": 3}


def test_put_corrected_writes_the_indexed_readings_and_no_conformity_below_zero() -> None:
    readings: list[dict[str, object]] = [{"value": 1.0}, {"value": 2.0}, {"value": 3.0}]
    put_corrected(readings, [2, 0], [3.5, 1.5], [0.1, 0.2], [7, 8], [-1, 0], {7: "A", 8: "B"})
    assert readings == [
        {"value": 1.0, "corrected": 1.5, "u_corrected": 0.2, "certificate": "B",
         "certificate_id": 8, "conformity": 0},
        {"value": 2.0},
        {"value": 3.0, "corrected": 3.5, "u_corrected": 0.1, "certificate": "A",
         "certificate_id": 7},
    ]  # fmt: skip
