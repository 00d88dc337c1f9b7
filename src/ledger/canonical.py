"""Canonical JSON: one byte string per value, the same in every language.

The rules are RFC 8785 (JSON Canonicalization Scheme, JCS) restricted to the values a ledger
needs, so that any JCS implementation reproduces our bytes exactly:

- values: objects (string keys), arrays, strings, integers, ``true``, ``false``, ``null``;
- **no floats**: a measured value or a money amount goes in as a decimal string (``"10.000012"``)
  or an integer; a float is refused, because its text is not the same in every language;
- integers within the I-JSON range ±(2**53 − 1) (what a JavaScript number holds exactly); a larger
  one (a nanosecond timestamp, for instance) is refused: pass it as a decimal string;
- objects: keys sorted by their UTF-16 code units (JCS), no duplicate keys;
- no whitespace; ``:`` and ``,`` as separators;
- strings: UTF-8; ``"`` and ``\\`` escaped, U+0008/09/0A/0C/0D as ``\\b \\t \\n \\f \\r``, the
  other controls below U+0020 as ``\\u00xx`` (lower-case hex), everything else as itself (no
  ``\\/``, no ``\\u`` for non-ASCII). A lone surrogate is not text and is refused.
- strings are **not** normalised (JCS does not): NFC and NFD spellings of one word are different
  content. The ledger keeps what it was given, byte for byte.

``canonical_json`` is the fast path (a type walk, then orjson, whose output matches these rules
for this domain; keys with characters beyond U+FFFF go through the reference encoder because
orjson sorts by code point). ``canonical_reference`` is the rules written out in plain Python:
the tests hold the two equal.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import orjson

from ledger.errors import CanonicalError

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""The largest integer a canonical value may hold (I-JSON, RFC 7493 §2.2)."""

MAX_DEPTH: Final = 64
"""How deeply objects and arrays may nest in a value given to ``canonical_json``."""

SORTED: Final = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
# orjson sorts keys by code point; JCS by UTF-16 code unit. The two differ only when a key holds a
# character beyond U+FFFF (a surrogate pair in UTF-16), so only such keys leave the fast path.
_ASTRAL: Final = re.compile("[\U00010000-\U0010ffff]")
_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_ESCAPES["\r"] = "\\r"


