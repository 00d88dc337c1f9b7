"""The calibration record on the wire: the documented example decodes, a record survives encode →
decode with its hash, the topic is an agent topic, and a hostile envelope is refused with the
reason (the gateway dead-letters it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import PayloadError
from edge_agent.wire import Topics
from edge_agent.wire_calibration import CalibrationMessage, decode_calibration, encode_calibration
from metrology.certificate.record import canonical_bytes, record_sha256
from tests.support.calibration_record import sample_record

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "wire-calibration.json"


def test_the_documented_example_decodes() -> None:
    record, digest = decode_calibration(EXAMPLE.read_bytes(), "hanoi", "dc-bench-1-cal")
    assert digest == json.loads(EXAMPLE.read_text())["sha256"] == record_sha256(record)
    assert record.run == "20261120-020000-ab12" and len(record.points) == 4


def test_a_record_survives_the_wire_with_its_hash() -> None:
    record = sample_record(site="lab-2", agent="bench-9-cal")
    payload = encode_calibration(record)
    assert canonical_bytes(record) in payload  # embedded as it is
    decoded, digest = decode_calibration(payload, "lab-2", "bench-9-cal")
    assert digest == record_sha256(record) and decoded == record
    assert Topics().parse("etalon/v1/lab-2/bench-9-cal/calibrations") == (
        "lab-2", "bench-9-cal", "calibrations", None,
    )  # fmt: skip
    assert (
        Topics().calibrations("lab-2", "bench-9-cal") == "etalon/v1/lab-2/bench-9-cal/calibrations"
    )
    assert CalibrationMessage.model_json_schema(by_alias=True)["additionalProperties"] is False


def _message(**changes: Any) -> bytes:
    data = json.loads(encode_calibration(sample_record()))
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_message(extra=1), "bad envelope: unknown keys ['extra']"),
        (_message(run=7), "bad envelope: run must be a string"),
        (_message(run="20261120-020000-zz99"), "the record names hanoi/dc-bench-1-cal run "
         "20261120-020000-ab12, the envelope hanoi/dc-bench-1-cal run 20261120-020000-zz99"),
        (_message(sha256="0" * 64), "the record's SHA-256 is"),
        (_message(sha256="not-a-hash"), "bad envelope: sha256: String should match pattern"),
        (_message(schema=1.0), "unknown schema version 1.0"),
        (_message(record=[]), "record must be a JSON object"),
        (b'{"schema": 1, "record": {}}', "bad envelope: site must be a string"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    ],
)  # fmt: skip
def test_a_hostile_message_is_refused_with_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as refused:
        decode_calibration(payload, "hanoi", "dc-bench-1-cal")
    assert reason in refused.value.reason


def test_a_record_for_another_site_on_this_topic_is_refused() -> None:
    data = json.loads(encode_calibration(sample_record(site="elsewhere")))
    data["site"] = "hanoi"
    with pytest.raises(PayloadError, match="the record names elsewhere/dc-bench-1-cal"):
        decode_calibration(json.dumps(data).encode(), "hanoi", "dc-bench-1-cal")
