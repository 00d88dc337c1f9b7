"""Ledger entries: the format, the content hash, the chain head.

An entry is one append-only record of a ledger (one ledger per lab gateway)::

    seq      1, 2, 3 ... contiguous
    ts_ns    the gateway's time when it appended the entry (ns since the epoch, UTC); never
             before the previous entry's. An agent's or instrument's own time goes in the body.
    kind     what the entry records: audit, standard, certificate, alert, key_rotation ...
             (an open set of names: lower case, digits, _ and dotted namespaces)
    subject  what it is about (a standard's id, a channel, an alert...)
    actor    who or what made it (a user, "gateway", an agent id)
    body     a JSON object (canonical JSON: no floats, integers within ±2**53)
    prev     the hash of entry seq − 1; for seq 1, the genesis hash of the ledger
    hash     SHA-256 of the entry's canonical content (all of the above), 64 lower-case hex

The content that is hashed is the canonical JSON (see ``ledger.canonical``) of the object with
the seven fields above, where ``ts_ns`` is written as a decimal **string** (a nanosecond time is
beyond the ±2**53 integer range). The genesis hash is the SHA-256 of the canonical JSON of
``{"format": "etalon-ledger/1", "ledger": LEDGER_ID}``: two ledgers never share a chain.

``Entry`` is a named tuple whose fields are the stored columns, in this order: a row read from
SQLite or PostgreSQL is an entry as it is (``Entry(*row)``), and ``verify`` reads such rows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, NamedTuple

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
)

from ledger.canonical import canonical_json
from ledger.errors import CanonicalError, EntryError

LEDGER_FORMAT: Final = "etalon-ledger/1"

LEDGER_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
KIND_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
HASH_PATTERN: Final = r"^[0-9a-f]{64}$"
KIND_MAX: Final = 64
SUBJECT_MAX: Final = 512
ACTOR_MAX: Final = 256
TS_NS_MAX: Final = 2**63 - 1
SEQ_MAX: Final = 2**53 - 1

ROTATION_KIND: Final = "key_rotation"
"""The one kind with a meaning to the ledger itself: a change of signing key."""

_LEDGER_ID: Final = re.compile(LEDGER_ID_PATTERN)
_KIND: Final = re.compile(KIND_PATTERN)
_HASH: Final = re.compile(HASH_PATTERN)
# Controls (C0, DEL, C1), line and paragraph separators and lone surrogates would let a subject
# or actor forge a log line or break a UTF-8 reader.
_NOT_PLAIN: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


class WireModel(BaseModel):
    """Frozen, strict, refusing unknown fields: the base of the ledger's wire formats."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _decimal_ns(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str):
        if not value.isdigit() or not value.isascii() or (len(value) > 1 and value[0] == "0"):
            raise ValueError("a nanosecond time is a decimal string without sign or leading 0")
        return int(value)
    if info.mode == "json":
        raise ValueError("a nanosecond time is written as a decimal string in JSON")
    return value


NS_STRING_PATTERN: Final = r"^(0|[1-9][0-9]{0,18})$"

NanoTime = Annotated[
    int,
    BeforeValidator(_decimal_ns),
    Field(ge=0, le=TS_NS_MAX),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": NS_STRING_PATTERN,
            "description": "nanoseconds since 1970-01-01 UTC, as a decimal string",
        }
    ),
]
"""An int in Python, a decimal string in JSON (beyond the ±2**53 range of JSON readers)."""

LedgerId = Annotated[str, Field(pattern=LEDGER_ID_PATTERN)]
HashHex = Annotated[str, Field(pattern=HASH_PATTERN)]


def check_ledger_id(value: object) -> str:
    """``value`` if it is a valid ledger id, else ``EntryError``."""
    if not isinstance(value, str) or _LEDGER_ID.match(value) is None:
        raise EntryError("ledger", f"{value!r} is not a ledger id ({LEDGER_ID_PATTERN})")
    return value


def check_text(field: str, value: object, limit: int) -> str:
    """``value`` if it is plain text of 1 to ``limit`` characters, else ``EntryError``."""
    if not isinstance(value, str):
        raise EntryError(field, f"expected text, got {type(value).__name__}")
    if not 1 <= len(value) <= limit:
        raise EntryError(field, f"must be 1 to {limit} characters, not {len(value)}")
    bad = _NOT_PLAIN.search(value)
    if bad is not None:
        raise EntryError(field, f"holds the control character U+{ord(bad.group()):04X}")
    return value


# Kinds and actors are few and repeat: once found good, a set says so (bounded, exact str only).
_GOOD_KINDS: Final[set[str]] = set()
_GOOD_ACTORS: Final[set[str]] = set()
_GOOD_LIMIT: Final = 1024


def _remember(good: set[str], value: str) -> None:
    if len(good) >= _GOOD_LIMIT:
        good.clear()
    good.add(value)


