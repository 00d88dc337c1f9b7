"""Simulated instruments: physical models on an injectable clock, and drivers/servers that
expose them through the real protocols (or in-process, for the ``sim`` protocol)."""
