"""``etalon agent -c FILE --once``: read every channel once (or ``--count N`` ticks) and print a
table or JSON; nothing is published, no spool is opened, no broker is needed.

Exit status: 0 when every channel read ``good``; 1 otherwise (the failing channels are named on
stderr), or for a bad config or an unknown ``--instrument``; 130 when Ctrl-C ends it first.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import struct
import sys
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from core.config_loader import load_config
from core.errors import ConfigError
from core.exits import EXIT_CONFIG, EXIT_OK
from core.i18n import MessageTable, load_table, register, t, translate_reason
from core.logs import setup_logging
from edge_agent.config import AgentConfig
from edge_agent.once import OnceReading, read_once, selected

EXIT_NOT_GOOD = 1
"""Some channel did not read ``good``."""
EXIT_INTERRUPTED = 130
"""Ctrl-C before every channel was read (128 + SIGINT, as a shell reports it)."""

FLOAT32_MAX = 3.4028234663852886e38
"""The largest finite float32."""

ONCE_MESSAGES: MessageTable = load_table(__package__, "once.json")
"""Texts of ``etalon agent --once``."""

register(ONCE_MESSAGES)


T = TypeVar("T")


async def _interruptible(reads: Coroutine[Any, Any, T], outside: Any) -> T:
    """``reads``, cancelled by Ctrl-C from inside the loop: a KeyboardInterrupt raised at any
    bytecode could land in asyncio.run's own shutdown and leave the loop half-closed (its
    ``__del__`` then prints a traceback)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        return await reads
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, outside)


