"""Canonical JSON: golden vectors (RFC 8785 where it applies), refusals, and the fast path held
equal to the reference encoder and to an independent serialiser."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import CanonicalError, canonical_json, canonical_reference, parse_json
from ledger.canonical import MAX_DEPTH, MAX_SAFE_INTEGER, canonical_object_bytes
from ledger.canonical import check_canonical_object as check

# -- RFC 8785 -----------------------------------------------------------------------------------

# RFC 8785 §3.2.3: property sorting by UTF-16 code units; the emoji (a surrogate pair, D83D)
# sorts before U+FB33 although its code point is larger.
RFC_SORTING_INPUT = r"""{
   "\u20ac": "Euro Sign",
   "\r": "Carriage Return",
   "\ufb33": "Hebrew Letter Dalet With Dagesh",
   "1": "One",
   "\ud83d\ude00": "Emoji: Grinning Face",
   "\u0080": "Control",
   "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC_SORTING_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()

# RFC 8785 §3.2.2 / §3.2.4, without its "numbers" (floats have no canonical form here).
RFC_STRING_INPUT = r"""{
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC_STRING_OUTPUT = r"""{"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}""".encode()


def test_rfc8785_sorting_example() -> None:
    value = json.loads(RFC_SORTING_INPUT)
    assert canonical_json(value) == RFC_SORTING_OUTPUT
    assert canonical_reference(value) == RFC_SORTING_OUTPUT
    assert check(RFC_SORTING_OUTPUT.decode()) == RFC_SORTING_OUTPUT


def test_rfc8785_string_and_literals_example() -> None:
    value = json.loads(RFC_STRING_INPUT)
    assert canonical_json(value) == RFC_STRING_OUTPUT
    assert canonical_reference(value) == RFC_STRING_OUTPUT


def test_rfc8785_numbers_example_is_refused_for_its_floats() -> None:
    value = json.loads('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3]}')
    with pytest.raises(CanonicalError) as caught:
        canonical_json(value)
    assert caught.value.path == "$.numbers[0]"
    assert "decimal string" in caught.value.reason


# -- golden vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, b"{}"),
        ([], b"[]"),
        ({"b": 1, "a": [True, False, None]}, b'{"a":[true,false,null],"b":1}'),
        ({"z": {"y": {"x": "w"}}}, b'{"z":{"y":{"x":"w"}}}'),
        ({"n": MAX_SAFE_INTEGER, "m": -MAX_SAFE_INTEGER, "o": 0}, None),
        ("a/b", b'"a/b"'),  # no \/
        ("\x7f", b'"\x7f"'),  # DEL is not a control in JSON
        ("\u2028\u2029", '"\u2028\u2029"'.encode()),  # as themselves (JCS, ES2019)
        ("\b\t\n\f\r", b'"\\b\\t\\n\\f\\r"'),
        ("\x00\x01\x1f", b'"\\u0000\\u0001\\u001f"'),  # lower-case hex
        ('"\\', b'"\\"\\\\"'),
        ("é€😀", '"é€😀"'.encode()),  # UTF-8, never \u for non-ASCII
        ({"ghi_chú": "Chuẩn điện áp 10 V"}, '{"ghi_chú":"Chuẩn điện áp 10 V"}'.encode()),
        ((1, "two"), b'[1,"two"]'),  # a tuple is an array
    ],
)
def test_golden(value: object, expected: bytes | None) -> None:
    if expected is None:
        expected = b'{"m":-9007199254740991,"n":9007199254740991,"o":0}'
    assert canonical_json(value) == expected
    assert canonical_reference(value) == expected


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+E000 (one unit, E000) sorts after U+1F600 (units D83D DE00) in JCS; by code point the
    # other way round.
    value = {"\ue000": 1, "\U0001f600": 2, "b": 3, "a": 4}
    expected = '{"a":4,"b":3,"\U0001f600":2,"\ue000":1}'.encode()
    assert canonical_json(value) == expected
    assert canonical_json({"n": value}) == b'{"n":' + expected + b"}"


