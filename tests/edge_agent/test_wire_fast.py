"""The data decoder's fast path (one msgspec parse) against its reference (pydantic, reading by
reading): the fast path may give up on a payload, never accept one the reference refuses or
return other values. Hostile payloads are written with raw UTF-8 (``ensure_ascii=False``) so
that DEL, C1 controls, line separators and long non-ASCII text reach the fast path unescaped."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import PayloadError
from drivers.reading import Quality, Reading
from edge_agent import wire_batches
from edge_agent.wire import encode_reading, join_batch
from edge_agent.wire_batches import _fast, _salvage, decode_batch, decode_data
from tests.gateway.ingest.harness import AGENT, SITE, TS0
from tests.gateway.ingest.strategies import Raw, data_case, dumps


def raw_dumps(value: Any) -> bytes:
    """JSON with non-ASCII characters unescaped and :class:`Raw` tokens spliced in."""
    return dumps(value, ensure_ascii=False)


def typed(value: Any) -> Any:
    """``value`` with every scalar's type beside it (1, 1.0 and True compare equal)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def agree(payload: bytes) -> bool:
    """Assert the two paths agree on ``payload``; True if the fast path took it."""
    fast = _fast(payload, SITE, AGENT)
    try:
        reference: Any = _salvage(payload, SITE, AGENT)
    except PayloadError as exc:
        reference = exc
    if fast is None:
        return False
    assert not isinstance(reference, PayloadError), reference.reason
    good, rejected, seq = reference
    assert not rejected, [r.reason for r in rejected]
    assert typed(fast.dicts()) == typed(good)
    assert fast.seq == seq
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data_case(TS0), st.booleans())
def test_the_fast_path_never_accepts_what_the_reference_refuses(case: Any, raw: bool) -> None:
    payload = raw_dumps(case.body) if raw and case.body is not None else case.payload
    agree(payload)


TRICKY: list[tuple[str, Any]] = [
    ("unit", "\x7f"),
    ("unit", "a\x85b"),
    ("unit", "\u2028"),
    ("unit", "é" * 32),
    ("unit", "😀" * 33),
    ("unit", ""),
    ("reason", "ends\u2029"),
    ("reason", "ü" * 1025),
    ("reason", None),
    ("value", "\x9b"),
    ("value", "ñ" * 257),
    ("value", 2**63),
    ("value", -(2**63) - 1),
    ("value", 2**63 - 1),
    ("value", None),
    ("value", Raw("1e400")),
    ("value", Raw("1e-400")),
    ("value", Raw("-0")),
    ("ts", Raw("1.79e18")),
    ("ts", True),
    ("u", -1.0),
    ("u", Raw("-0.0")),
    ("u", 3),
    ("u", True),
    ("instrument", "dmm-1\n"),
    ("instrument", "x" * 65),
    ("instrument", "ñ"),
    ("instrument", ""),
    ("channel", "a b"),
    ("quality", "GOOD"),
    ("tags", {"room": "\x7f"}),
    ("tags", {"room": ""}),
    ("tags", {"1room": "A"}),
    ("tags", {f"k{i}": "v" for i in range(17)}),
    ("tags", {"room": "ø" * 129}),
    ("extra", 1),
]


@pytest.mark.parametrize(("field", "value"), TRICKY, ids=[f"{f}={v!r:.20}" for f, v in TRICKY])
def test_tricky_values_are_judged_alike(field: str, value: Any) -> None:
    body = {
        "schema": 1,
        "site": SITE,
        "agent": AGENT,
        "seq": 3,
        "readings": [
            {
                "instrument": "dmm-1",
                "channel": "v",
                "ts": TS0,
                "value": 1.5,
                "unit": "°C",
                "quality": "good",
            }
        ],
    }
    body["readings"][0][field] = value
    agree(raw_dumps(body))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"schema":1,"site":"lab-1","agent":"bench-1","seq":0,"seq":-1,"readings":[]}',
        b'{"schema":true,"site":"lab-1","agent":"bench-1","seq":0,"readings":[]}',
        b'{"schema":1.0,"site":"lab-1","agent":"bench-1","seq":0,"readings":[]}',
        b"\xef\xbb\xbf{}",
    ],
)
def test_envelope_oddities_are_judged_alike(payload: bytes) -> None:
    agree(payload)