def once_main(
    config_path: Path,
    instruments: Sequence[str] | None,
    count: int,
    as_json: bool,
    lang: str,
) -> int:
    """Read the channels and print them; returns the exit status."""
    try:
        config = load_config(config_path, AgentConfig)
    except ConfigError as exc:
        print(t("agent.invalid", lang, file=config_path), file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        chosen = selected(config, instruments)
    except KeyError as exc:
        known = ", ".join(i.name for i in config.instruments)
        print(
            t("once.unknown_instrument", lang, name=exc.args[0], file=config_path, known=known),
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if not chosen:
        # Nothing read is nothing shown to read `good`: no "0 of 0 good" with status 0.
        known = ", ".join(i.name for i in config.instruments)
        print(t("once.none_enabled", lang, file=config_path, known=known), file=sys.stderr)
        return EXIT_NOT_GOOD
    # Drivers log state changes at INFO; a commissioning table needs only their warnings.
    setup_logging("WARNING", config.log.format)

    # A look at the instruments, not a process to stop cleanly: Ctrl-C ends it at once (the
    # drivers close as the tasks are cancelled), with no table and status 130.
    def interrupted(_signum: int, _frame: object) -> None:
        # Outside the loop nothing is open: end at once. A KeyboardInterrupt here could land in
        # the middle of building or closing the event loop and leave a half-made loop behind.
        print(t("once.interrupted", lang), file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, interrupted)
    try:
        print(t("once.reading", lang, instruments=len(chosen), ticks=count), file=sys.stderr)
        results = asyncio.run(_interruptible(read_once(config, chosen, count), interrupted))
    except (KeyboardInterrupt, asyncio.CancelledError):
        # asyncio.run answers the first Ctrl-C by cancelling the reads: KeyboardInterrupt once
        # they have ended, or their CancelledError if a task took the cancellation as its own.
        print(t("once.interrupted", lang), file=sys.stderr)
        return EXIT_INTERRUPTED
    if as_json:
        print(json.dumps(as_document(results), indent=2, ensure_ascii=False))
    else:
        print_table(results, lang, ticks=count > 1)
    failing = [r for r in results if not r.good]
    if failing:
        print(t("once.not_good", lang, bad=len(failing), total=len(results)), file=sys.stderr)
        for result in failing:
            print(f"  {_failure(result, lang, ticks=count > 1)}", file=sys.stderr)
        return EXIT_NOT_GOOD
    if not as_json:
        print(t("once.all_good", lang, good=len(results), total=len(results)))
    return EXIT_OK


def as_document(results: Sequence[OnceReading]) -> dict[str, Any]:
    """The ``--json`` output: every reading, then whether all were good and which were not."""
    readings = [_as_json(r) for r in results]
    failing = [f"{r.reading.instrument}/{r.reading.channel}" for r in results if not r.good]
    return {"ok": not failing, "failing": sorted(set(failing)), "readings": readings}


def _as_json(result: OnceReading) -> dict[str, Any]:
    reading = result.reading
    return {
        "instrument": reading.instrument,
        "channel": reading.channel,
        "tick": result.tick,
        "value": reading.value,
        "unit": reading.unit,
        "u": reading.u,
        "quality": str(reading.quality),
        "reason": reading.reason,
        "connected": result.connected,
        "ts": _iso(reading.ts_ns),
        "ts_ns": reading.ts_ns,
        "request_ms": None if result.request_s is None else round(result.request_s * 1000, 3),
    }


def _iso(ts_ns: int) -> str:
    moment = datetime.fromtimestamp(ts_ns / 1e9, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shown_value(value: object, lang: str) -> str:
    """A reading's value as a table shows it (``agent --once``, the demo's live view): a bit
    in the reader's language; a number with every digit of it, the shortest text that reads
    back as the same number, as the JSON and the published reading carry it (a commissioning
    check compares it with the instrument's display, where ten significant digits hid a
    counter's 1e-11), and of a float32 when the value is one (a float32 register's 23.296944,
    not 23.29694366455078)."""
    if value is None:
        return "—"
    if isinstance(value, bool):  # a coil, a status bit: True/False in the reader's language
        return t(f"value.{str(value).lower()}", lang)
    if isinstance(value, float) and math.isfinite(value) and abs(value) < FLOAT32_MAX:
        (single,) = struct.unpack("f", struct.pack("f", value))
        if single == value:
            for digits in range(1, 10):  # 9 significant digits tell any float32 apart
                text = format(value, f".{digits}g")
                shorter = float(text)
                if struct.unpack("f", struct.pack("f", shorter))[0] == value:
                    # The float32's text where the float64's shows the binary's noise.
                    return text if shorter != value else str(value)
    return str(value)


def print_table(results: Sequence[OnceReading], lang: str, ticks: bool) -> None:
    """The readings as an aligned table, one row per channel (per tick with ``--count``)."""
    header = t("once.columns", lang).split("|")
    rows: list[list[str]] = []
    for result in results:
        reading = result.reading
        took = "—" if result.request_s is None else f"{result.request_s * 1000:.1f} ms"
        channel = reading.channel
        if ticks:
            channel = f"{channel} ({t('once.tick', lang, tick=result.tick)})"
        rows.append(
            [
                reading.instrument,
                channel,
                shown_value(reading.value, lang),
                reading.unit,
                t(f"quality.{reading.quality}", lang),
                _reason(result, lang),
                _iso(reading.ts_ns)[11:],
                took,
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _reason(result: OnceReading, lang: str) -> str:
    # On one line: a library's error may run over several (the JSON keeps it as it is).
    reason = translate_reason(" ".join((result.reading.reason or "").split()), lang)
    if result.connected or result.request_s is not None:
        return reason  # a request was made: the driver's words say what became of it
    return t("once.not_connected", lang, reason=reason)


def _failure(result: OnceReading, lang: str, ticks: bool) -> str:
    reading = result.reading
    quality = t(f"quality.{reading.quality}", lang)
    reason = _reason(result, lang)
    channel = f"{reading.instrument}/{reading.channel}"
    if ticks:
        channel = f"{channel} ({t('once.tick', lang, tick=result.tick)})"
    return f"{channel} ({quality}{': ' + reason if reason else ''})"
