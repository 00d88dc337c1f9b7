"""Certificate files (PDF, DCC XML) kept beside the record store, named by their SHA-256.

A file is written once under its hash (``<sha256>.pdf``), through a temporary file, fsync and an
atomic rename; the record store keeps its name, size and hash. Reading it back (``show``, the
API's download) recomputes the hash, so a file changed or damaged on disk is reported, never
served as the certificate.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.standards.errors import InvalidInput

MAX_FILE_BYTES = 64 * 1024 * 1024
MEDIA_TYPES = {"pdf": "application/pdf", "xml": "application/xml"}

FileState = Literal["ok", "mismatch", "missing"]


@dataclass(frozen=True)
class StoredFile:
    """A certificate file as the record store describes it."""

    name: str
    sha256: str
    size: int
    media_type: str


def sniff(data: bytes) -> str:
    """``pdf`` or ``xml`` by content; raises InvalidInput for anything else."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "xml"
    raise InvalidInput("a certificate file must be a PDF or a DCC XML document")


def check_dcc(data: bytes, name: str) -> None:
    """An XML certificate must be a valid DCC 3.1.2 (an HTML page saved as ``.xml`` is not);
    InvalidInput with the schema's own message and line otherwise."""
    from metrology import dcc

    try:
        dcc.validate(data, max_bytes=MAX_FILE_BYTES)
    except dcc.DccError as exc:
        raise InvalidInput(f"certificate file {name!r} is not a valid DCC 3.1.2: {exc}") from None


class CertificateFiles:
    """The directory of certificate files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, stored: StoredFile) -> Path:
        """Where a file lives."""
        kind = "pdf" if stored.media_type == MEDIA_TYPES["pdf"] else "xml"
        return self.directory / f"{stored.sha256}.{kind}"

    def put(self, data: bytes, name: str) -> tuple[StoredFile, bool]:
        """Keep ``data`` (a certificate called ``name``); returns it and whether it is new."""
        if not data:
            raise InvalidInput(f"certificate file {name!r} is empty")
        if len(data) > MAX_FILE_BYTES:
            raise InvalidInput(
                f"certificate file {name!r} is larger than {MAX_FILE_BYTES // 2**20} MiB"
            )
        kind = sniff(data)
        if kind == "xml":
            check_dcc(data, name)
        digest = hashlib.sha256(data).hexdigest()
        stored = StoredFile(Path(name).name, digest, len(data), MEDIA_TYPES[kind])
        target = self.path_of(stored)
        if target.exists() and self.verify(stored) == "ok":
            return stored, False
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise InvalidInput(f"cannot keep certificate file {name!r}: {exc}") from exc
        return stored, True

    def remove(self, stored: StoredFile) -> None:
        """Forget a file just written (an import that was rolled back)."""
        with contextlib.suppress(OSError):
            self.path_of(stored).unlink()

    def verify(self, stored: StoredFile) -> FileState:
        """Whether the file on disk still has its recorded SHA-256."""
        try:
            data = self.path_of(stored).read_bytes()
        except OSError:
            return "missing"
        return "ok" if hashlib.sha256(data).hexdigest() == stored.sha256 else "mismatch"

    def read(self, stored: StoredFile) -> tuple[bytes, FileState]:
        """The file's bytes and whether they match the recorded hash."""
        try:
            data = self.path_of(stored).read_bytes()
        except OSError:
            return b"", "missing"
        state: FileState = "ok" if hashlib.sha256(data).hexdigest() == stored.sha256 else "mismatch"
        return data, state
