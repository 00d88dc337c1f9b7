"""Hypothesis strategies for every payload kind and topic the gateway ingests.

Structure-aware: a valid envelope (a batch, a status, an instrument state, a metrics message)
with one field replaced by a hostile value — huge integers, control characters, deep nesting,
NaN/Infinity tokens, wrong types, giant strings, lone surrogates — each tagged with what the
gateway must do with it (refuse it for sure, or anything but crash); plus hostile topics and raw
bytes. Valid text includes unicode oddities (right-to-left marks, zero-width joiners, emoji,
combining marks), which must be accepted and kept as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from tests.gateway.ingest.harness import AGENT, ROOT, SITE

TS_MIN, TS_MAX = 946_684_800_000_000_000, 7_258_118_400_000_000_000
INT64 = 2**63

Expect = Literal["refused", "any"]
"""``refused``: the gateway must refuse it; ``any``: it must only not crash or stall."""


@dataclass(frozen=True)
class Raw:
    """A JSON token written as it is (NaN, Infinity, 1e400, [[[...]]])."""

    text: str


@dataclass(frozen=True)
class Hostile:
    """A hostile value, what the gateway must do with it, and whether it breaks the JSON of the
    whole payload (then the payload is refused whole, not one reading)."""

    value: Any
    expect: Expect
    breaks_json: bool = False
    what: str = ""


@dataclass(frozen=True)
class Case:
    """One message: topic, payload, and what must happen."""

    topic: str
    payload: bytes
    kind: str
    expect: Expect | Literal["valid"]
    whole: bool = True
    """For data: the hostile value refuses the whole payload (else only ``bad_index``)."""
    bad_index: int | None = None
    body: Any = None


def dumps(value: Any, *, ensure_ascii: bool = True) -> bytes:
    """JSON of ``value`` with the :class:`Raw` tokens spliced in; ``ensure_ascii=False`` leaves
    non-ASCII characters as they are (lone surrogates too, as a hostile sender could)."""
    raws: list[str] = []

    def placeholder(obj: Any) -> str:
        if isinstance(obj, Raw):
            raws.append(obj.text)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=placeholder, ensure_ascii=ensure_ascii)
    for index, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{index}\x00"), raw, 1)
    return text.encode("utf-8", "surrogatepass")


# -- valid values ----------------------------------------------------------------------------

_FORBIDDEN = "\u2028\u2029"
# Printable text, unicode oddities included (no controls C0/C1, no surrogates).
free_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=_FORBIDDEN)
    | st.sampled_from(["\u200f", "\u200d", "\ufeff", "\u0301", "🜲", "Ω", "µ", "°", "đ"]),
    max_size=40,
)
plain_text = free_text.map(lambda s: s.replace("\\", "/"))
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
tag_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True)
timestamps = st.integers(TS_MIN, TS_MAX)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-INT64, INT64 - 1),
    st.booleans(),
    free_text,
)


@st.composite
def valid_reading(draw: st.DrawFn, ts: int) -> dict[str, Any]:
    """A valid reading stamped ``ts``."""
    quality = draw(st.sampled_from(["good", "uncertain", "bad"]))
    value = draw(st.none() | values) if quality == "bad" else draw(values)
    body: dict[str, Any] = {
        "instrument": draw(names),
        "channel": draw(names),
        "ts": ts,
        "value": value,
        "unit": draw(plain_text.map(lambda s: s[:32])),
        "quality": quality,
    }
    if draw(st.booleans()):
        body["reason"] = draw(free_text)
    if draw(st.booleans()):
        body["u"] = draw(st.floats(0, 1e6))
    if draw(st.booleans()):
        body["tags"] = draw(
            st.dictionaries(tag_keys, plain_text.filter(bool).map(lambda s: s[:128]), max_size=4)
        )
    return body


# -- hostile values, by the kind of field they go in ------------------------------------------

huge_ints = st.one_of(
    st.integers(min_value=INT64),
    st.integers(max_value=-INT64 - 1),
    st.integers(19, 4000).map(lambda k: 10**k),
)
controls = st.sampled_from([*map(chr, range(0x20)), "\x7f", "\x85", "\x9b", "\u2028", "\u2029"])
control_text = st.builds(lambda a, c, b: a + c + b, free_text, controls, free_text)
giant_text = st.integers(1025, 200_000).map(lambda n: "x" * n)
deep = st.integers(300, 60_000).map(lambda n: Raw("[" * n + "]" * n))
tokens = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]).map(Raw)
surrogates = st.sampled_from(["\ud800", "a\udfffb", "\udbff\ud800"])
nested = st.recursive(
    st.integers() | st.text(max_size=3), lambda c: st.lists(c, max_size=3), max_leaves=8
)


def _h(expect: Expect, what: str, breaks: bool = False) -> Any:
    return lambda v: Hostile(v, expect, breaks, what)


def hostile_for(field: str) -> st.SearchStrategy[Hostile]:
    """Hostile values for one kind of field, each tagged with what must happen."""
    breaking = st.one_of(
        deep.map(_h("refused", "deep nesting", True)),
        surrogates.map(_h("refused", "lone surrogate", True)),
    )
    if field in ("int", "ts"):  # strict integers in a range
        return st.one_of(
            breaking,
            huge_ints.map(_h("refused", "huge integer")),
            tokens.map(_h("refused", "non-finite token")),
            st.sampled_from([None, True, 1.5, "1", [1], {}]).map(_h("refused", "wrong type")),
            control_text.map(_h("refused", "text")),
        )
    if field == "value":  # float | int64 | bool | text ≤ 256 | null
        return st.one_of(
            breaking,
            control_text.map(_h("refused", "control character")),
            giant_text.map(_h("refused", "giant string")),
            tokens.map(_h("refused", "non-finite token")),
            st.sampled_from([[1], {"a": 1}, []]).map(_h("refused", "wrong type")),
            nested.filter(lambda v: isinstance(v, list)).map(_h("refused", "nested list")),
            huge_ints.map(_h("any", "huge integer")),  # read as a float when it fits one
        )
    if field in ("text", "plain", "name"):  # strings with bounds (a name also a pattern)
        return st.one_of(
            breaking,
            control_text.map(_h("refused", "control character")),
            giant_text.map(_h("refused", "giant string")),
            st.sampled_from([1, 1.5, True, [1], {}]).map(_h("refused", "wrong type")),
            huge_ints.map(_h("refused", "huge integer")),
        )
    raise ValueError(field)


# -- messages ----------------------------------------------------------------------------------

READING_FIELDS = {
    "instrument": "name",
    "channel": "name",
    "ts": "ts",
    "value": "value",
    "unit": "plain",
    "reason": "text",
    "quality": "text",
}


@st.composite
def data_case(draw: st.DrawFn, base_ts: int) -> Case:
    """A batch of 1–20 readings, valid or with one hostile field (in a reading or the
    envelope)."""
    count = draw(st.integers(1, 20))
    readings = [draw(valid_reading(base_ts + i)) for i in range(count)]
    body: dict[str, Any] = {
        "schema": 1,
        "site": SITE,
        "agent": AGENT,
        "seq": draw(st.integers(0, INT64 - 1)),
        "readings": readings,
    }
    where = draw(st.sampled_from(["none", "reading", "reading", "envelope"]))
    if where == "none":
        return Case(f"{ROOT}/data", dumps(body), "data", "valid", body=body)
    if where == "envelope":
        field = draw(st.sampled_from(["seq", "schema", "site", "agent", "readings"]))
        kind = {"seq": "int", "schema": "int", "site": "name", "agent": "name"}.get(field, "text")
        hostile = draw(hostile_for(kind))
        body[field] = hostile.value
        return Case(f"{ROOT}/data", dumps(body), "data", hostile.expect, True, body=body)
    index = draw(st.integers(0, count - 1))
    field = draw(st.sampled_from([*sorted(READING_FIELDS), "tags"]))
    hostile = draw(hostile_for(READING_FIELDS.get(field, "plain")))
    if field == "tags":
        readings[index]["tags"] = {"room": hostile.value}
    else:
        readings[index][field] = hostile.value
    return Case(
        f"{ROOT}/data", dumps(body), "data", hostile.expect, hostile.breaks_json, index, body
    )


@st.composite
def status_case(draw: st.DrawFn) -> Case:
    """A birth message, valid or with one hostile field (envelope, clock, catalogue)."""
    body: dict[str, Any] = {
        "schema": 1,
        "state": draw(st.sampled_from(["online", "offline"])),
        "site": SITE,
        "agent": AGENT,
        "version": draw(plain_text.map(lambda s: s[:64])),
        "ts": draw(timestamps),
        "reason": draw(st.none() | free_text),
        "clock": {"source": "system", "synchronized": draw(st.booleans()), "steps": 0},
        "instruments": [
            {
                "name": draw(names),
                "protocol": "visa",
                "identity": {"model": draw(free_text)},
                "channels": [
                    {
                        "name": draw(names),
                        "unit": draw(plain_text.map(lambda s: s[:32])),
                        "interval_s": draw(st.floats(0.001, 86_400)),
                        "tags": {"room": "A"},
                    }
                ],
            }
        ],
    }
    if draw(st.booleans()):
        return Case(f"{ROOT}/status", dumps(body), "status", "valid", body=body)
    target = draw(
        st.sampled_from(
            ["ts", "version", "reason", "site", "clock", "identity", "unit", "channel", "tag"]
        )
    )
    kinds = {"ts": "int", "version": "plain", "reason": "text", "site": "name", "clock": "value"}
    hostile = draw(hostile_for(kinds.get(target, "plain" if target != "channel" else "name")))
    instrument = body["instruments"][0]
    if target == "clock":  # a clock value may be a number, a boolean, short text or null
        body["clock"]["steps"] = hostile.value
    elif target == "identity":
        instrument["identity"]["model"] = hostile.value
    elif target == "unit":
        instrument["channels"][0]["unit"] = hostile.value
    elif target == "channel":
        instrument["channels"][0]["name"] = hostile.value
    elif target == "tag":
        instrument["channels"][0]["tags"]["room"] = hostile.value
    else:
        body[target] = hostile.value
        if target == "ts" and hostile.value is None:  # the will has no ts
            hostile = Hostile(None, "any")
    return Case(f"{ROOT}/status", dumps(body), "status", hostile.expect, body=body)


@st.composite
def instrument_case(draw: st.DrawFn) -> Case:
    """An instrument state, valid or with one hostile field."""
    name = draw(names)
    body: dict[str, Any] = {
        "schema": 1,
        "state": draw(st.sampled_from(["connected", "unavailable"])),
        "since": draw(timestamps),
        "reason": draw(st.none() | free_text),
    }
    topic = f"{ROOT}/instruments/{name}"
    if draw(st.booleans()):
        return Case(topic, dumps(body), "instrument", "valid", body=body)
    target = draw(st.sampled_from(["since", "reason", "state"]))
    hostile = draw(hostile_for("int" if target == "since" else "text"))
    body[target] = hostile.value
    return Case(topic, dumps(body), "instrument", hostile.expect, body=body)


@st.composite
def metrics_case(draw: st.DrawFn) -> Case:
    """An agent's metrics message, valid or with one hostile field."""
    body: dict[str, Any] = {
        "schema": 1,
        "kind": "agent",
        "site": SITE,
        "agent": AGENT,
        "ts": draw(timestamps),
        "metrics": {"readings_read": draw(st.integers(0, INT64 - 1)), "lag": 1.5},
    }
    if draw(st.booleans()):
        return Case(f"{ROOT}/metrics", dumps(body), "metrics", "valid", body=body)
    target = draw(st.sampled_from(["ts", "agent", "metric", "metric-name"]))
    hostile = draw(hostile_for({"ts": "int", "agent": "name"}.get(target, "value")))
    if target == "metric":
        body["metrics"]["readings_read"] = hostile.value
        if hostile.what == "huge integer":
            hostile = Hostile(hostile.value, "any")  # a float when it fits one
        elif hostile.what in ("control character", "giant string"):
            hostile = Hostile(hostile.value, "refused")  # no text in metrics
    elif target == "metric-name":
        key = hostile.value if isinstance(hostile.value, str) else "Bad Name"
        body["metrics"][key] = 1
        hostile = Hostile(key, "refused", hostile.breaks_json)
    else:
        body[target] = hostile.value
    return Case(f"{ROOT}/metrics", dumps(body), "metrics", hostile.expect, body=body)


