"""Floor 2: the edge agent — config, scheduler, reading pipeline, spool, wire format, publisher."""

__version__ = "0.1.0"
