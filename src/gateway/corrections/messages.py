"""What calibrated instruments say to people, in English and Vietnamese (CLI, API errors)."""

from __future__ import annotations

from core.i18n import MessageTable, load_table, register

CORRECTIONS_MESSAGES: MessageTable = load_table(__package__, "messages.json")

register(CORRECTIONS_MESSAGES)
