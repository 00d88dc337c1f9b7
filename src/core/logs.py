"""Structured, quiet logs: one ``event key=value ...`` line per state change, or JSON.

No per-reading lines and no secrets. ``log_event`` is the one way the code logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

from core.models import FrozenModel


class LogConfig(FrozenModel):
    """Structured logs: quiet at INFO (one line per state change, none per reading)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """``2026-11-23T10:00:00.123Z WARNING agent event key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        """One line per record."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = " ".join(
            f"{k}={_quote(v)}" for k, v in record.__dict__.items() if k not in _RESERVED
        )
        head = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name}"
        line = f"{head} {record.getMessage()}"
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
