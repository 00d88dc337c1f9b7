"""The line a forced stop (a second signal, or a clean stop overdue) writes: it says spooled
readings are kept only for the commands that keep a spool (docs/errors.md)."""

from __future__ import annotations

import argparse

import pytest

from app.cli import forced_stop_line

KEPT = {"en": "spooled readings are kept", "vi": "các giá trị trong hàng đợi được giữ lại"}


@pytest.mark.parametrize("lang", ["en", "vi"])
@pytest.mark.parametrize(
    ("command", "once", "spooled"),
    [
        ("agent", False, True),
        ("gateway", False, True),
        ("demo", False, True),
        ("calibrate", False, True),
        ("agent", True, False),  # --once opens no spool
        ("hub", False, False),  # the hub's server: its database, no spool
        ("sim", False, False),
    ],
)
def test_a_forced_stop_says_spooled_readings_are_kept_only_where_there_is_a_spool(
    command: str, once: bool, spooled: bool, lang: str
) -> None:
    line = forced_stop_line(argparse.Namespace(command=command, once=once), lang)
    for overdue in (False, True):
        text = line("SIGINT", overdue)
        assert text.startswith("etalon: ") and "SIGINT" in text and text.endswith("\n")
        assert text.count("\n") == 1
        assert (KEPT[lang] in text) is spooled, text


def test_the_forced_stop_line_names_the_signal_again_or_overdue() -> None:
    line = forced_stop_line(argparse.Namespace(command="hub"), "en")
    assert line("SIGINT", False) == "etalon: forced stop (SIGINT again)\n"
    assert line("SIGTERM", True) == (
        "etalon: forced stop (the clean stop after SIGTERM took too long)\n"
    )