def test_what_agents_send_takes_the_fast_path() -> None:
    """The fast path is the one agents' batches take, units in °C and reasons included; a
    payload it leaves (an escaped quote in a reason) is still decoded the same."""
    readings = [
        Reading("bath-1", "temperature", TS0, 25.0012, "°C", u=0.002, tags={"room": "Hà Nội"}),
        Reading("counter", "events", TS0 + 1, 12, "1"),
        Reading("relay", "closed", TS0 + 2, True, ""),
        Reading("dmm", "id", TS0 + 3, "OVLD", "V", Quality.BAD, "quá tải"),
        Reading.bad("dmm", "voltage", TS0 + 4, "V", "no reply within 5 s"),
    ]
    payload = join_batch(SITE, AGENT, 7, [encode_reading(r) for r in readings])
    assert agree(payload)
    assert agree(payload.replace("°C".encode(), b"K"))
    quoted = payload.replace(b"no reply", b'no \\"reply\\"')
    assert not agree(quoted)
    good, rejected, seq = decode_batch(quoted, SITE, AGENT)
    assert (len(good), rejected, seq) == (5, [], 7)
    assert good[4]["reason"] == 'no "reply" within 5 s'


def test_a_batch_in_the_agents_previous_order_hands_out_that_order() -> None:
    """Batches of the same channels in the same order share one ChannelOrder (what the
    corrector recognises them by); another order, or another agent, gets its own; a bad name in
    a new order still sends the batch to the salvaging path."""

    def payload(channels: list[str], agent: str = AGENT) -> bytes:
        readings = [Reading("dmm", c, TS0 + i, 1.5, "V") for i, c in enumerate(channels)]
        return join_batch(SITE, agent, 0, [encode_reading(r) for r in readings])

    first = decode_data(payload(["a", "b", "c"]), SITE, AGENT).order
    again = decode_data(payload(["a", "b", "c"]), SITE, AGENT).order
    assert first is not None and again is first
    assert (first.instruments, first.channels) == (["dmm"] * 3, ["a", "b", "c"])
    other = decode_data(payload(["a", "c", "b"]), SITE, AGENT).order
    assert other is not None and other is not first and other.channels == ["a", "c", "b"]
    elsewhere = decode_data(payload(["a", "c", "b"], "agent-2"), SITE, "agent-2").order
    assert elsewhere is not other
    assert _fast(payload(["a", "c", "b", "bad name"]), SITE, AGENT) is None
    salvaged = decode_data(payload(["a", "bad name"]), SITE, AGENT)
    assert salvaged.order is None and len(salvaged.rows) == 1 and len(salvaged.rejected) == 1


def test_the_remembered_orders_hold_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """However many agents send, the orders kept hold at most the bound's readings: the
    agents seen longest ago are forgotten first (their next batch is checked again)."""
    monkeypatch.setattr(wire_batches, "_orders", {})
    monkeypatch.setattr(wire_batches, "_orders_held", [0])
    monkeypatch.setattr(wire_batches, "_ORDERS_MAX_READINGS", 10)

    def send(agent: str, count: int) -> Any:
        readings = [Reading("dmm", f"c{i}", TS0 + i, 1.5, "V") for i in range(count)]
        payload = join_batch(SITE, agent, 0, [encode_reading(r) for r in readings])
        return decode_data(payload, SITE, agent).order

    first = send("a1", 4)
    assert send("a1", 4) is first
    send("a2", 4)
    send("a3", 4)  # 12 readings: a1's order is forgotten
    assert list(wire_batches._orders) == [(SITE, "a2"), (SITE, "a3")]
    assert wire_batches._orders_held == [8]
    again = send("a1", 4)
    assert again is not first and again is not None
    assert list(wire_batches._orders) == [(SITE, "a3"), (SITE, "a1")]
    big = send("a4", 11)  # larger than the bound alone: decoded, not kept, nothing forgotten
    assert big is not None and list(wire_batches._orders) == [(SITE, "a3"), (SITE, "a1")]
    assert wire_batches._orders_held == [8]
    assert send("a3", 4) is not None  # a3 seen again, in the order it had: now the newest
    assert list(wire_batches._orders) == [(SITE, "a1"), (SITE, "a3")]
    send("a5", 4)  # a1, seen longest ago, is forgotten (not a3, remembered before it)
    assert list(wire_batches._orders) == [(SITE, "a3"), (SITE, "a5")]
    assert wire_batches._orders_held == [8]
