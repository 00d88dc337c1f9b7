"""Verification: walk a ledger and its checkpoints, name the first broken entry and how.

``verify`` reads entries as stored rows (``Entry`` or any 8-field row in ``Entry``'s column
order, e.g. straight from a database cursor), one at a time, keeping 32 bytes per entry (a digest
index used to explain a break) and nothing else of them. While every entry follows the chain it
does the least work that proves it: link, sequence, time, header, content hash, and, for the
unsigned tail after the last checkpoint, the canonical form of the body (under a checkpoint the
signature vouches for it). At the first entry that does not follow, it reads the rest and works
out what happened:

``edited``     an entry's content no longer matches its hash; or it was changed and its hash
               recomputed (the next entry, or a checkpoint, still names the original hash)
``deleted``    entries are missing from the chain (a gap)
``inserted``   an entry that does not belong: a duplicate, a second entry with an existing
               sequence number, an entry that branches off an earlier one, a backdated one
``reordered``  entries are all there but out of chain order (moved, or renumbered)
``truncated``  the ledger has fewer entries than a signed checkpoint counts
``rewritten``  the chain is consistent but disagrees with a signed checkpoint (or a signed key
               rotation): rewritten, hashes and all, by someone without the key
``checkpoint_forged``    a checkpoint whose signature does not hold, whose key is not trusted or
                         not the one in force, from another ledger, or unreadable
``checkpoint_replayed``  an older checkpoint after a newer one
``rotation_forged``      a key rotation whose signatures do not hold or that hands over from a
                         key other than the one in force

What a clean report does not prove is in its ``notes``: entries after the last checkpoint can be
removed or rewritten unseen; a holder of the private key can sign anything.

This module screens the checkpoints given, runs the walk and writes the report; the walk (fast
path, slow path, rotations, checkpoints) is :mod:`ledger.walk`, the slow reading of a row
:mod:`ledger.rows`, the key state :mod:`ledger.key_state`, the explanation of a break
:mod:`ledger.explain`, the report's models :mod:`ledger.findings`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledger.canonical import canonical_json
from ledger.checkpoint import Checkpoint
from ledger.entry import ChainHead, Entry
from ledger.errors import CanonicalError, CheckpointError
from ledger.findings import (
    EntryFacts,
    Finding,
    KeyEpoch,
    Note,
    TamperKind,
    VerifyReport,
    report_note,
    tamper_finding,
)
from ledger.key_state import KeyState
from ledger.keys import PublicKey
from ledger.walk import Walk

# -- checkpoints given ------------------------------------------------------------------------


def screen_checkpoints(
    ledger: str, checkpoints: Iterable[Checkpoint | str | bytes]
) -> tuple[list[tuple[int, Checkpoint]], list[Finding], int]:
    usable: list[tuple[int, Checkpoint]] = []
    findings: list[Finding] = []
    latest = -1
    seen: set[Checkpoint] = set()
    total = 0
    for number, item in enumerate(checkpoints, start=1):
        total = number
        if isinstance(item, Checkpoint):
            cp = item
        else:
            try:
                cp = Checkpoint.from_json(item, f"checkpoint {number}")
            except CheckpointError as exc:
                findings.append(
                    tamper_finding(
                        TamperKind.CHECKPOINT_FORGED,
                        "checkpoint_forged.malformed",
                        None,
                        checkpoint=number,
                        problem=exc.reason,
                    )
                )
                continue
        if cp.ledger != ledger:
            findings.append(
                tamper_finding(
                    TamperKind.CHECKPOINT_FORGED,
                    "checkpoint_forged.other_ledger",
                    cp.count,
                    checkpoint=number,
                    other=cp.ledger,
                    ledger=ledger,
                )
            )
            continue
        if cp.count < latest:
            findings.append(
                tamper_finding(
                    TamperKind.CHECKPOINT_REPLAYED,
                    "checkpoint_replayed.order",
                    cp.count,
                    checkpoint=number,
                    count=cp.count,
                    latest=latest,
                )
            )
            continue
        latest = cp.count
        if cp in seen:
            continue  # the same checkpoint published twice
        seen.add(cp)
        usable.append((number, cp))
    return usable, findings, total


def group_by_count(usable: list[tuple[int, Checkpoint]]) -> dict[int, list[tuple[int, Checkpoint]]]:
    by_count: dict[int, list[tuple[int, Checkpoint]]] = {}
    for number, cp in usable:
        by_count.setdefault(cp.count, []).append((number, cp))
    return by_count


def _order(finding: Finding) -> tuple[int, int]:
    # Earliest in the chain first; at one place, an entry's finding before a checkpoint's.
    seq = finding.seq if finding.seq is not None else 0
    return (seq, 0 if finding.checkpoint is None else 1)


def unanchored_findings(walk: Walk) -> list[Finding]:
    """Checkpoints and rotations that no trusted key reaches, once everything is read."""
    findings: list[Finding] = []
    keys = walk.keys
    for pending in keys.pending:
        cp = pending.checkpoint
        code = "untrusted_chain" if pending.signature_checked else "unknown_key"
        findings.append(walk.forged(pending.number, cp, code))
    keys.pending = []
    if not keys.anchored and len(keys.epochs) > 1:
        findings.append(
            tamper_finding(
                TamperKind.ROTATION_FORGED, "rotation_forged.untrusted", keys.epochs[1][0]
            )
        )
    return findings


def beyond_head_findings(walk: Walk, beyond: list[tuple[int, Checkpoint]]) -> list[Finding]:
    """Checkpoints that count more entries than the chain has: truncation, or forgeries."""
    findings: list[Finding] = []
    truncation: Finding | None = None
    keys = walk.keys
    for number, cp in beyond:
        key = keys.current if keys.current is not None and cp.key == keys.current.key_id else None
        if key is None and keys.current is None:
            key = keys.trusted.get(cp.key)
        if key is None:
            code = "wrong_key" if walk.known_key(cp.key) else "unknown_key"
            findings.append(walk.forged(number, cp, code, keys.current))
        elif not cp.signature_holds(key):
            findings.append(walk.forged(number, cp, "signature"))
        elif truncation is None or cp.count > (truncation.last_seq or 0):
            # The checkpoint counting the most says how much is gone.
            truncation = tamper_finding(
                TamperKind.TRUNCATED,
                "truncated.checkpoint",
                walk.count + 1,
                last_seq=cp.count,
                checkpoint=number,
                count=walk.count,
            )
    if truncation is not None:
        findings.append(truncation)
    return findings


def _trusted(keys: Iterable[PublicKey]) -> dict[str, PublicKey]:
    return {key.key_id: key for key in keys}


def verify(
    entries: Iterable[Iterable[Any]],
    checkpoints: Iterable[Checkpoint | str | bytes] = (),
    trusted_keys: Iterable[PublicKey] = (),
    *,
    ledger: str,
) -> VerifyReport:
    """Verify ledger ``ledger``: its entries in stored order, its checkpoints in file order.

    ``entries``: ``Entry`` objects or rows in ``Entry``'s column order, read once, in order.
    ``checkpoints``: ``Checkpoint`` objects or their JSON lines (a bad line is a forgery).
    ``trusted_keys``: the public keys to trust: the enrolled key, or any key the ledger has
    had (a rotation links keys both ways). Never raises on bad data: it reports it.
    """
    start = ChainHead.start(ledger)
    usable, findings, total = screen_checkpoints(ledger, checkpoints)
    keys = KeyState(_trusted(trusted_keys), epochs=[[1, None, False]])
    walk = Walk(ledger, start, keys, group_by_count(usable))
    walk.start()
    walk.run(entries)
    findings.extend(walk.findings)
    if not walk.stopped:
        findings.extend(unanchored_findings(walk))
        beyond = [(n, cp) for n, cp in usable if cp.count > walk.count]
        findings.extend(beyond_head_findings(walk, beyond))
    return _report(walk, findings, total)


def _report(walk: Walk, findings: list[Finding], total: int) -> VerifyReport:
    findings.sort(key=_order)
    keys = walk.keys
    notes: list[Note] = []
    if findings:
        if walk.stopped:
            notes.append(report_note("note.stopped"))
    elif walk.signed_count == 0 and walk.count:
        notes.append(report_note("note.no_checkpoint"))
    elif walk.count > walk.signed_count:
        notes.append(
            report_note(
                "note.unsigned",
                unsigned=walk.count - walk.signed_count,
                signed_count=walk.signed_count,
            )
        )
    head = ChainHead(
        ledger=walk.ledger,
        count=walk.count,
        hash=walk.head,
        ts_ns=walk.last_ts,
        key=None if keys.current is None else keys.current.key_id,
    )
    return VerifyReport(
        ledger=walk.ledger,
        ok=not findings,
        finding=findings[0] if findings else None,
        findings=tuple(findings),
        rows=walk.position,
        head=head,
        checkpoints=total,
        checkpoints_verified=walk.verified_checkpoints,
        signed_count=walk.signed_count,
        unsigned=walk.count - walk.signed_count,
        keys=tuple(
            KeyEpoch(from_seq=epoch[0], key=epoch[1], trusted=epoch[2]) for epoch in keys.epochs
        ),
        notes=tuple(notes),
    )


# -- live tables ------------------------------------------------------------------------------


def latest_by_subject(
    entries: Iterable[Iterable[Any]], kinds: Iterable[str] | None = None
) -> dict[tuple[str, str], Entry]:
    """The latest entry for each (kind, subject), optionally of ``kinds`` only.

    Run it over entries that ``verify`` found sound; compare each live row with
    ``body_matches`` to find a table edited behind the ledger's back.
    """
    wanted = None if kinds is None else frozenset(kinds)
    latest: dict[tuple[str, str], Entry] = {}
    for raw in entries:
        entry = raw if isinstance(raw, Entry) else Entry(*raw)
        if wanted is None or entry.kind in wanted:
            latest[(entry.kind, entry.subject)] = entry
    return latest


def body_matches(entry: Entry, current: Mapping[str, Any]) -> bool:
    """Whether ``current`` (a live row as a JSON object) is exactly ``entry``'s body."""
    try:
        return canonical_json(dict(current)) == entry.body_json.encode()
    except CanonicalError:
        return False


__all__ = [
    "EntryFacts",
    "Finding",
    "KeyEpoch",
    "Note",
    "TamperKind",
    "VerifyReport",
    "body_matches",
    "latest_by_subject",
    "verify",
]
