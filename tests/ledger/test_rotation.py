"""Key rotation recorded in the chain: followed from the first key (or back from a later one),
refused when forged, and a rewrite before a rotation caught by its signed statement."""

from __future__ import annotations

import base64

import orjson
import pytest

from ledger import (
    ChainHead,
    Checkpoint,
    Entry,
    LedgerWriter,
    SigningKey,
    TamperKind,
    VerifyReport,
    verify,
)
from ledger.rotation import RotationProblem, read_rotation, rotation_body, rotation_message

from .support import LEDGER, Built, Clock, rechain, recomputed


@pytest.fixture(scope="module")
def rotated() -> Built:
    """Entries 1-10 under k1 (signed at 10), rotation to k2 at 11, 12-16 (signed at 16),
    rotation to k3 at 17, 18-22 (signed at 22)."""
    k1, k2, k3 = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
    entries: list[Entry] = []
    checkpoints: list[Checkpoint] = []
    entries += [writer.append("audit", "s", "alice", {"i": i}) for i in range(10)]
    checkpoints.append(writer.checkpoint(k1))
    entries.append(writer.rotate(k1, k2, "admin"))
    entries += [writer.append("audit", "s", "alice", {"i": i}) for i in range(5)]
    checkpoints.append(writer.checkpoint(k2))
    entries.append(writer.rotate(k2, k3, "admin"))
    entries += [writer.append("audit", "s", "alice", {"i": i}) for i in range(5)]
    checkpoints.append(writer.checkpoint(k3))
    return Built(entries, checkpoints, writer, [k1, k2, k3])


def run(
    built: Built, entries: list[Entry] | None = None, checkpoints=None, trusted=None
) -> VerifyReport:  # type: ignore[no-untyped-def]
    return verify(
        built.entries if entries is None else entries,
        built.checkpoints if checkpoints is None else checkpoints,
        [k.public_key for k in (built.keys[:1] if trusted is None else trusted)],
        ledger=LEDGER,
    )


def test_the_body_states_both_keys_and_both_sign() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    body = rotation_body(LEDGER, 11, "ab" * 32, old, new)
    assert body["old_key"] == old.key_id and body["new_key"] == new.key_id
    assert body["new_public_key"] == new.public_key.to_text()
    statement = {k: body[k] for k in body if not k.endswith("signature")}
    message = rotation_message(statement)
    assert message.startswith(b"etalon-ledger/1 key rotation\n")
    assert old.public_key.verify(base64.b64decode(body["old_signature"]), message)
    assert new.public_key.verify(base64.b64decode(body["new_signature"]), message)
    rotation = read_rotation(body)
    assert (rotation.old, rotation.new, rotation.seq) == (old.public_key, new.public_key, 11)


@pytest.mark.parametrize("trusted", [[0], [1], [2], [0, 2]])
def test_the_chain_of_keys_is_followed_from_any_trusted_key(
    rotated: Built, trusted: list[int]
) -> None:
    report = run(rotated, trusted=[rotated.keys[i] for i in trusted])
    assert report.ok, report.finding
    assert [(k.from_seq, k.key, k.trusted) for k in report.keys] == [
        (1, rotated.keys[0].key_id, True),
        (11, rotated.keys[1].key_id, True),
        (17, rotated.keys[2].key_id, True),
    ]
    assert report.head.key == rotated.keys[2].key_id
    assert report.checkpoints_verified == 3 and report.signed_count == 22


def test_without_a_trusted_key_nothing_is_vouched_for(rotated: Built) -> None:
    report = run(rotated, trusted=[SigningKey.generate()])
    assert not report.ok and report.finding is not None
    assert report.finding.code == "checkpoint_forged.untrusted_chain"
    assert not any(k.trusted for k in report.keys)
    report = run(rotated, checkpoints=[], trusted=[SigningKey.generate()])
    assert report.finding is not None and report.finding.code == "rotation_forged.untrusted"


def test_the_old_key_cannot_sign_after_the_rotation(rotated: Built) -> None:
    late = Checkpoint.sign(rotated.keys[0], LEDGER, 16, rotated.entries[15].hash, 1)
    report = run(rotated, checkpoints=[*rotated.checkpoints[:1], late, *rotated.checkpoints[1:]])
    assert report.finding is not None
    assert (report.finding.kind, report.finding.code) == (
        TamperKind.CHECKPOINT_FORGED,
        "checkpoint_forged.wrong_key",
    )
    assert report.finding.params["expected"] == rotated.keys[1].key_id


