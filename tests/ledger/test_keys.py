"""Keys: created on first use with 0600, refused when others may read them, loaded from a file
or the environment (PEM or base64), never shown: not in repr, str, logs, errors or pickles."""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
import os
import pickle
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger import KeyFileError, PublicKey, SigningKey, key_id_of

SEED = bytes(range(32))


def secrets_of(key: SigningKey) -> list[str]:
    """Every text form of the private key a leak could take."""
    pem = key.export_pem().decode()
    body = "".join(line for line in pem.splitlines() if "-----" not in line)
    raw = key._private.private_bytes(  # test-only peek at the seed
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return [body, body[:24], base64.b64encode(raw).decode(), raw.hex(), repr(raw)]


def private_file(path: Path, content: bytes | str) -> Path:
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_created_on_first_use_readable_by_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ledger.key"
    key = SigningKey.open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SigningKey.open(path) == key  # the second start loads it
    assert SigningKey.load(path).key_id == key.key_id
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_created_despite_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        SigningKey.open(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_an_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    first = SigningKey.open(path)
    with pytest.raises(FileExistsError):
        SigningKey.generate().save(path)
    assert SigningKey.load(path) == first


def test_two_starts_at_once_get_one_key(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    barrier = threading.Barrier(4)
    found: list[str] = []

    def start() -> None:
        barrier.wait()
        found.append(SigningKey.open(path).key_id)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found) == 4


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o602, 0o620, 0o700 | 0o040])
def test_a_key_file_others_may_read_or_change_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ledger.key"
    key = SigningKey.open(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        SigningKey.open(path)
    message = str(caught.value)
    assert f"{stat.S_IMODE(mode):04o}" in message
    assert f"chmod 600 {path}" in message
    assert caught.value.source == str(path)
    for secret in secrets_of(key):
        assert secret not in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b" \n", "empty"),
        (b"\xff\xfe garbage", "neither PEM nor base64"),
        (b"hello world", "neither PEM nor base64"),
        (base64.b64encode(bytes(31)), "31 bytes"),
        (base64.b64encode(bytes(64)), "64 bytes"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PEM"),
    ],
)
def test_garbage_key_files_are_refused_with_a_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = private_file(tmp_path / "ledger.key", content)
    with pytest.raises(KeyFileError) as caught:
        SigningKey.load(path)
    assert reason in str(caught.value)
    if len(content) > 8:
        assert content.decode("latin-1") not in str(caught.value)


def test_other_key_types_and_encrypted_keys_are_refused(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        SigningKey.load(private_file(tmp_path / "ec.key", pem))
    encrypted = SigningKey.generate()._private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass"),
    )
    with pytest.raises(KeyFileError, match="encrypted"):
        SigningKey.load(private_file(tmp_path / "enc.key", encrypted))


def test_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such file"):
        SigningKey.open(tmp_path / "absent", create=False)
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        SigningKey.load(tmp_path / "dir")


def test_raw_base64_seed_from_a_file(tmp_path: Path) -> None:
    path = private_file(tmp_path / "k", base64.b64encode(SEED) + b"\n")
    key = SigningKey.load(path)
    assert key == SigningKey.from_text(base64.b64encode(SEED))


def test_from_the_environment_pem_or_base64() -> None:
    key = SigningKey.from_text(base64.b64encode(SEED))
    assert SigningKey.from_env("K", {"K": key.export_pem().decode()}) == key
    assert SigningKey.from_env("K", {"K": base64.b64encode(SEED).decode()}) == key
    with pytest.raises(KeyFileError) as caught:
        SigningKey.from_env("ETALON_LEDGER_KEY", {})
    assert str(caught.value) == "$ETALON_LEDGER_KEY: not set"
    secret = base64.b64encode(SEED[:31]).decode()
    with pytest.raises(KeyFileError) as caught:
        SigningKey.from_env("K", {"K": secret})
    assert "$K" in str(caught.value) and secret not in str(caught.value)


def test_key_id_is_the_public_key_fingerprint() -> None:
    key = SigningKey.from_text(base64.b64encode(SEED))
    raw = key.public_key.raw
    assert key.key_id == "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]
    assert key.key_id == key_id_of(raw)
    # RFC 8032 does not give this seed; the public key is fixed by it all the same.
    assert key.public_key.to_text() == "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="


def test_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    key = SigningKey.generate()
    shown = [repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("key %s %r", key, key)
        logging.getLogger("test").info("keys %s", {"k": key})
    shown.extend(record.getMessage() for record in caplog.records)
    for text in shown:
        assert key.key_id in text
        for secret in secrets_of(key):
            assert secret not in text
    assert repr(key) == f"SigningKey({key.key_id})"
    with pytest.raises(TypeError, match="not serialisable"):
        pickle.dumps(key)
    assert copy.copy(key) is key and copy.deepcopy(key) is key
    with pytest.raises(AttributeError):
        key.__dict__  # noqa: B018  (slots: no attribute dictionary to dump)


def test_creation_is_logged_without_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ledger"):
        key = SigningKey.open(tmp_path / "ledger.key")
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert key.key_id in messages and str(tmp_path / "ledger.key") in messages
    for secret in secrets_of(key):
        assert secret not in messages


def test_public_keys() -> None:
    key = SigningKey.generate()
    public = key.public_key
    assert PublicKey.from_text(public.to_text()) == public
    assert PublicKey.from_text(public.to_pem()) == public
    assert hash(PublicKey.from_raw(public.raw)) == hash(public)
    assert public.verify(key.sign(b"m"), b"m")
    assert not public.verify(key.sign(b"m"), b"n")
    assert not public.verify(b"\x00" * 64, b"m")
    assert repr(public) == f"PublicKey({key.key_id})"
    for bad, reason in [
        ("", "32 bytes"),
        ("not base64!", "neither PEM nor base64"),
        (base64.b64encode(bytes(31)).decode(), "32 bytes"),
    ]:
        with pytest.raises(ValueError, match=reason):
            PublicKey.from_text(bad)
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ValueError, match="not an Ed25519"):
        PublicKey.from_text(
            ec_public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
