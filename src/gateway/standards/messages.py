"""Messages of ``etalon standards`` that a metrologist reads, in English and Vietnamese."""

from __future__ import annotations

from core.i18n import MessageTable, load_table, register

STANDARDS_MESSAGES: MessageTable = load_table(__package__, "messages.json")

register(STANDARDS_MESSAGES)