def check_header(seq: object, ts_ns: object, kind: object, subject: object, actor: object) -> None:
    """Refuse header fields that break the entry format (``EntryError`` naming the field)."""
    if type(seq) is not int or not 1 <= seq <= SEQ_MAX:
        raise EntryError("seq", f"must be an integer from 1, not {seq!r}")
    if type(ts_ns) is not int or not 0 <= ts_ns <= TS_NS_MAX:
        raise EntryError("ts_ns", f"must be an integer of nanoseconds from 0, not {ts_ns!r}")
    if type(kind) is not str or kind not in _GOOD_KINDS:
        if not isinstance(kind, str) or len(kind) > KIND_MAX or _KIND.match(kind) is None:
            raise EntryError("kind", f"{kind!r} is not a kind name ({KIND_PATTERN}, ≤{KIND_MAX})")
        if type(kind) is str:
            _remember(_GOOD_KINDS, kind)
    check_text("subject", subject, SUBJECT_MAX)
    if type(actor) is not str or actor not in _GOOD_ACTORS:
        check_text("actor", actor, ACTOR_MAX)
        if type(actor) is str:
            _remember(_GOOD_ACTORS, actor)


def check_hash(field: str, value: object) -> str:
    """``value`` if it is a 64-hex-digit SHA-256, else ``EntryError``."""
    if not isinstance(value, str) or _HASH.match(value) is None:
        raise EntryError(field, f"{value!r} is not a SHA-256 in lower-case hex")
    return value


def genesis_hash(ledger_id: str) -> str:
    """The ``prev`` of entry 1 of ledger ``ledger_id``."""
    check_ledger_id(ledger_id)
    return hashlib.sha256(
        canonical_json({"format": LEDGER_FORMAT, "ledger": ledger_id})
    ).hexdigest()


CONTENT_FORMAT: Final = (
    b'{"actor":%b,"body":%b,"kind":%b,"prev":%b,"seq":%d,"subject":%b,"ts_ns":"%d"}'
)
"""The canonical content, keys in JCS order; each %b is a JSON string (the body: an object)."""


def content_bytes(
    seq: int, ts_ns: int, kind: str, subject: str, actor: str, body: bytes, prev: str
) -> bytes:
    """The canonical content of an entry, from its canonical body bytes (what is hashed).

    orjson writes a JSON string as JCS does (for text without lone surrogates, which the
    entry format refuses); the body must already be canonical.
    """
    dumps = orjson.dumps
    return CONTENT_FORMAT % (
        dumps(actor),
        body,
        dumps(kind),
        dumps(prev),
        seq,
        dumps(subject),
        ts_ns,
    )


class Entry(NamedTuple):
    """One ledger entry; its fields are the stored columns (``body_json`` is canonical JSON)."""

    seq: int
    ts_ns: int
    kind: str
    subject: str
    actor: str
    body_json: str
    prev: str
    hash: str

    @classmethod
    def create(
        cls,
        seq: int,
        ts_ns: int,
        kind: str,
        subject: str,
        actor: str,
        body: Mapping[str, Any],
        prev: str,
    ) -> Entry:
        """A new entry with its hash; ``EntryError``/``CanonicalError`` name a bad field."""
        check_header(seq, ts_ns, kind, subject, actor)
        check_hash("prev", prev)
        if type(body) is not dict:
            if not isinstance(body, Mapping):
                raise EntryError("body", f"must be a JSON object, not {type(body).__name__}")
            body = dict(body)
        try:
            canonical_body = canonical_json(body)
        except CanonicalError as exc:
            raise EntryError(f"body{exc.path[1:]}", exc.reason) from None
        content = content_bytes(seq, ts_ns, kind, subject, actor, canonical_body, prev)
        digest = hashlib.sha256(content).hexdigest()
        return cls(seq, ts_ns, kind, subject, actor, canonical_body.decode(), prev, digest)

    @property
    def body(self) -> dict[str, Any]:
        """The body as a new dict (parsing ``body_json``; changing it changes no entry)."""
        value = orjson.loads(self.body_json)
        if not isinstance(value, dict):
            raise EntryError("body", "the stored body is not a JSON object")
        return value

    def content(self) -> bytes:
        """The canonical content (all but ``hash``) as stored: what ``hash`` must be of."""
        return content_bytes(
            self.seq,
            self.ts_ns,
            self.kind,
            self.subject,
            self.actor,
            self.body_json.encode(),
            self.prev,
        )

    def computed_hash(self) -> str:
        """SHA-256 of ``content()``, hex (equal to ``hash`` in an intact entry)."""
        return hashlib.sha256(self.content()).hexdigest()

    def to_wire(self) -> dict[str, Any]:
        """The entry as a JSON object: the hashed content plus ``hash`` (``ts_ns`` a string)."""
        return {
            "actor": self.actor,
            "body": self.body,
            "hash": self.hash,
            "kind": self.kind,
            "prev": self.prev,
            "seq": self.seq,
            "subject": self.subject,
            "ts_ns": str(self.ts_ns),
        }


class ChainHead(WireModel):
    """Where a ledger stands: its entry count, the last hash and time, the key in force."""

    ledger: LedgerId
    count: int = Field(ge=0, le=SEQ_MAX, description="seq of the last entry (0: empty)")
    hash: HashHex = Field(description="hash of the last entry (the genesis hash when empty)")
    ts_ns: NanoTime = Field(default=0, description="time of the last entry (0 when empty)")
    key: str | None = Field(
        default=None,
        pattern=r"^ed25519:[0-9a-f]{32}$",
        description="key id in force at this count (null until a first checkpoint binds one)",
    )

    @classmethod
    def start(cls, ledger: str) -> ChainHead:
        """The head of an empty ledger."""
        return cls(ledger=ledger, count=0, hash=genesis_hash(ledger))
