"""Calibration records received from benches: kept once per run, served with their report and
DCC (``/api/v1/calibrations``). The record model, the report and the DCC are
:mod:`metrology.certificate` — the gateway never imports the bench's package."""
