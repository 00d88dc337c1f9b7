"""``etalon calibrate report RUN --html FILE``: the run's HTML report, written atomically.

The page itself is :func:`metrology.certificate.report.render_html` — the same the gateway
serves at ``/api/v1/calibrations/{run}/report``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import ConfigError
from metrology.certificate.record import CalibrationRecord
from metrology.certificate.report import render_html
from metrology.labels import Language


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file, fsync, rename: a reader never sees half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError([f"{path}: cannot write: {exc.strerror or exc}"]) from None


def write_report(record: CalibrationRecord, sha256: str, path: Path, lang: Language) -> None:
    """Render the report of a record and write it."""
    write_atomically(path, render_html(record, lang, sha256).encode("utf-8"))
