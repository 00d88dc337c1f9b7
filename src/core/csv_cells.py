"""CSV cells that a spreadsheet will not run (CSV/formula injection, OWASP).

Spreadsheet programs take a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula: a device name or comment such as ``=HYPERLINK(...)`` or
``=cmd|...`` would run on the quality manager's desk when an export is opened. Text cells that
start so get a leading apostrophe, which spreadsheets show as text and do not display. Numbers
are written by us and left alone (a negative value stays a number); :func:`restore` undoes the
apostrophe when one of our exports is imported again.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(text: str) -> str:
    """``text``, with an apostrophe in front if a spreadsheet would read it as a formula."""
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def restore(text: str) -> str:
    """The text :func:`neutralise` was given (for importing our own exports)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