def test_the_new_key_cannot_sign_before_the_rotation(rotated: Built) -> None:
    early = Checkpoint.sign(rotated.keys[1], LEDGER, 5, rotated.entries[4].hash, 1)
    report = run(rotated, checkpoints=[early, *rotated.checkpoints])
    assert report.finding is not None and report.finding.code == "checkpoint_forged.wrong_key"
    assert report.finding.seq == 5


def forged_rotation(built: Built, change) -> list[Entry]:  # type: ignore[no-untyped-def]
    """The chain to entry 10, then entry 11 with its body changed and its hash recomputed."""
    rotation = built.entries[10]
    body = change(orjson.loads(rotation.body_json))
    return [*built.entries[:10], recomputed(rotation, body=body)]


def test_a_rotation_signed_by_the_new_key_only(rotated: Built) -> None:
    def swap(body):  # type: ignore[no-untyped-def]
        return body | {"old_signature": body["new_signature"]}

    report = run(rotated, forged_rotation(rotated, swap), rotated.checkpoints[:1])
    assert report.finding is not None and report.finding.kind == TamperKind.ROTATION_FORGED
    assert report.finding.code == "rotation_forged.signature" and report.finding.seq == 11


def test_a_rotation_to_the_thiefs_key_without_the_old_key(rotated: Built) -> None:
    thief = SigningKey.generate()
    body = rotation_body(LEDGER, 11, rotated.entries[9].hash, thief, SigningKey.generate())
    body["old_key"] = rotated.keys[0].key_id
    body["old_public_key"] = rotated.keys[0].public_key.to_text()
    rotation = recomputed(rotated.entries[10], body=body)
    report = run(rotated, [*rotated.entries[:10], rotation], rotated.checkpoints[:1])
    assert report.finding is not None and report.finding.code == "rotation_forged.signature"


def test_a_rotation_from_a_key_not_in_force(rotated: Built) -> None:
    stranger, newer = SigningKey.generate(), SigningKey.generate()
    body = rotation_body(LEDGER, 11, rotated.entries[9].hash, stranger, newer)
    rotation = recomputed(rotated.entries[10], body=body)
    report = run(rotated, [*rotated.entries[:10], rotation], rotated.checkpoints[:1])
    assert report.finding is not None and report.finding.code == "rotation_forged.wrong_old_key"


def test_a_rotation_copied_from_another_ledger(rotated: Built) -> None:
    k1, k2 = rotated.keys[:2]
    body = rotation_body("lab-other", 11, rotated.entries[9].hash, k1, k2)
    rotation = recomputed(rotated.entries[10], body=body)
    report = run(rotated, [*rotated.entries[:10], rotation], rotated.checkpoints[:1])
    assert report.finding is not None and report.finding.code == "rotation_forged.other_ledger"


@pytest.mark.parametrize(
    "change",
    [
        lambda b: {k: v for k, v in b.items() if k != "new_signature"},
        lambda b: b | {"surplus": 1},
        lambda b: b | {"new_key": b["old_key"]},
        lambda b: b | {"new_public_key": "not base64"},
        lambda b: b | {"old_signature": "AAAA"},
        lambda b: b | {"seq": "11"},
        lambda b: b | {"new_public_key": b["old_public_key"], "new_key": b["old_key"]},
    ],
)
def test_a_malformed_rotation(rotated: Built, change) -> None:  # type: ignore[no-untyped-def]
    report = run(rotated, forged_rotation(rotated, change), rotated.checkpoints[:1])
    assert report.finding is not None and report.finding.kind == TamperKind.ROTATION_FORGED
    assert report.finding.code == "rotation_forged.malformed"


def test_a_rewrite_before_a_rotation_breaks_its_statement(rotated: Built) -> None:
    # Entries 3-10 rewritten with fresh hashes, the rotation's prev fixed up, no checkpoint
    # given: the rotation itself, signed by both keys, names the original entry 10.
    entries = list(rotated.entries)
    entries[2] = entries[2]._replace(actor="mallory")
    rewritten = rechain(entries[:11], 2) + entries[11:]
    report = run(rotated, rewritten[:11], [])
    assert report.finding is not None
    assert (report.finding.kind, report.finding.code) == (
        TamperKind.REWRITTEN,
        "rewritten.rotation",
    )
    assert report.finding.params["rotation"] == 11


def test_read_rotation_refuses_non_dicts_gracefully() -> None:
    with pytest.raises(RotationProblem):
        read_rotation({"ledger": 1})
