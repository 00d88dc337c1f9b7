"""Structured, quiet logs: one ``event key=value ...`` line per state change, or JSON.

No per-reading lines and no secrets. ``log_event`` is the one way the code logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from core.i18n import language, load_table, register, translate_reason
from core.models import FrozenModel

register(load_table(__package__, "log_events.json"))


class LogConfig(FrozenModel):
    """Structured logs: quiet at INFO (one line per state change, none per reading)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


_NEEDS_QUOTES = re.compile(r'[\s="\x00-\x1f\x7f-\x9f\u2028\u2029]')
_UNESCAPED = re.compile(r"[\x7f-\x9f\u2028\u2029]")  # json.dumps leaves these as they are


def _quote(value: object) -> str:
    # A value from the outside (a topic, a reason) cannot start a line of its own: quoted, any
    # control character is an escape.
    text = str(value)
    if not text or _NEEDS_QUOTES.search(text):
        quoted = json.dumps(text, ensure_ascii=False)
        return _UNESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)
    return text


class KeyValueFormatter(logging.Formatter):
    """``2026-11-23T10:00:00.123Z WARNING agent event key=value``: the line a person reads on
    the console, its event in the process's language (``log_events.json``; the keys, the level
    and the values stay as they are, and the JSON lines of log shippers stay English)."""

    def format(self, record: logging.LogRecord) -> str:
        """One line per record."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = " ".join(
            f"{k}={_quote(v)}" for k, v in record.__dict__.items() if k not in _RESERVED
        )
        head = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name}"
        line = f"{head} {translate_reason(record.getMessage(), language())}"
        if fields:
            line += " " + fields
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        """One line per record."""
        body: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        body.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once for a process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("amqtt", "transitions", "asyncua", "pymodbus", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    """Log one event with structured fields."""
    logger.log(level, event, extra={k: v for k, v in fields.items() if v is not None})


@dataclass(eq=False)
class CauseLog:
    """Logs the first event of each cause, then at most one line per cause every ``every_s``
    saying how many were not logged: a flood of one fault is a few lines, not one per message.

    Causes are kinds of fault (a handful), not values; past ``max_causes`` new ones share one.
    """

    logger: logging.Logger
    every_s: float = 60.0
    max_causes: int = 64
    clock: Callable[[], float] = time.monotonic
    _causes: dict[str, tuple[float, int]] = field(default_factory=dict, init=False)

    def log(self, level: int, event: str, cause: str, **fields: object) -> bool:
        """Log ``event`` unless its cause was logged less than ``every_s`` ago; True if logged."""
        if cause not in self._causes and len(self._causes) >= self.max_causes:
            cause = "(other causes)"
        now = self.clock()
        last = self._causes.get(cause)
        if last is not None and now - last[0] < self.every_s:
            self._causes[cause] = (last[0], last[1] + 1)
            return False
        suppressed = last[1] if last is not None else None
        self._causes[cause] = (now, 0)
        log_event(self.logger, level, event, cause=cause, suppressed=suppressed or None, **fields)
        return True

    def failed(self, event: str, what: str, exc: BaseException, **fields: object) -> bool:
        """Log ``event`` at ERROR because ``what`` raised ``exc``: the cause is ``what (Type)``
        (one cause per kind of exception, not per message), the reason the exception's text
        unless ``fields`` give one; True if logged."""
        fields.setdefault("reason", str(exc))
        return self.log(logging.ERROR, event, f"{what} ({type(exc).__name__})", **fields)
