"""What ``etalon calibrate`` prints, in English and Vietnamese."""

from __future__ import annotations

from core.i18n import MessageTable, load_table, register

CALIBRATION_MESSAGES: MessageTable = load_table(__package__, "messages.json")

register(CALIBRATION_MESSAGES)
