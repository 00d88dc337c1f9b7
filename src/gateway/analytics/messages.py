"""The text reports of ``etalon drift fit|adev|chart`` in English and Vietnamese (the ``--json``
output is the stable machine format and is never translated)."""

from __future__ import annotations

from core.i18n import MessageTable, load_table, register

DRIFT_MESSAGES: MessageTable = load_table(__package__, "messages.json")

register(DRIFT_MESSAGES)
