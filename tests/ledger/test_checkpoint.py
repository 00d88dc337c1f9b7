"""Checkpoints: the signed statement, its JSON line, the append-only file."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from ledger import Checkpoint, CheckpointError, CheckpointFile, SigningKey, genesis_hash
from ledger.canonical import canonical_json

from .support import LEDGER, T0, build

HEAD = "ab" * 32


def test_signed_statement_and_line() -> None:
    key = SigningKey.generate()
    cp = Checkpoint.sign(key, LEDGER, 12, HEAD, T0)
    assert cp.key == key.key_id and cp.count == 12
    message = b"etalon-ledger/1 checkpoint\n" + canonical_json(
        {"count": 12, "head": HEAD, "key": key.key_id, "ledger": LEDGER, "ts_ns": str(T0)}
    )
    assert cp.signed_message() == message
    assert key.public_key.verify(base64.b64decode(cp.sig), message)
    assert cp.signature_holds(key.public_key)
    line = cp.to_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "count": 12,
        "head": HEAD,
        "key": key.key_id,
        "ledger": LEDGER,
        "sig": cp.sig,
        "ts_ns": str(T0),
    }
    assert line[:-1] == cp.to_json() == canonical_json(json.loads(line))
    assert Checkpoint.from_json(line) == cp
    assert Checkpoint.from_json(cp.model_dump_json()) == cp


def test_golden_checkpoint() -> None:
    # Ed25519 signatures are deterministic: the line in docs/ledger.md, from the seed 00..1f.
    key = SigningKey.from_text(base64.b64encode(bytes(range(32))))
    head = "2e595b8813df88cd67af5ef0934ed56a8586ec58d6c7f5e73a25b3c97628574a"
    cp = Checkpoint.sign(key, "lab-a", 1, head, 1733370001000000000)
    assert cp.to_line() == (
        b'{"count":1,"head":"' + head.encode() + b'","key":"ed25519:56475aa75463474c0285df5d'
        b'bf2bcab7","ledger":"lab-a","sig":"AnPsq6oXPEs3Fi8UOWQcJ5XL2/xMwfT+djlfqrKN7ToBojOTVGkQ'
        b'V/SBRhSCl1cH+p7vsWgpG6wSlpu9L+UFBQ==","ts_ns":"1733370001000000000"}\n'
    )


def test_signature_binds_every_field() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    cp = Checkpoint.sign(key, LEDGER, 12, HEAD, T0)
    for change in [
        {"count": 13},
        {"head": "cd" * 32},
        {"ts_ns": T0 + 1},
        {"ledger": "lab-other"},
        {"key": other.key_id},
    ]:
        assert not cp.model_copy(update=change).signature_holds(key.public_key), change
    assert not cp.signature_holds(other.public_key)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d | {"extra": 1}, "extra"),
        (lambda d: d | {"count": -1}, "count"),
        (lambda d: d | {"count": "12"}, "count"),
        (lambda d: d | {"ts_ns": T0}, "ts_ns"),  # a number in JSON: must be a string
        (lambda d: d | {"ts_ns": "01"}, "ts_ns"),
        (lambda d: d | {"ts_ns": "1e9"}, "ts_ns"),
        (lambda d: d | {"head": "XY"}, "head"),
        (lambda d: d | {"key": "rsa:1234"}, "key"),
        (lambda d: d | {"sig": "short"}, "sig"),
        (lambda d: d | {"ledger": "no spaces"}, "ledger"),
        (lambda d: {k: v for k, v in d.items() if k != "sig"}, "sig"),
    ],
)
def test_hostile_checkpoint_json_is_refused_naming_the_field(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    cp = Checkpoint.sign(SigningKey.generate(), LEDGER, 12, HEAD, T0)
    text = json.dumps(mutate(json.loads(cp.to_json())))
    with pytest.raises(CheckpointError) as caught:
        Checkpoint.from_json(text, "cp.jsonl:3")
    assert caught.value.where == "cp.jsonl:3"
    assert caught.value.reason.startswith(field)


def test_garbage_and_huge_lines() -> None:
    for text in ["", "not json", "[1]", '{"count":', "x" * 10_000]:
        with pytest.raises(CheckpointError):
            Checkpoint.from_json(text)


def test_checkpoint_file_appends_lines(tmp_path: Path) -> None:
    built = build(6, checkpoints_at=[2, 4, 6])
    path = tmp_path / "ledger.checkpoints"
    checkpoints = CheckpointFile(path)
    assert checkpoints.lines() == [] and checkpoints.read() == [] and checkpoints.last() is None
    for cp in built.checkpoints:
        checkpoints.append(cp)
    assert checkpoints.read() == built.checkpoints
    assert checkpoints.last() == built.checkpoints[-1]
    assert path.read_bytes() == b"".join(cp.to_line() for cp in built.checkpoints)
    assert stat.S_IMODE(path.stat().st_mode) & 0o044  # public: a verifier reads it


def test_a_torn_last_line_is_not_a_checkpoint_and_is_cut_on_the_next_append(
    tmp_path: Path,
) -> None:
    built = build(4, checkpoints_at=[2, 4])
    path = tmp_path / "ledger.checkpoints"
    checkpoints = CheckpointFile(path)
    checkpoints.append(built.checkpoints[0])
    with path.open("ab") as handle:  # a crash in the middle of a write
        handle.write(built.checkpoints[1].to_line()[:40])
    assert checkpoints.read() == built.checkpoints[:1]
    assert checkpoints.last() == built.checkpoints[0]
    checkpoints.append(built.checkpoints[1])
    assert checkpoints.read() == built.checkpoints
    assert path.read_bytes().count(b"\n") == 2


def test_a_torn_only_line_is_cut(tmp_path: Path) -> None:
    built = build(2, checkpoints_at=[2])
    path = tmp_path / "ledger.checkpoints"
    path.write_bytes(b'{"count":')
    CheckpointFile(path).append(built.checkpoints[0])
    assert CheckpointFile(path).read() == built.checkpoints


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    built = build(2, checkpoints_at=[1, 2])
    path = tmp_path / "ledger.checkpoints"
    path.write_bytes(built.checkpoints[0].to_line() + b"garbage\n" + built.checkpoints[1].to_line())
    with pytest.raises(CheckpointError) as caught:
        CheckpointFile(path).read()
    assert caught.value.where == f"{path}:2"
    assert len(CheckpointFile(path).lines()) == 3


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        directory = tmp_path / "dir.checkpoints"
        directory.mkdir()
        with pytest.raises(CheckpointError, match="cannot read"):
            CheckpointFile(directory).lines()
    else:
        path = tmp_path / "ledger.checkpoints"
        path.write_bytes(b"")
        path.chmod(0)
        with pytest.raises(CheckpointError, match="cannot read"):
            CheckpointFile(path).lines()


def test_count_zero_names_the_genesis() -> None:
    key = SigningKey.generate()
    cp = Checkpoint.sign(key, LEDGER, 0, genesis_hash(LEDGER), T0)
    assert cp.signature_holds(key.public_key)


def test_a_long_unterminated_tail_is_kept_as_evidence(tmp_path: Path) -> None:
    built = build(2, checkpoints_at=[1, 2])
    path = tmp_path / "ledger.checkpoints"
    path.write_bytes(built.checkpoints[0].to_line() + b"x" * 5000)
    CheckpointFile(path).append(built.checkpoints[1])
    lines = CheckpointFile(path).lines()
    assert len(lines) == 3 and lines[1] == "x" * 5000
    assert Checkpoint.from_json(lines[2]) == built.checkpoints[1]


def test_append_where_it_cannot(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    cp = build(1, checkpoints_at=[1]).checkpoints[0]
    with pytest.raises(CheckpointError, match="cannot append"):
        CheckpointFile(tmp_path / "dir").append(cp)
    with pytest.raises(CheckpointError, match="cannot append"):
        CheckpointFile(tmp_path / "missing" / "ledger.checkpoints").append(cp)
