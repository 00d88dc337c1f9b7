"""``etalon calibrate dcc RUN --out FILE``: the run's DCC 3.1.2, signed with the lab's key when
one is given (enveloped XMLDSig, XAdES-BES, by :func:`metrology.dcc.sign`).

The document is :func:`metrology.certificate.dcc.build_dcc` — the same the gateway serves at
``/api/v1/calibrations/{run}/dcc`` (signed there with the gateway's lab key, if configured).
"""

from __future__ import annotations

import os
from pathlib import Path

from calibration.report import write_atomically
from core.errors import ConfigError
from metrology.certificate.dcc import build_dcc
from metrology.certificate.record import CalibrationRecord


def export_dcc(
    record: CalibrationRecord,
    sha256: str,
    path: Path,
    *,
    key: Path | None = None,
    certificates: list[Path] | None = None,
    password_env: str | None = None,
) -> bytes:
    """Build (and sign, with ``key`` and ``certificates``: the signer's first) the DCC of a
    record and write it; returns the bytes. Raises ConfigError naming what is wrong."""
    from metrology import dcc
    from metrology.errors import DccError

    try:
        document = build_dcc(record, sha256)
    except (DccError, ValueError) as exc:
        raise ConfigError([f"the DCC of run {record.run} cannot be built: {exc}"]) from None
    certificates = certificates or []
    if (key is None) != (not certificates):
        raise ConfigError(["--sign-key and --sign-cert go together"])
    if key is not None:
        password = None
        if password_env is not None:
            value = os.environ.get(password_env)
            if value is None:
                raise ConfigError([f"--key-password-env: {password_env} is not set"])
            password = value.encode()
        try:
            key_bytes = key.read_bytes()
            chain = [c for path in certificates for c in dcc.load_certificates(path.read_bytes())]
        except OSError as exc:
            raise ConfigError([f"{exc.filename}: cannot read: {exc.strerror}"]) from None
        except DccError as exc:
            raise ConfigError([f"a signing certificate: {exc}"]) from None
        try:
            document = dcc.sign(document, key=key_bytes, certificates=chain, password=password)
        except DccError as exc:
            raise ConfigError([f"cannot sign: {exc}"]) from None
    write_atomically(path, document)
    return document
