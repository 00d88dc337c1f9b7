"""Under ``--lang vi`` the console's log lines say their event in Vietnamese: every event the code
logs with a fixed text (found in the source, so a new one without its translation fails here) has
one, the lines keep their keys and values, and the JSON lines of log shippers stay English."""

from __future__ import annotations

import ast
import json
import logging

import pytest

from core import i18n
from core.logs import JsonFormatter, KeyValueFormatter
from tests.support.processes import REPO

LEVELS = {"info", "warning", "error", "critical", "exception", "debug"}


def logged_events() -> dict[str, str]:
    """Every fixed event text the source logs (``log_event``, ``CauseLog.log``/``failed``, a
    logger's methods), with where."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            index = {"log_event": 2, "failed": 0}.get(name)
            if name == "log" and isinstance(func, ast.Attribute) and len(node.args) >= 3:
                index = 1  # CauseLog.log(level, event, cause)
            if name in LEVELS and isinstance(func, ast.Attribute):
                owner = func.value
                if isinstance(owner, ast.Name) and owner.id in ("log", "logger"):
                    index = 0
            if index is None or len(node.args) <= index:
                continue
            text = node.args[index]
            # (printf-style lines, the ledger's own logger's, are left out)
            if (
                isinstance(text, ast.Constant)
                and isinstance(text.value, str)
                and "%" not in text.value
            ):
                found.setdefault(text.value, f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_the_source_logs_events() -> None:
    events = logged_events()
    assert "mqtt unreachable, will retry" in events and "agent started" in events
    assert len(events) > 50


def test_every_logged_event_has_its_vietnamese() -> None:
    missing = {
        f"{where}: {event!r}"
        for event, where in logged_events().items()
        if i18n.translate_reason(event, "vi") == event
    }
    assert missing == set()


def line(formatter: logging.Formatter, event: str) -> str:
    record = logging.LogRecord("etalon.mqtt", logging.WARNING, __file__, 1, event, None, None)
    record.__dict__["broker"] = "127.0.0.1:1883"
    return formatter.format(record)


@pytest.mark.parametrize(
    ("event", "said"),
    [
        ("mqtt unreachable, will retry", "không kết nối được broker MQTT, sẽ thử lại"),
        ("instrument unavailable", "thiết bị không truy cập được"),
        ("agent offline", "tác tử ngoại tuyến"),
    ],
)
def test_a_console_line_in_vietnamese(event: str, said: str) -> None:
    i18n.choose_language("vi")
    try:
        text = line(KeyValueFormatter(), event)
        shipped = json.loads(line(JsonFormatter(), event))
    finally:
        i18n.choose_language(None)
    assert f"WARNING etalon.mqtt {said} broker=127.0.0.1:1883" in text
    assert shipped["event"] == event  # for log shippers, as written
    assert line(KeyValueFormatter(), event).endswith(f"{event} broker=127.0.0.1:1883")


def test_an_event_without_translation_is_found() -> None:
    """The check above can fail: an unknown event comes back unchanged."""
    assert i18n.translate_reason("a brand new event", "vi") == "a brand new event"
