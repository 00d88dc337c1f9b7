"""The lines of a plain batch, built a column at a time: the common case of the gateway's hot
path (every value a finite float, no reason, nothing to correct row by row), at a fraction of
the cost of :class:`gateway.tsdb.lines.LineBuilder`'s loop, with the very same text (tested
line for line against it). Any other batch is left to the loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
import orjson

from gateway.tsdb.points import QUALITY_CODE, Row

QUALITY_FIELD = {name: f"quality={code}i" for name, code in QUALITY_CODE.items()}
"""A quality's field as a line writes it."""

_PLAIN = frozenset({float})
_NO_U = frozenset({type(None), msgspec.UnsetType})
_ONE_INT = frozenset({int})


def plain_lines(
    rows: Sequence[Row],
    keys: list[str],
    full: tuple[list[str], list[str], Iterable[str]] | None,
) -> list[str] | None:
    """The lines of a batch with nothing to choose row by row — every value a finite float,
    every u a finite float or every u absent, no reason, integer timestamps, a known quality,
    and either no correction or every row corrected in full (``full``: the corrected values'
    texts, their u's, and the fields after them with the space before the timestamp) — built a
    column at a time: the very text of the loop of
    :meth:`gateway.tsdb.lines.LineBuilder._row_lines`, at a fraction of its cost. None for any
    other batch (nothing consumed): the loop writes it."""
    values = [row.value for row in rows]
    if set(map(type, values)) != _PLAIN:
        return None
    value_texts = orjson.dumps(values).decode()[1:-1].split(",")
    if "null" in value_texts:  # NaN or an infinity: the loop refuses it
        return None
    us = [row.u for row in rows]
    u_types = set(map(type, us))
    u_texts = None
    if u_types == _PLAIN:
        u_texts = orjson.dumps(us).decode()[1:-1].split(",")
        if "null" in u_texts:
            return None
    elif not u_types <= _NO_U:
        return None
    if any([row.reason for row in rows]):
        return None
    stamps = [row.ts for row in rows]
    if set(map(type, stamps)) != _ONE_INT:
        return None
    try:  # the integers' texts, as str() writes them, in one call
        times = orjson.dumps(stamps).decode()[1:-1].split(",")
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return None
    qualities = list(map(QUALITY_FIELD.get, [row.quality for row in rows]))
    if None in qualities:
        return None
    if full is None:
        if [row.corrected for row in rows].count(None) != len(rows) or [
            row.conformity for row in rows
        ].count(None) != len(rows):
            return None  # a spool entry of an older gateway
        if u_texts is None:
            return [
                f"{k} value={v},{q} {t}"
                for k, v, q, t in zip(keys, value_texts, qualities, times, strict=True)
            ]
        return [
            f"{k} value={v},{q},u={u} {t}"
            for k, v, q, u, t in zip(keys, value_texts, qualities, u_texts, times, strict=True)
        ]
    corrected, u_corrected, ends = full
    if "" in corrected:
        return None
    if u_texts is None:
        return [
            f"{k} value={v},{q},corrected={c},u_corrected={cu}{e}{t}"
            for k, v, q, c, cu, e, t in zip(
                keys, value_texts, qualities, corrected, u_corrected, ends, times, strict=True
            )
        ]
    return [
        f"{k} value={v},{q},u={u},corrected={c},u_corrected={cu}{e}{t}"
        for k, v, q, u, c, cu, e, t in zip(
            keys, value_texts, qualities, u_texts, corrected, u_corrected, ends, times,
            strict=True,
        )
    ]  # fmt: skip
