"""Time-series stores: one module per backend (``sqlite``, ``influx_v1``, ``influx_v2``), each
with its writer and its readers; the protocols they meet (``store``, ``reader``); the line
protocol and points every writer sends (``line_protocol``, ``points``); the spool → store
``writer``; and the one ``factory`` that builds them from ``config``."""
