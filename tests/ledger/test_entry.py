"""The entry format: fields, the content that is hashed, the genesis, the chain head."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from pydantic import ValidationError

from ledger import ChainHead, Entry, EntryError, content_bytes, genesis_hash
from ledger.canonical import canonical_json, canonical_reference

from .support import LEDGER, T0

PREV = "0" * 64


def test_golden_genesis_and_entry() -> None:
    # Vectors another implementation (a PostgreSQL function, a JS verifier) must reproduce;
    # they are printed in docs/ledger.md.
    assert (
        canonical_json({"format": "etalon-ledger/1", "ledger": "lab-a"})
        == b'{"format":"etalon-ledger/1","ledger":"lab-a"}'
    )
    genesis = genesis_hash("lab-a")
    assert genesis == hashlib.sha256(b'{"format":"etalon-ledger/1","ledger":"lab-a"}').hexdigest()
    entry = Entry.create(
        1,
        1733370000000000000,
        "audit",
        "standard/Z10",
        "alice",
        {"value": "10.000012", "unit": "V", "ghi_chú": "Chuẩn"},
        genesis,
    )
    expected = (
        '{"actor":"alice","body":{"ghi_chú":"Chuẩn","unit":"V","value":"10.000012"},'
        '"kind":"audit","prev":"' + genesis + '","seq":1,"subject":"standard/Z10",'
        '"ts_ns":"1733370000000000000"}'
    ).encode()
    assert entry.content() == expected
    assert entry.hash == hashlib.sha256(expected).hexdigest()
    # The same vectors, as printed in docs/ledger.md:
    assert genesis == "ff95a80c54ca790fc069efcd1a787af5735309d85ff634819836b1279c8fe9ae"
    assert entry.hash == "2e595b8813df88cd67af5ef0934ed56a8586ec58d6c7f5e73a25b3c97628574a"
    assert entry.body_json == '{"ghi_chú":"Chuẩn","unit":"V","value":"10.000012"}'


def test_content_is_the_canonical_json_of_the_seven_fields() -> None:
    entry = Entry.create(7, T0, "alert.raised", 'sub"ject\\', "gateway", {"b": [1], "a": 2}, PREV)
    as_object = {
        "seq": 7,
        "ts_ns": str(T0),
        "kind": "alert.raised",
        "subject": 'sub"ject\\',
        "actor": "gateway",
        "body": {"a": 2, "b": [1]},
        "prev": PREV,
    }
    assert entry.content() == canonical_reference(as_object)
    assert entry.computed_hash() == entry.hash


def test_two_ledgers_never_share_a_chain() -> None:
    assert genesis_hash("lab-a") != genesis_hash("lab-b")
    first_a = Entry.create(1, T0, "audit", "s", "a", {}, genesis_hash("lab-a"))
    first_b = Entry.create(1, T0, "audit", "s", "a", {}, genesis_hash("lab-b"))
    assert first_a.hash != first_b.hash


def test_an_entry_is_a_row() -> None:
    entry = Entry.create(1, T0, "audit", "s", "a", {"x": 1}, PREV)
    row = tuple(entry)
    assert Entry(*row) == entry
    assert row == (1, T0, "audit", "s", "a", '{"x":1}', PREV, entry.hash)


def test_body_is_a_fresh_copy() -> None:
    entry = Entry.create(1, T0, "audit", "s", "a", {"x": [1]}, PREV)
    entry.body["x"].append(2)
    assert entry.body == {"x": [1]}
    assert entry.computed_hash() == entry.hash


def test_wire_form() -> None:
    entry = Entry.create(3, T0, "audit", "s", "a", {"x": 1}, PREV)
    wire = entry.to_wire()
    assert wire["ts_ns"] == str(T0)
    assert wire["body"] == {"x": 1}
    assert (
        hashlib.sha256(canonical_json({k: v for k, v in wire.items() if k != "hash"})).hexdigest()
        == entry.hash
    )


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"seq": 0}, "seq", "from 1"),
        ({"seq": True}, "seq", "integer"),
        ({"seq": 2**53}, "seq", "from 1"),
        ({"ts_ns": -1}, "ts_ns", "nanoseconds"),
        ({"ts_ns": 2**63}, "ts_ns", "nanoseconds"),
        ({"ts_ns": 1.5}, "ts_ns", "nanoseconds"),
        ({"kind": "Audit"}, "kind", "kind name"),
        ({"kind": "audit log"}, "kind", "kind name"),
        ({"kind": "a" * 65}, "kind", "kind name"),
        ({"kind": ".audit"}, "kind", "kind name"),
        ({"subject": ""}, "subject", "1 to 512"),
        ({"subject": "x" * 513}, "subject", "1 to 512"),
        ({"subject": "line\nbreak"}, "subject", "U+000A"),
        ({"subject": "fake\u2028line"}, "subject", "U+2028"),
        ({"subject": "\x85"}, "subject", "U+0085"),
        ({"subject": "\ud800"}, "subject", "U+D800"),
        ({"actor": "a\x00"}, "actor", "U+0000"),
        ({"actor": 5}, "actor", "text"),
        ({"prev": "XYZ"}, "prev", "SHA-256"),
        ({"prev": "A" * 64}, "prev", "SHA-256"),
        ({"body": {"v": 1.5}}, "body.v", "float"),
        ({"body": {"t": 2**60}}, "body.t", "decimal string"),
        ({"body": [1, 2]}, "body", "JSON object"),
        ({"body": "text"}, "body", "JSON object"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, object], field: str, reason: str) -> None:
    fields: dict[str, object] = {
        "seq": 1,
        "ts_ns": T0,
        "kind": "audit",
        "subject": "s",
        "actor": "a",
        "body": {},
        "prev": PREV,
    } | changes
    with pytest.raises(EntryError) as caught:
        Entry.create(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_dotted_kinds_and_unicode_subjects_are_fine() -> None:
    entry = Entry.create(1, T0, "calibration.result", "chuẩn/Z10-Hà Nội", "Nguyễn Văn A", {}, PREV)
    assert entry.computed_hash() == entry.hash


def test_content_bytes_takes_the_body_as_is() -> None:
    body = canonical_json({"a": 1})
    content = content_bytes(1, T0, "audit", "s", "a", body, PREV)
    assert orjson.loads(content)["body"] == {"a": 1}


def test_chain_head() -> None:
    head = ChainHead.start(LEDGER)
    assert head.count == 0 and head.hash == genesis_hash(LEDGER) and head.key is None
    as_json = head.model_dump_json()
    assert '"ts_ns":"0"' in as_json
    assert ChainHead.model_validate_json(as_json) == head
    with pytest.raises(ValidationError):
        ChainHead.model_validate_json(as_json.replace('"ts_ns":"0"', '"ts_ns":0'))
    with pytest.raises(ValidationError):
        ChainHead.model_validate_json(as_json.replace('"ts_ns":"0"', '"ts_ns":"-1"'))
    with pytest.raises(ValidationError):
        ChainHead(ledger="lab a", count=0, hash=head.hash)
    with pytest.raises(ValidationError):
        ChainHead(ledger=LEDGER, count=0, hash=head.hash, surplus=1)  # type: ignore[call-arg]
    with pytest.raises(EntryError):
        genesis_hash("no spaces allowed")
