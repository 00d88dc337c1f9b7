"""Signed checkpoints: (ledger, count, head hash, time, key) signed with the ledger's key.

A checkpoint is one JSON object; on disk, one per line, canonical JSON::

    {"count":1000,"head":"9f…","key":"ed25519:…","ledger":"lab-a","sig":"…","ts_ns":"1733…"}

``sig`` is base64 of the Ed25519 signature, by ``key``, of::

    b"etalon-ledger/1 checkpoint\\n" + canonical_json({count, head, key, ledger, ts_ns})

(``ts_ns`` a decimal string there too). The same bytes (``to_json``) can be published retained
on MQTT or written to a second store; ``from_json`` reads them back.

``CheckpointFile`` appends checkpoints to a file beside the database: one write per line with
O_APPEND, fsync'd, under an exclusive lock; append-only by convention (anyone who can write the
file can also cut it, which is why a copy kept elsewhere is worth having).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import logging
import os
from pathlib import Path
from typing import Annotated, Final

from pydantic import Field, ValidationError

from ledger._files import fsync_directory
from ledger.canonical import canonical_json
from ledger.entry import (
    LEDGER_FORMAT,
    SEQ_MAX,
    HashHex,
    LedgerId,
    NanoTime,
    WireModel,
)
from ledger.errors import CheckpointError
from ledger.keys import KEY_ID_PATTERN, PublicKey, SigningKey

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX: Final = f"{LEDGER_FORMAT} checkpoint\n".encode()
SIGNATURE_PATTERN: Final = r"^[A-Za-z0-9+/]{86}==$"
MAX_LINE: Final = 4096

KeyId = Annotated[str, Field(pattern=KEY_ID_PATTERN)]


class Checkpoint(WireModel):
    """A signed statement that ledger ``ledger`` had ``count`` entries ending with ``head``."""

    ledger: LedgerId
    count: int = Field(ge=0, le=SEQ_MAX, description="seq of the head entry (entries 1..count)")
    head: HashHex = Field(description="hash of entry `count` (the genesis hash when 0)")
    ts_ns: NanoTime = Field(description="the gateway's time when it signed")
    key: KeyId = Field(description="id of the signing key")
    sig: str = Field(pattern=SIGNATURE_PATTERN, description="base64 Ed25519 signature")

    @classmethod
    def sign(cls, key: SigningKey, ledger: str, count: int, head: str, ts_ns: int) -> Checkpoint:
        """A checkpoint of ``count``/``head`` signed with ``key``."""
        unsigned = {
            "count": count,
            "head": head,
            "key": key.key_id,
            "ledger": ledger,
            "ts_ns": str(ts_ns),
        }
        signature = key.sign(CHECKPOINT_PREFIX + canonical_json(unsigned))
        return cls(
            ledger=ledger,
            count=count,
            head=head,
            ts_ns=ts_ns,
            key=key.key_id,
            sig=base64.b64encode(signature).decode("ascii"),
        )

    def signed_message(self) -> bytes:
        """The bytes the signature is of."""
        return CHECKPOINT_PREFIX + canonical_json(
            {
                "count": self.count,
                "head": self.head,
                "key": self.key,
                "ledger": self.ledger,
                "ts_ns": str(self.ts_ns),
            }
        )

    def signature_holds(self, public_key: PublicKey) -> bool:
        """Whether ``sig`` is ``public_key``'s signature of this checkpoint (and names it)."""
        if public_key.key_id != self.key:
            return False
        try:
            signature = base64.b64decode(self.sig, validate=True)
        except (binascii.Error, ValueError):
            return False
        return public_key.verify(signature, self.signed_message())

    def to_json(self) -> bytes:
        """Canonical JSON (one object, no newline): what goes on MQTT or to a second store."""
        return canonical_json(
            {
                "count": self.count,
                "head": self.head,
                "key": self.key,
                "ledger": self.ledger,
                "sig": self.sig,
                "ts_ns": str(self.ts_ns),
            }
        )

    def to_line(self) -> bytes:
        """``to_json()`` and a newline: one line of a checkpoint file."""
        return self.to_json() + b"\n"

    @classmethod
    def from_json(cls, data: str | bytes, where: str = "checkpoint") -> Checkpoint:
        """A checkpoint from its JSON; ``CheckpointError`` says what is wrong (not whether it
        is genuine: that is ``verify``'s job)."""
        if len(data) > MAX_LINE:
            raise CheckpointError(where, f"longer than {MAX_LINE} bytes")
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "$"
            raise CheckpointError(where, f"{field}: {first['msg']}") from None


class CheckpointFile:
    """Checkpoints appended to one file, one canonical JSON line each."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, checkpoint: Checkpoint) -> None:
        """Append ``checkpoint`` and fsync; the file is created (0644: it is public) if new.

        A torn last line (a crash in the middle of an earlier write; it has no newline and was
        never a checkpoint) is cut first, so that it cannot glue itself to this one.
        """
        line = checkpoint.to_line()
        created = not self.path.exists()
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CheckpointError(str(self.path), f"cannot append: {exc.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            size = os.fstat(descriptor).st_size
            if size:
                os.lseek(descriptor, size - 1, os.SEEK_SET)
                if os.read(descriptor, 1) != b"\n":
                    line = self._end_tail(descriptor, size) + line
            written = os.write(descriptor, line)
            if written != len(line):
                raise CheckpointError(str(self.path), f"short write ({written} of {len(line)})")
            os.fsync(descriptor)
        except OSError as exc:
            raise CheckpointError(str(self.path), f"cannot append: {exc.strerror}") from None
        finally:
            os.close(descriptor)
        if created:
            fsync_directory(self.path.parent)

    def _end_tail(self, descriptor: int, size: int) -> bytes:
        """Deal with a last line that has no newline; returns what to write before ours.

        A short one is a write a crash tore (a checkpoint line is far below MAX_LINE): never a
        checkpoint, it is cut. A long one is not ours: it is kept as evidence and ended with a
        newline, so that ``verify`` reports it as a bad line.
        """
        start = max(0, size - MAX_LINE - 1)
        os.lseek(descriptor, start, os.SEEK_SET)
        tail = os.read(descriptor, size - start)
        if b"\n" not in tail and start > 0:
            log.warning("checkpoint file ends in %d+ bytes that are not a line", MAX_LINE)
            return b"\n"
        keep = start + tail.rfind(b"\n") + 1
        log.warning(
            "checkpoint file had a torn last line, cut path=%s bytes=%d", self.path, size - keep
        )
        os.ftruncate(descriptor, keep)
        return b""

    def lines(self) -> list[str]:
        """The complete lines of the file (a torn last line is left out); [] if no file."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CheckpointError(str(self.path), f"cannot read: {exc.strerror}") from None
        complete = data[: data.rfind(b"\n") + 1]
        return [line.decode("utf-8", "replace") for line in complete.splitlines()]

    def read(self) -> list[Checkpoint]:
        """Every checkpoint in the file; ``CheckpointError`` names the first bad line.

        ``verify`` also takes ``lines()`` as they are and reports a bad line as a forgery.
        """
        return [
            Checkpoint.from_json(line, f"{self.path}:{number}")
            for number, line in enumerate(self.lines(), start=1)
        ]

    def last(self) -> Checkpoint | None:
        """The last complete checkpoint line of the file, or None (reads only the file's end)."""
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - 2 * MAX_LINE - 2))
                tail = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(str(self.path), f"cannot read: {exc.strerror}") from None
        complete = tail[: tail.rfind(b"\n") + 1].splitlines()
        if not complete:
            return None
        return Checkpoint.from_json(complete[-1], f"{self.path}:last")