class _Refused(Exception):
    """Raised deep in a value; each level adds its key or index on the way out."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.where: list[str | int] = []


def _path(where: list[str | int]) -> str:
    parts = ["$"]
    for step in reversed(where):
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif step.isidentifier():
            parts.append(f".{step}")
        else:
            # Non-ASCII keys read best as themselves; a lone surrogate cannot be printed.
            printable = step.encode("utf-8", "surrogatepass") == step.encode("utf-8", "replace")
            parts.append(f"[{json.dumps(step, ensure_ascii=not printable)}]")
    return "".join(parts)


def _refuse_scalar(value: object) -> _Refused:
    if isinstance(value, float):
        return _Refused(
            f"a float ({value!r}) has no canonical form: pass a decimal string such as "
            f'"{value!r}" or an integer'
        )
    if type(value).__name__ == "Decimal":
        return _Refused(f"a Decimal ({value}) is not JSON: pass it as a string, str(value)")
    return _Refused(f"a {type(value).__name__} is not a JSON value")


def _int_ok(value: int) -> None:
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise _Refused(
            f"the integer {value} is outside ±(2**53 − 1), the range every JSON reader holds "
            f"exactly: pass it as a decimal string"
        )


def _check_object(value: dict[Any, Any], depth: int) -> bool:
    if depth >= MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
    astral = False
    for key, item in value.items():
        if type(key) is not str and not isinstance(key, str):
            raise _Refused(f"an object key must be a string, not {type(key).__name__}")
        if not key.isascii() and _ASTRAL.search(key) is not None:
            astral = True
        item_kind = type(item)
        if item_kind is str or item_kind is bool or item is None:
            continue
        if item_kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
            continue
        if _check_member(item, depth + 1, key):
            astral = True
    return astral


def _check_array(value: list[Any] | tuple[Any, ...], depth: int) -> bool:
    if depth >= MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
    astral = False
    for index, item in enumerate(value):
        if _check_member(item, depth + 1, index):
            astral = True
    return astral


def _check_member(item: Any, depth: int, where: str | int) -> bool:
    """``_check`` of an object's member or an array's item; a refusal adds where it is."""
    try:
        return _check(item, depth)
    except _Refused as refused:
        refused.where.append(where)
        raise


def _check(value: Any, depth: int) -> bool:
    """Refuse what has no canonical form; True when a key needs the reference sort."""
    kind = type(value)
    if kind is dict:
        return _check_object(value, depth)
    if kind is list or kind is tuple:
        return _check_array(value, depth)
    if kind is str or kind is bool or value is None:
        return False
    if kind is int:
        _int_ok(value)
        return False
    # Subclasses: OrderedDict, StrEnum and IntEnum members are what they extend.
    if isinstance(value, dict):
        return _check_object(value, depth)
    if isinstance(value, list | tuple):
        return _check_array(value, depth)
    if isinstance(value, str | bool):
        return False
    if isinstance(value, int):
        _int_ok(value)
        return False
    raise _refuse_scalar(value)


def canonical_json(value: object) -> bytes:
    """The canonical JSON bytes of ``value``; ``CanonicalError`` names the path of a refusal."""
    try:
        astral = _check(value, 0)
    except _Refused as refused:
        raise CanonicalError(_path(refused.where), refused.reason) from None
    if astral:
        return canonical_reference(value)
    try:
        # A copy of the right size: orjson's result keeps its 4 KB buffer, which a caller
        # holding many small results would pay for.
        return bytes(memoryview(orjson.dumps(value, option=SORTED)))
    except (TypeError, orjson.JSONEncodeError) as exc:
        # A lone surrogate: the reference encoder finds where it is.
        canonical_reference(value)
        raise CanonicalError("$", str(exc)) from None


# -- the reference encoder: the rules, written out ------------------------------------------------


def _quote(text: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise _Refused(f"a lone surrogate (U+{code:04X}) is not Unicode text")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _encode(value: Any, depth: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(str.__str__(value))
    if isinstance(value, int):
        _int_ok(value)
        return int.__repr__(value)
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
        for key in value:
            if not isinstance(key, str):
                raise _Refused(f"an object key must be a string, not {type(key).__name__}")
        members = []
        for key in sorted(value, key=_utf16_order):
            quoted_key = _quote(key)  # a bad key is the object's fault: no path step for it
            try:
                members.append(f"{quoted_key}:{_encode(value[key], depth + 1)}")
            except _Refused as refused:
                refused.where.append(key)
                raise
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_encode(item, depth + 1))
            except _Refused as refused:
                refused.where.append(index)
                raise
        return "[" + ",".join(items) + "]"
    raise _refuse_scalar(value)


def canonical_reference(value: object) -> bytes:
    """The canonical bytes by the plain-Python reference encoder (slow; the rules as code)."""
    try:
        return _encode(value, 0).encode("utf-8")
    except _Refused as refused:
        raise CanonicalError(_path(refused.where), refused.reason) from None


# -- reading canonical text back ----------------------------------------------------------------


def has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(item) for item in value.values())
    if isinstance(value, list):
        return any(has_float(item) for item in value)
    return False


# Screening canonical text for floats without parsing it again. In orjson's output a float is
# always [:,[] then -?digits then one of [.eE] (orjson never writes a float without a fraction
# or an exponent). Deleting digits and "-" and mapping [:,[] to ":" and [.eE] to "." turns every
# float into ":.", so a text without ":." after the translation holds no float. A hit may be a
# string such as "10:30.5" and is settled by walking the parsed value.
FLOAT_SCREEN: Final = bytes(
    ord(":") if code in b":,[" else ord(".") if code in b".eE" else ord("x") for code in range(256)
)
FLOAT_SCREEN_DELETE: Final = b"0123456789-"


def has_astral(raw: bytes) -> bool:
    """Whether UTF-8 ``raw`` holds a character beyond U+FFFF (lead bytes F0-F4)."""
    return b"\xf0" in raw or b"\xf3" in raw or b"\xf1" in raw or b"\xf2" in raw or b"\xf4" in raw


def canonical_object_bytes(text: object) -> bytes | None:
    """``text`` as bytes when it is the canonical form of a JSON object, else None (fast).

    The verifier does the same inline; ``check_canonical_object`` says why a text is refused.
    """
    if type(text) is not str:
        return None
    try:
        raw = text.encode()
        value = orjson.loads(raw)
        if type(value) is not dict:
            return None
        same = orjson.dumps(value, option=SORTED) == raw
    except (ValueError, TypeError):
        # orjson's JSONDecodeError is a ValueError, its JSONEncodeError (an integer beyond the
        # safe range, a lone surrogate) a TypeError; UnicodeEncodeError is a ValueError.
        return None
    if b":." in raw.translate(FLOAT_SCREEN, FLOAT_SCREEN_DELETE) and has_float(value):
        return None
    if not raw.isascii() and has_astral(raw):
        # A character beyond U+FFFF: keys may sort differently in UTF-16 (JCS) than by code point.
        try:
            same = canonical_reference(value) == raw
        except CanonicalError:
            return None
    return raw if same else None


def canonical_json_parsed(value: dict[str, Any]) -> bytes | None:
    """The canonical bytes of an object parsed from JSON, or None if it has none (a float, an
    integer beyond ±2**53, a lone surrogate). Faster than ``canonical_json`` (no type walk: a
    parsed value holds JSON types only); not for values built in Python (orjson would write a
    NaN as null, a datetime as a string)."""
    try:
        out = orjson.dumps(value, option=SORTED)
    except TypeError:
        return None
    if b":." in out.translate(FLOAT_SCREEN, FLOAT_SCREEN_DELETE) and has_float(value):
        return None
    if not out.isascii() and has_astral(out):
        try:
            return canonical_reference(value)
        except CanonicalError:
            return None
    return out


def check_canonical_object(text: object) -> bytes:
    """``text`` as bytes if it is the canonical form of a JSON object; else ``CanonicalError``."""
    if not isinstance(text, str):
        raise CanonicalError("$", f"expected JSON text, got {type(text).__name__}")
    value = parse_json(text)
    if not isinstance(value, dict):
        raise CanonicalError("$", f"expected a JSON object, got {type(value).__name__}")
    canonical = canonical_json(value)
    if canonical != text.encode():
        raise CanonicalError("$", "the text is valid JSON but not in canonical form")
    return canonical


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise _Refused(f"a float ({text}) has no canonical form: write it as a decimal string")


def _no_constant(text: str) -> Any:
    raise _Refused(f"{text} is not JSON")


def _bounded_int(text: str) -> int:
    value = int(text)
    _int_ok(value)
    return value


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_float=_no_float,
    parse_constant=_no_constant,
    parse_int=_bounded_int,
)


def parse_json(text: str | bytes) -> Any:
    """Parse JSON under the canonical value rules (no floats, no duplicate keys, safe integers).

    Any text is accepted (whitespace, key order); what it holds must have a canonical form.
    Raises ``CanonicalError``.
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return _DECODER.decode(text)
    except _Refused as refused:
        raise CanonicalError("$", refused.reason) from None
    except UnicodeDecodeError as exc:
        raise CanonicalError("$", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CanonicalError(
            "$", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise CanonicalError("$", "nested too deeply") from None
