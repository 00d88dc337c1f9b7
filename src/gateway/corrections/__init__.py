"""Calibrated instruments: their certificates (DCC), calibration tables, and corrections of
their readings at the gateway (issue 19, docs/corrections.md)."""
