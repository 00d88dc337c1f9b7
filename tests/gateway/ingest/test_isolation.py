"""One message cannot stop, stall or impersonate: whatever it holds, it alone is refused —
dead-lettered with a reason that names the field, counted, acknowledged — and the messages
around it go on. Driven through the real Ingest, spool and record store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import gateway.ingest.ingest
from edge_agent.wire_calibration import encode_calibration
from tests.gateway.ingest.harness import (
    AGENT,
    ROOT,
    SITE,
    TS0,
    IngestRig,
    agent_metrics,
    batch,
    instrument_state,
    reading,
    status,
)
from tests.support.calibration_record import sample_record

NESTED = b"[" * 100_000 + b"]" * 100_000  # ~200 kB, as in the issue


@pytest.fixture
async def rig(tmp_path: Path) -> Any:
    async with IngestRig(tmp_path) as opened:
        yield opened


async def assert_still_ingests(rig: IngestRig, i: int = 99) -> None:
    """A valid batch after the hostile ones is spooled whole."""
    outcome = await rig.send(f"{ROOT}/data", batch(reading(i), reading(i + 1)))
    assert outcome.acked and not outcome.letters
    assert [len(e["readings"]) for e in outcome.entries] == [2]


# -- finding 1: oversize integers, each payload kind ---------------------------------------------


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (
            f"{ROOT}/instruments/dmm-1",
            instrument_state(since=99999999999999999999),
            "bad instrument state: since: Input should be less than or equal to",
        ),
        (
            f"{ROOT}/status",
            status(ts=99999999999999999999),
            "bad status message: ts: Input should be less than or equal to",
        ),
        (
            f"{ROOT}/metrics",
            agent_metrics(ts=-(2**70)),
            "bad metrics message: ts: Input should be greater than or equal to",
        ),
        (f"{ROOT}/data", batch(reading(0), seq=2**64), "bad envelope: seq: Input should be less"),
        (f"{ROOT}/data", batch(reading(0, ts=2**64)), "1 of 1 readings refused"),
    ],
    ids=["instrument-since", "status-ts", "metrics-ts", "data-seq", "data-ts"],
)
async def test_an_oversize_integer_is_refused_and_ingest_goes_on(
    rig: IngestRig, topic: str, payload: bytes, reason: str
) -> None:
    outcome = await rig.send(topic, payload, retain=True)
    assert outcome.acked
    assert len(outcome.letters) == 1 and reason in outcome.letters[0]["reason"]
    assert len(outcome.rows) == 1 and reason in outcome.rows[0]["reason"]
    assert rig.metrics.payloads_deadlettered == 1
    await assert_still_ingests(rig)


# -- finding 2: deeply nested JSON ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["data", "status", "metrics", "instruments/dmm-1"])
async def test_deeply_nested_json_is_refused_and_acknowledged(rig: IngestRig, kind: str) -> None:
    for _ in range(30):  # beyond a broker's in-flight window (Mosquitto: 20)
        rig.deliver(f"{ROOT}/{kind}", NESTED)
    await rig.settle()
    assert len(rig.link.acked) == 30
    rows = await rig.query("SELECT reason FROM deadletters")
    assert len(rows) == 30
    assert all("recursion limit exceeded" in r["reason"] for r in rows), rows[0]
    await assert_still_ingests(rig)


# -- finding 4: control characters, each string field -------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"reason": "no reply\r\nfrom the DMM"}, "reason: holds a control character (U+000D"),
        ({"value": "OVLD\r\n"}, "value: holds a control character (U+000D at 4)"),
        ({"unit": "V\n"}, "unit: holds a control character (U+000A at 1)"),
        ({"tags": {"room": "A\nB"}}, "tags.room: holds a control character (U+000A at 1)"),
        ({"tags": {"ro\nom": "A"}}, "tags.ro\\nom.(key): is not a tag key"),
        ({"channel": "volt\nage"}, "channel: is not a name"),
        ({"instrument": "dmm\r1"}, "instrument: is not a name"),
        ({"reason": "page\u2028break"}, "reason: holds a control character (U+2028 at 4)"),
        ({"reason": "next\x85line"}, "reason: holds a control character (U+0085 at 4)"),
    ],
)
async def test_a_control_character_refuses_its_reading_alone(
    rig: IngestRig, override: dict[str, Any], expected: str
) -> None:
    readings = [reading(i) for i in range(500)]
    readings[250] = reading(250, **override)
    outcome = await rig.send(f"{ROOT}/data", batch(*readings))
    assert outcome.acked
    (letter,) = outcome.letters
    assert letter["reason"] == "1 of 500 readings refused"
    (rejected,) = letter["rejected"]
    assert rejected["index"] == 250
    assert rejected["reason"].startswith(expected), rejected["reason"]
    (entry,) = outcome.entries
    assert len(entry["readings"]) == 499
    assert 250 not in {(r["ts"] - TS0) // 10**9 for r in entry["readings"]}


@pytest.mark.parametrize(
    ("topic", "payload", "field"),
    [
        (f"{ROOT}/status", status(reason="lost\r\nSubject: x"), "reason"),
        (f"{ROOT}/status", status(version="1.0\n"), "version"),
        (
            f"{ROOT}/status",
            status(
                instruments=[
                    {
                        "name": "dmm-1",
                        "protocol": "visa",
                        "identity": {"model": "3458A\r\n"},
                        "channels": [],
                    }
                ]
            ),
            "instruments.0.identity.model",
        ),
        (
            f"{ROOT}/status",
            status(
                instruments=[
                    {
                        "name": "dmm-1",
                        "protocol": "visa",
                        "channels": [{"name": "v", "unit": "V\r", "interval_s": 1.0}],
                    }
                ]
            ),
            "instruments.0.channels.0.unit",
        ),
        (f"{ROOT}/instruments/dmm-1", instrument_state(reason="timeout\r\n"), "reason"),
    ],
    ids=["status-reason", "status-version", "identity", "catalogue-unit", "instrument-reason"],
)
async def test_a_control_character_refuses_a_status_naming_the_field(
    rig: IngestRig, topic: str, payload: bytes, field: str
) -> None:
    outcome = await rig.send(topic, payload, retain=True)
    assert outcome.acked
    (letter,) = outcome.letters
    assert f"{field}: holds a control character" in letter["reason"], letter["reason"]
    assert await rig.query("SELECT * FROM agents") == []
    assert await rig.query("SELECT * FROM instrument_states") == []


# -- status spoofing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (f"{ROOT}/status", status(agent="bench-2")),
        (f"{ROOT}/status", status(site="lab-2")),
        (f"{ROOT}/metrics", agent_metrics(agent="bench-2")),
        (f"{ROOT}/data", batch(reading(0), agent="bench-2")),
    ],
    ids=["status-agent", "status-site", "metrics", "data"],
)
async def test_a_body_naming_another_agent_is_refused_as_spoofed(
    rig: IngestRig, topic: str, payload: bytes
) -> None:
    outcome = await rig.send(topic, payload, retain=True)
    assert outcome.acked
    (letter,) = outcome.letters
    assert f"was published on {SITE}/{AGENT}" in letter["reason"]
    assert rig.metrics.payloads_spoofed == 1
    assert outcome.entries == []
    assert await rig.query("SELECT * FROM agents") == []


async def test_topic_levels_must_be_names(rig: IngestRig) -> None:
    for topic in (
        f"etalon/v1/{SITE}/bench 1/status",
        f"etalon/v1/{SITE}/{'x' * 65}/data",
        f"{ROOT}/instruments/dmm\n1",
        f"etalon/v1/la\u2028b/{AGENT}/metrics",
    ):
        outcome = await rig.send(topic, status())
        assert outcome.acked
        assert "is not a name" in outcome.letters[0]["reason"]
    assert await rig.query("SELECT * FROM agents") == []


# -- a record that fails, and any exception whatever its type -------------------------------------


async def test_a_record_that_fails_is_refused_alone_and_the_others_commit(rig: IngestRig) -> None:
    # The record store refuses one instrument's row (a real SQLite failure, for this one only).
    await rig.records.run(
        lambda db: db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON instrument_states "
            "WHEN NEW.instrument = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
        )
    )
    rig.deliver(f"{ROOT}/instruments/dmm-1", instrument_state())
    rig.deliver(f"{ROOT}/instruments/poison", instrument_state())
    rig.deliver(f"{ROOT}/data", batch(reading(0)))
    rig.deliver(f"{ROOT}/instruments/dmm-2", instrument_state(state="connected"))
    await rig.settle()
    assert rig.link.acked == [1, 2, 3, 4]
    assert [len(e["readings"]) for e in await rig.new_entries()] == [1]
    states = await rig.query("SELECT instrument, state FROM instrument_states ORDER BY 1")
    assert states == [
        {"instrument": "dmm-1", "state": "unavailable"},
        {"instrument": "dmm-2", "state": "connected"},
    ]
    (row,) = await rig.query("SELECT topic, reason FROM deadletters")
    assert row["topic"] == f"{ROOT}/instruments/poison"
    assert row["reason"] == "could not be recorded: IntegrityError: poisoned"
    assert rig.metrics.records_failed == 1 and rig.metrics.payloads_deadlettered == 1
    await assert_still_ingests(rig)


async def test_a_calibration_whose_record_fails_is_stored_when_sent_again(rig: IngestRig) -> None:
    record = sample_record(site=SITE, agent=AGENT)
    payload = encode_calibration(record)
    await rig.records.run(
        lambda db: db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON calibrations BEGIN "
            "SELECT RAISE(ABORT, 'disk trouble'); END"
        )
    )
    failed = await rig.send(f"{ROOT}/calibrations", payload)
    assert failed.acked and "could not be recorded" in failed.rows[0]["reason"]
    assert rig.metrics.calibrations_received == 0
    await rig.records.run(lambda db: db.execute("DROP TRIGGER poison"))
    again = await rig.send(f"{ROOT}/calibrations", payload)  # the bench sends it again
    assert again.acked and again.rows == []
    assert [r["run"] for r in await rig.query("SELECT run FROM calibrations")] == [record.run]
    assert rig.metrics.calibrations_received == 1 and rig.metrics.calibrations_duplicate == 0


@pytest.mark.parametrize(
    "error", [RecursionError, OverflowError, TypeError, KeyError, UnicodeDecodeError]
)
async def test_any_exception_while_handling_a_message_refuses_it_alone(
    rig: IngestRig, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    # A fault no check foresaw, of any type, for status messages only.
    def broken(*_args: Any) -> Any:
        if error is UnicodeDecodeError:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        raise error("injected")

    monkeypatch.setattr(gateway.ingest.ingest, "decode_status", broken)
    outcome = await rig.send(f"{ROOT}/status", status())
    assert outcome.acked
    (letter,) = outcome.letters
    assert letter["reason"].startswith(f"could not handle the message: {error.__name__}")
    assert rig.metrics.ingest_errors == 1
    await assert_still_ingests(rig)


async def test_a_flood_of_one_fault_is_logged_once(
    rig: IngestRig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="etalon.gateway"):
        for _ in range(200):
            rig.deliver(f"{ROOT}/data", NESTED[:2000] + NESTED[-2000:])
        rig.deliver(f"{ROOT}/status", status(agent="intruder"))
        await rig.settle()
    refused = [r for r in caplog.records if r.getMessage() == "payload refused"]
    assert [r.__dict__["cause"] for r in refused] == [
        "invalid JSON",
        "envelope names another agent than its topic",
    ]
    assert rig.metrics.payloads_deadlettered == 201