def test_strings_are_not_normalised() -> None:
    nfc = unicodedata.normalize("NFC", "Chuẩn")
    nfd = unicodedata.normalize("NFD", "Chuẩn")
    assert nfc != nfd
    assert canonical_json({"t": nfc}) != canonical_json({"t": nfd})
    assert canonical_json({"t": nfd}) == ('{"t":"' + nfd + '"}').encode()


class Colour(enum.IntEnum):
    RED = 3


class Kind(enum.StrEnum):
    AUDIT = "audit"


class Plain(enum.Enum):
    ONE = 1.5


def test_enum_members_that_are_ints_or_strings_are_their_values() -> None:
    assert canonical_json({"c": Colour.RED, "k": Kind.AUDIT}) == b'{"c":3,"k":"audit"}'
    assert canonical_reference({"c": Colour.RED, "k": Kind.AUDIT}) == b'{"c":3,"k":"audit"}'


# -- refusals, each with the path and a reason ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        ({"a": 1.5}, "$.a", "float"),
        ({"a": [1, {"b": float("nan")}]}, "$.a[1].b", "float"),
        ({"a": float("inf")}, "$.a", "float"),
        ({"a": 1.0}, "$.a", "float"),
        ({"a": decimal.Decimal("1.5")}, "$.a", "Decimal"),
        ({"a": 2**53}, "$.a", "2**53"),
        ({"a": -(2**53)}, "$.a", "2**53"),
        ({"a": 10**30}, "$.a", "decimal string"),
        ({1: "x"}, "$", "key must be a string"),
        ({("a",): "x"}, "$", "key must be a string"),
        ({"a": {1, 2}}, "$.a", "set"),
        ({"a": b"bytes"}, "$.a", "bytes"),
        ({"a": datetime.datetime(2024, 1, 1)}, "$.a", "datetime"),
        ({"a": Plain.ONE}, "$.a", "Plain"),
        ({"a": "\ud800"}, "$.a", "surrogate"),
        ({"\udfff": "x"}, "$", "surrogate"),
        ({"x y": [0, 1.5]}, '$["x y"][1]', "float"),
    ],
)
def test_refused(value: object, path: str, reason: str) -> None:
    with pytest.raises(CanonicalError) as caught:
        canonical_json(value)
    assert caught.value.path == path
    assert reason in caught.value.reason
    assert str(caught.value).startswith(path)


def test_depth_is_bounded() -> None:
    deep: object = "leaf"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    canonical_json(deep)
    with pytest.raises(CanonicalError, match="nested deeper"):
        canonical_json([deep])


def test_a_large_int_gets_a_hint_to_use_a_string() -> None:
    with pytest.raises(CanonicalError) as caught:
        canonical_json({"agent_ts_ns": 1_733_370_000_000_000_000})
    assert "decimal string" in caught.value.reason


# -- reading canonical text back ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1}',
        "{}",
        '{"a":[1,"x",null,true,false,{"b":-2}]}',
        '{"ghi_chú":"Chuẩn"}',
        RFC_SORTING_OUTPUT.decode(),
    ],
)
def test_canonical_texts_pass(text: str) -> None:
    assert canonical_object_bytes(text) == text.encode()
    assert check(text) == text.encode()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a": 1}', "canonical"),
        (' {"a":1}', "canonical"),
        ('{"a":1}\n', "canonical"),
        ('{"b":1,"a":2}', "canonical"),
        ('{"a":"\\u00e9"}', "canonical"),  # an escaped non-ASCII character
        ('{"a":"\\/"}', "canonical"),
        ('{"a":"\\u001F"}', "canonical"),  # upper-case hex
        ('{"a":"\\u0041"}', "canonical"),
        ('{"a":-0}', "canonical"),
        ('{"a":1.5}', "float"),
        ('{"a":1e5}', "float"),
        ('{"a":1E5}', "float"),
        ('{"a":NaN}', "NaN"),
        ('{"a":9007199254740992}', "2**53"),
        ('{"a":123456789012345678901234567890}', "2**53"),
        ('{"a":1,"a":1}', "duplicate"),
        ('{"a":"\\ud800"}', "surrogate"),
        ("[1]", "object"),
        ('"a"', "object"),
        ("", "not JSON"),
        ('{"a":', "not JSON"),
        ('{"\ue000":2,"\U0001f600":1}', "canonical"),  # code-point order, not JCS's
    ],
)
def test_non_canonical_texts_are_refused(text: str, why: str) -> None:
    assert canonical_object_bytes(text) is None
    with pytest.raises(CanonicalError) as caught:
        check(text)
    assert why in str(caught.value)


