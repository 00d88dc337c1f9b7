"""Fixtures of the DCC tests: the sample certificates and a PKI made for the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import pki

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def root_ca() -> pki.Identity:
    """The trust anchor."""
    return pki.certificate_authority()


@pytest.fixture(scope="session")
def intermediate_ca(root_ca: pki.Identity) -> pki.Identity:
    """An intermediate CA under the root."""
    return pki.certificate_authority("etalon test intermediate CA", issuer=root_ca)


@pytest.fixture(scope="session")
def lab_signer(intermediate_ca: pki.Identity) -> pki.Identity:
    """The laboratory's signing key and certificate (issued by the intermediate)."""
    return pki.signer(intermediate_ca)
