"""Write the test data set the builder makes: ``python -m tests.metrology.dcc.regenerate``.

- ``data/<sample>.xml``: :mod:`samples` built by :func:`metrology.dcc.build` (golden files:
  test_build checks that the builder still writes them byte for byte);
- ``data/zener-signed.xml`` and ``data/signed-by-ca.pem``: the Zener certificate signed (XAdES)
  by a laboratory key made here and thrown away, and the CA certificate it chains to. Only
  public certificates are written: no private key leaves this process.
"""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives import serialization

from metrology import dcc
from tests.metrology.dcc import samples
from tests.metrology.dcc.conftest import DATA
from tests.support import pki

SIGNED_AT = dt.datetime(2026, 3, 9, 10, 30, tzinfo=dt.UTC)
"""When the committed signed document was signed; its certificates are valid 2026–2046."""


def main() -> None:
    for name, make in samples.ALL.items():
        (DATA / f"{name.replace('_', '-')}.xml").write_bytes(dcc.build(make()))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ca = pki.certificate_authority("etalon test data CA", now=start, days=20 * 365)
    lab = pki.signer(ca, not_before=start, not_after=start + dt.timedelta(days=20 * 365))
    signed = dcc.sign(
        dcc.build(samples.zener()),
        key=lab.key,
        certificates=[lab.certificate],
        signing_time=SIGNED_AT,
    )
    (DATA / "zener-signed.xml").write_bytes(signed)
    (DATA / "signed-by-ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main()
