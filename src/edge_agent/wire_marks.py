"""The fields the gateway adds to a wire-format reading (schema version 1) after it was read,
beside :mod:`edge_agent.wire`: the marks of its calibration (bits, quality, reason) and the
corrected value, its u, its certificate and conformity (docs/wire-format.md, docs/corrections.md).
The gateway's spool keeps readings in the wire format, so what it adds is written in it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def marked_quality(quality: str) -> str:
    """The quality of a reading marked after it was read (by its calibration, at the gateway):
    uncertain, unless bad."""
    return "uncertain" if quality == "good" else quality


def marked_reason(previous: str | None, added: str | None) -> str | None:
    """The reason of a reading marked after it was read: its own, then what marked it."""
    return added if not previous else f"{previous}; {added}"


def mark(reading: dict[str, Any], calibration: int, reason: str | None) -> None:
    """Mark a wire-format reading after it was read (by its calibration, at the gateway): its
    ``calibration`` bits, its quality (:func:`marked_quality`) and its reason
    (:func:`marked_reason`)."""
    reading["calibration"] = reading.get("calibration", 0) | calibration
    reading["quality"] = marked_quality(reading["quality"])
    reading["reason"] = marked_reason(reading.get("reason"), reason)


def put_corrected(
    readings: Sequence[dict[str, Any]],
    index: Iterable[int],
    corrected: Iterable[float],
    u: Iterable[float],
    certificate_ids: Iterable[int],
    conformity: Iterable[int],
    certificates: Mapping[int, str],
) -> None:
    """The fields the gateway's correction adds to wire-format readings corrected in full, from
    columns: reading ``index[k]`` takes the k-th corrected value, its u (``u_corrected``), its
    certificate's id and identifier (``certificates``: id → identifier) and, when the code is
    not negative (no tolerance), its conformity code."""
    for i, value, u_value, certificate_id, code in zip(
        index, corrected, u, certificate_ids, conformity, strict=False
    ):
        reading = readings[i]
        reading["corrected"] = value
        reading["u_corrected"] = u_value
        reading["certificate"] = certificates[certificate_id]
        reading["certificate_id"] = certificate_id
        if code >= 0:
            reading["conformity"] = code
