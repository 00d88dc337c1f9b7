"""Floor 2: the record ledger — canonical content, hash chain, signed checkpoints, verification.

A pure library (no I/O beyond the key and checkpoint files it is pointed at): the gateway's
record store and the national hub both use it. See docs/ledger.md.
"""

from ledger.canonical import (
    MAX_SAFE_INTEGER,
    canonical_json,
    canonical_reference,
    check_canonical_object,
    parse_json,
)
from ledger.checkpoint import Checkpoint, CheckpointFile
from ledger.entry import (
    LEDGER_FORMAT,
    ROTATION_KIND,
    ChainHead,
    Entry,
    content_bytes,
    genesis_hash,
)
from ledger.errors import (
    CanonicalError,
    ChainError,
    CheckpointError,
    EntryError,
    KeyFileError,
    LedgerError,
    SegmentError,
)
from ledger.findings import EntryFacts, Finding, KeyEpoch, Note, TamperKind, VerifyReport
from ledger.keys import PublicKey, SigningKey, key_id_of
from ledger.messages import MESSAGES, render
from ledger.segment import (
    SCHEMAS,
    Segment,
    SegmentReason,
    SegmentVerdict,
    WireEntry,
    export_segment,
    segment_json_schema,
    verify_segment,
)
from ledger.verification import body_matches, latest_by_subject, verify
from ledger.writer import LedgerWriter

__all__ = [
    "LEDGER_FORMAT",
    "MAX_SAFE_INTEGER",
    "MESSAGES",
    "ROTATION_KIND",
    "SCHEMAS",
    "CanonicalError",
    "ChainError",
    "ChainHead",
    "Checkpoint",
    "CheckpointError",
    "CheckpointFile",
    "Entry",
    "EntryError",
    "EntryFacts",
    "Finding",
    "KeyEpoch",
    "KeyFileError",
    "LedgerError",
    "LedgerWriter",
    "Note",
    "PublicKey",
    "Segment",
    "SegmentError",
    "SegmentReason",
    "SegmentVerdict",
    "SigningKey",
    "TamperKind",
    "VerifyReport",
    "WireEntry",
    "body_matches",
    "canonical_json",
    "canonical_reference",
    "check_canonical_object",
    "content_bytes",
    "export_segment",
    "genesis_hash",
    "key_id_of",
    "latest_by_subject",
    "parse_json",
    "render",
    "segment_json_schema",
    "verify",
    "verify_segment",
]
