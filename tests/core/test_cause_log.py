"""CauseLog: a failure is logged once per kind of exception, with its text as the reason."""

from __future__ import annotations

import logging

import pytest

from core.logs import CauseLog


def test_failed_names_the_exception_type_in_the_cause_and_its_text_as_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    causes = CauseLog(logging.getLogger("test.causes"), clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, "test.causes"):
        assert causes.failed("letter not sent", "publish failed", OSError("gone"), topic="t")
        assert not causes.failed("letter not sent", "publish failed", OSError("again"))
        assert causes.failed("letter not sent", "publish failed", ValueError("x" * 9), reason="x")
    first, other = caplog.records
    assert (first.levelno, first.getMessage()) == (logging.ERROR, "letter not sent")
    assert vars(first)["cause"] == "publish failed (OSError)"
    assert (vars(first)["topic"], vars(first)["reason"]) == ("t", "gone")
    assert (vars(other)["cause"], vars(other)["reason"]) == ("publish failed (ValueError)", "x")
