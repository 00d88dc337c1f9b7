"""Vietnamese of the ``etalon`` command line's English texts: argparse's own messages and every
``help=``/``description=`` of every command (registered in :mod:`core.i18n` keyed by the English
text; ``tests/app/test_vietnamese.py`` fails on a text missing here).

The texts are data, ``help_texts.json`` beside this module: ``{table: {English: Vietnamese}}``,
one table per part of the command line — ``argparse`` (argparse's own texts, its gettext hook),
``argparse_types`` (the names of argument types in "invalid value" errors: ``float`` → a number),
``etalon`` (etalon, demo, check, agent, gateway, schema, and the one-line help of every command),
then one table per command group (``sim``, ``alerts``, ``drift``, ``standards``, ``records``,
``calibrate``, ``hub``, ``instruments``, ``security`` for ``etalon pki`` and ``etalon token``).
"""

from __future__ import annotations

from core.i18n import MessageTable, load_table, register_texts

TABLES: MessageTable = load_table(__package__, "help_texts.json")
"""Table name → English text → Vietnamese text (the file has the catalogue's nested shape, so
:func:`core.i18n.load_table` reads and checks it)."""


def register_all() -> None:
    """Register every table of ``help_texts.json``."""
    for table in TABLES.values():
        register_texts(table)