def test_canonical_object_bytes_takes_only_text() -> None:
    assert canonical_object_bytes(b'{"a":1}') is None
    assert canonical_object_bytes(None) is None
    with pytest.raises(CanonicalError, match="expected JSON text"):
        check(b'{"a":1}')


def test_parse_json_refuses_what_has_no_canonical_form() -> None:
    assert parse_json('{ "b" : [1, 2], "a" : "x" }') == {"a": "x", "b": [1, 2]}
    assert parse_json(b'{"a":"\xc3\xa9"}') == {"a": "é"}
    for text, reason in [
        ('{"a":1,"a":2}', "duplicate"),
        ('{"a":0.5}', "float"),
        ('{"a":-Infinity}', "not JSON"),
        ('{"a":99999999999999999}', "2**53"),
        (b'{"a":"\xff"}', "UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "nested"),
    ]:
        with pytest.raises(CanonicalError) as caught:
            parse_json(text)
        assert reason in str(caught.value), (text[:20], caught.value)


# -- properties -----------------------------------------------------------------------------

SAFE_INT = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
VALUES = st.recursive(
    st.none() | st.booleans() | SAFE_INT | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
BMP_TEXT = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=12)
BMP_VALUES = st.recursive(
    st.none() | st.booleans() | SAFE_INT | BMP_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(BMP_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(VALUES)
def test_fast_path_equals_reference(value: object) -> None:
    assert canonical_json(value) == canonical_reference(value)


@given(BMP_VALUES)
def test_equals_an_independent_serialiser_where_sort_orders_agree(value: object) -> None:
    # Below U+10000 code-point order is UTF-16 order, so the standard library's json (written
    # by other people, sorting by code point) must produce the same bytes.
    independent = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert canonical_json(value) == independent.encode()


@given(st.dictionaries(TEXT, VALUES, max_size=5))
def test_round_trip_and_recognition(value: dict[str, object]) -> None:
    canonical = canonical_json(value)
    assert parse_json(canonical) == value
    assert canonical_object_bytes(canonical.decode()) == canonical
    assert check(canonical.decode()) == canonical
    if value:
        spaced = json.dumps(value, ensure_ascii=False, sort_keys=True)
        if spaced.encode() != canonical:
            assert canonical_object_bytes(spaced) is None


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_the_verifiers_string_quoting_equals_the_encoders(text: str) -> None:
    from ledger.walk import _json_string

    assert _json_string(text) == canonical_json(text) == canonical_reference(text)


def test_results_are_compact() -> None:
    # orjson's own results keep a 4 KB buffer each; a caller keeping many must not pay it.
    import tracemalloc

    tracemalloc.start()
    try:
        kept = [canonical_json({"a": i}) for i in range(500)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept) == 500 and held < 200_000, held


@given(st.dictionaries(TEXT, VALUES, max_size=5))
def test_the_parsed_value_path_equals_the_encoder(value: dict[str, object]) -> None:
    from ledger.canonical import canonical_json_parsed

    parsed = json.loads(json.dumps(value))
    assert canonical_json_parsed(parsed) == canonical_json(value)


@pytest.mark.parametrize(
    "text",
    ['{"a":1.5}', '{"a":[1e3]}', '{"a":{"b":-0.0}}', '{"a":9007199254740992}', '{"a":"\\ud800"}'],
)
def test_the_parsed_value_path_refuses_what_has_no_canonical_form(text: str) -> None:
    from ledger.canonical import canonical_json_parsed

    assert canonical_json_parsed(json.loads(text)) is None
