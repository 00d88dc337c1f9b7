"""Key rotation, recorded in the chain.

A ``key_rotation`` entry's body is a statement and two signatures of it::

    statement = {"ledger", "seq", "prev", "old_key", "old_public_key", "new_key", "new_public_key"}
    message   = b"etalon-ledger/1 key rotation\\n" + canonical_json(statement)
    body      = statement + {"old_signature": b64(sign_old(message)),
                             "new_signature": b64(sign_new(message))}

The old key hands over to the new one; the new key accepts, naming the old key id: a verifier
that trusts either key can follow the chain of keys in both directions. ``seq`` and ``prev`` are
the rotation entry's own, so a rotation is also a checkpoint signed by both keys: rewriting any
entry before it, even with every hash recomputed, breaks the statement.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final

from ledger.canonical import canonical_json
from ledger.entry import LEDGER_FORMAT
from ledger.keys import PublicKey, SigningKey, is_key_id

ROTATION_PREFIX: Final = f"{LEDGER_FORMAT} key rotation\n".encode()
STATEMENT_FIELDS: Final = (
    "ledger",
    "seq",
    "prev",
    "old_key",
    "old_public_key",
    "new_key",
    "new_public_key",
)
BODY_FIELDS: Final = frozenset((*STATEMENT_FIELDS, "old_signature", "new_signature"))


def rotation_message(statement: dict[str, Any]) -> bytes:
    """The bytes both keys sign."""
    return ROTATION_PREFIX + canonical_json(statement)


def rotation_body(
    ledger: str, seq: int, prev: str, old: SigningKey, new: SigningKey
) -> dict[str, Any]:
    """The body of the ``key_rotation`` entry at ``seq`` (after ``prev``), ``old`` to ``new``."""
    statement: dict[str, Any] = {
        "ledger": ledger,
        "seq": seq,
        "prev": prev,
        "old_key": old.key_id,
        "old_public_key": old.public_key.to_text(),
        "new_key": new.key_id,
        "new_public_key": new.public_key.to_text(),
    }
    message = rotation_message(statement)
    return statement | {
        "old_signature": base64.b64encode(old.sign(message)).decode("ascii"),
        "new_signature": base64.b64encode(new.sign(message)).decode("ascii"),
    }


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotation body that is well formed and whose two signatures hold."""

    ledger: str
    seq: int
    prev: str
    old: PublicKey
    new: PublicKey


class RotationProblem(Exception):
    """Why a rotation body is refused: ``code`` is ``malformed`` or ``signature``."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(detail)


def _signature(body: dict[str, Any], field: str) -> bytes:
    text = body[field]
    try:
        signature = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64:
        raise RotationProblem("malformed", f"{field} is not a base64 Ed25519 signature")
    return signature


def _public(body: dict[str, Any], field: str, id_field: str) -> PublicKey:
    text = body[field]
    if not isinstance(text, str):
        raise RotationProblem("malformed", f"{field} is not text")
    try:
        key = PublicKey.from_text(text)
    except ValueError as exc:
        raise RotationProblem("malformed", f"{field}: {exc}") from None
    if key.to_text() != text:
        raise RotationProblem("malformed", f"{field} is not in its canonical base64 form")
    if body[id_field] != key.key_id:
        raise RotationProblem("malformed", f"{id_field} does not name {field}")
    return key


def read_rotation(body: dict[str, Any]) -> Rotation:
    """The rotation in ``body`` if it is well formed and both signatures hold.

    Raises ``RotationProblem``. Whether it belongs where it stands (ledger, seq, prev, the key
    in force) is the verifier's question.
    """
    missing = BODY_FIELDS - body.keys()
    extra = body.keys() - BODY_FIELDS
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(sorted(missing))}")
        if extra:
            parts.append(f"unknown {', '.join(sorted(extra))}")
        raise RotationProblem("malformed", "; ".join(parts))
    ledger, seq, prev = body["ledger"], body["seq"], body["prev"]
    if not isinstance(ledger, str) or type(seq) is not int or not isinstance(prev, str):
        raise RotationProblem("malformed", "ledger, seq or prev has the wrong type")
    if not (isinstance(body["old_key"], str) and is_key_id(body["old_key"])):
        raise RotationProblem("malformed", "old_key is not a key id")
    if not (isinstance(body["new_key"], str) and is_key_id(body["new_key"])):
        raise RotationProblem("malformed", "new_key is not a key id")
    old = _public(body, "old_public_key", "old_key")
    new = _public(body, "new_public_key", "new_key")
    if old == new:
        raise RotationProblem("malformed", "the old and the new key are the same")
    message = rotation_message({field: body[field] for field in STATEMENT_FIELDS})
    if not old.verify(_signature(body, "old_signature"), message):
        raise RotationProblem("signature", "the old key's signature does not hold")
    if not new.verify(_signature(body, "new_signature"), message):
        raise RotationProblem("signature", "the new key's signature does not hold")
    return Rotation(ledger=ledger, seq=seq, prev=prev, old=old, new=new)