hostile_topics = st.one_of(
    st.builds(
        lambda level, kind: f"etalon/v1/{SITE}/{level}/{kind}",
        st.one_of(control_text, giant_text, st.just(""), st.just("a b"), st.just("ü/x")),
        st.sampled_from(["data", "status", "metrics", "instruments/x"]),
    ),
    st.builds(lambda level: f"{ROOT}/instruments/{level}", control_text | giant_text),
    st.builds(lambda kind: f"{ROOT}/{kind}", st.sampled_from(["datas", "status/x", "", "x/y/z"])),
    st.text(
        alphabet=st.characters(blacklist_characters="\x00+#", blacklist_categories=("Cs",)),
        max_size=60,
    ),
)


@st.composite
def topic_case(draw: st.DrawFn) -> Case:
    """A valid payload on a hostile topic (one the broker could deliver)."""
    topic = draw(hostile_topics)
    return Case(topic, dumps({"schema": 1, "state": "online"}), "topic", "any")


@st.composite
def raw_case(draw: st.DrawFn) -> Case:
    """Raw bytes on a valid topic of any kind."""
    kind = draw(st.sampled_from(["data", "status", "metrics", "instruments/dmm-1"]))
    payload = draw(
        st.binary(max_size=2000)
        | st.text(max_size=200).map(str.encode)
        | st.sampled_from([b"{}", b"[]", b"null", b"1", b'"x"', b"{" * 5000])
    )
    return Case(f"{ROOT}/{kind}", payload, "raw", "any")


def any_case(base_ts: int) -> st.SearchStrategy[Case]:
    """One message of any kind."""
    return st.one_of(
        data_case(base_ts),
        data_case(base_ts),
        status_case(),
        instrument_case(),
        metrics_case(),
        topic_case(),
        raw_case(),
    )
