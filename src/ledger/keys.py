"""Ed25519 keys: the gateway's signing key and the public keys that verifiers trust.

A signing key lives in a file only its owner can read (0600), is generated there on first use,
or comes from an environment variable; it is never logged, printed or pickled: ``repr`` and
``str`` show its key id only, and exporting it is one explicit call (``export_pem``).

Text forms, both accepted wherever a key is read:

- PEM: PKCS#8 ``PRIVATE KEY`` (what ``openssl genpkey -algorithm ed25519`` writes) or
  ``PUBLIC KEY`` (SubjectPublicKeyInfo);
- raw base64: the 32-byte private seed, or the 32-byte public key.

A key id is ``ed25519:`` and the first 16 bytes of the SHA-256 of the raw public key, in hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final, NoReturn

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger._files import fsync_directory
from ledger.errors import KeyFileError

log = logging.getLogger(__name__)

KEY_ID_PATTERN: Final = r"^ed25519:[0-9a-f]{32}$"
_KEY_ID: Final = re.compile(KEY_ID_PATTERN)
_RAW_LENGTH: Final = 32


def key_id_of(raw_public: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key."""
    return "ed25519:" + hashlib.sha256(raw_public).hexdigest()[:32]


def is_key_id(text: str) -> bool:
    """Whether ``text`` has the form of a key id."""
    return _KEY_ID.match(text) is not None


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


class _ByPublicKey:
    """Both halves of a key pair are values: equal to a key of their own kind with the same
    public key, hashed by it, shown by its key id alone."""

    __slots__ = ()

    def _public(self) -> PublicKey:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other._public().raw == self._public().raw

    def __hash__(self) -> int:
        return hash(self._public().raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._public().key_id})"


class PublicKey(_ByPublicKey):
    """An Ed25519 public key, compared by value; ``key_id`` names it."""

    __slots__ = ("_key", "key_id", "raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self.raw: bytes = key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id: str = key_id_of(self.raw)

    @classmethod
    def from_raw(cls, raw: bytes) -> PublicKey:
        """The key from its 32 raw bytes (``ValueError`` otherwise)."""
        if len(raw) != _RAW_LENGTH:
            raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
        return cls(Ed25519PublicKey.from_public_bytes(raw))

    @classmethod
    def from_text(cls, text: str | bytes) -> PublicKey:
        """The key from PEM (``PUBLIC KEY``) or base64 of its 32 raw bytes (``ValueError``)."""
        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        if "-----BEGIN" in text:
            try:
                key = serialization.load_pem_public_key(text.encode())
            except (ValueError, UnsupportedAlgorithm):
                raise ValueError("not a PEM public key") from None
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"not an Ed25519 key ({type(key).__name__})")
            return cls(key)
        raw = _b64(text)
        if raw is None:
            raise ValueError("neither PEM nor base64")
        return cls.from_raw(raw)

    def to_text(self) -> str:
        """Base64 of the 32 raw bytes (the form used inside the ledger)."""
        return base64.b64encode(self.raw).decode("ascii")

    def to_pem(self) -> bytes:
        """PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo)."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``message``."""
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def _public(self) -> PublicKey:
        return self


class SigningKey(_ByPublicKey):
    """An Ed25519 private key. Shows only its key id; never pickled, never logged."""

    __slots__ = ("_private", "public_key")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key = PublicKey(private.public_key())

    @property
    def key_id(self) -> str:
        """The key id of the public half."""
        return self.public_key.key_id

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key (from the operating system's CSPRNG)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_text(cls, text: str | bytes, source: str = "key") -> SigningKey:
        """A key from PEM (PKCS#8) or base64 of its 32-byte seed; ``source`` names it in errors."""
        if isinstance(text, bytes):
            try:
                text = text.decode("ascii")
            except UnicodeDecodeError:
                raise KeyFileError(source, "not a key: neither PEM nor base64 text") from None
        if not text.strip():
            raise KeyFileError(source, "empty: no key in it")
        if "-----BEGIN" in text:
            try:
                private = serialization.load_pem_private_key(text.encode(), password=None)
            except TypeError:
                raise KeyFileError(
                    source, "an encrypted PEM key: give an unencrypted PKCS#8 key (mode 0600)"
                ) from None
            except (ValueError, UnsupportedAlgorithm):
                raise KeyFileError(source, "not a PEM private key") from None
            if not isinstance(private, Ed25519PrivateKey):
                raise KeyFileError(source, f"not an Ed25519 key ({type(private).__name__})")
            return cls(private)
        raw = _b64(text)
        if raw is None:
            raise KeyFileError(source, "not a key: neither PEM nor base64 text")
        if len(raw) != _RAW_LENGTH:
            raise KeyFileError(
                source, f"base64 of {len(raw)} bytes: an Ed25519 private key seed is 32 bytes"
            )
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKey:
        """The key in ``path``, refused if group or others may read or change the file."""
        where = str(path)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise KeyFileError(where, "no such file") from None
        except OSError as exc:
            raise KeyFileError(where, f"cannot read: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(where, "not a regular file")
        _require_private(where, info.st_mode)
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise KeyFileError(where, f"cannot read: {exc.strerror}") from None
        return cls.from_text(text, where)

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str] | None = None) -> SigningKey:
        """The key in environment variable ``name`` (PEM or base64)."""
        value = (os.environ if environ is None else environ).get(name)
        if not value:
            raise KeyFileError(f"${name}", "not set")
        return cls.from_text(value, f"${name}")

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> SigningKey:
        """The key in ``path``; with ``create``, a new one is made there (0600) if none exists."""
        target = Path(path)
        if not create or target.exists():
            return cls.load(target)
        key = cls.generate()
        try:
            key.save(target)
        except FileExistsError:
            # Another process made it between our look and our write: use theirs.
            return cls.load(target)
        log.info("ledger signing key created key_id=%s path=%s", key.key_id, target)
        return key

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key (PEM) to a new file readable by its owner only; never overwrites.

        The key is written to a temporary file beside ``path`` and linked into place, so a
        crash never leaves a half-written key and two processes never both win.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own: two threads or processes may make a key for this path at once.
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise KeyFileError(str(temporary), f"cannot create: {exc.strerror}") from None
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(self.export_pem())
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, target)
            except FileExistsError:
                raise
            except OSError:
                # A file system without hard links: an exclusive create is the next best.
                _write_exclusive(target, self.export_pem())
        finally:
            temporary.unlink(missing_ok=True)
        fsync_directory(target.parent)

    def export_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM: the one way to get its secret out."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private.sign(message)

    def _public(self) -> PublicKey:
        return self.public_key

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SigningKey is not serialisable: call export_pem() explicitly")

    def __copy__(self) -> SigningKey:
        return self

    def __deepcopy__(self, memo: object) -> SigningKey:
        return self


def _require_private(where: str, mode: int) -> None:
    if os.name == "posix" and mode & 0o077:
        raise KeyFileError(
            where,
            f"mode {stat.S_IMODE(mode):04o} lets group or others read or change the private key: "
            f"run chmod 600 {where}",
        )


def _write_exclusive(target: Path, content: bytes) -> None:
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
