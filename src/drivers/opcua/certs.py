"""OPC UA application instance certificates: make our own, decide whether to trust theirs.

An OPC UA application proves who it is with an X.509 certificate whose subjectAltName carries its
application URI. The agent makes its own (RSA 2048, SHA-256, self-signed, the key usages OPC UA
Part 6 asks for) on first start into a directory the config names, and reuses it afterwards —
the server's administrator trusts that certificate once. A server's certificate is trusted when
it is one of the configured trusted certificates (pinned), or when it was issued by one of them
that is a CA; anything else is refused with an error that shows its subject and fingerprint.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.pki import KeyUse, certificate_builder

CERT_FILE = "cert.der"
KEY_FILE = "key.pem"
VALIDITY_DAYS = 5 * 365


@dataclass(frozen=True)
class CertificatePair:
    """Paths of a certificate (DER) and its private key (PEM, unencrypted, mode 0600)."""

    certificate: Path
    private_key: Path


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint, colon-separated hex, as certificate managers show it."""
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()


def describe(certificate: x509.Certificate) -> str:
    """Subject and fingerprint, for error messages a person acts on."""
    return f"subject {certificate.subject.rfc4514_string()!r}, SHA-256 {fingerprint(certificate)}"


def application_uri(certificate: x509.Certificate) -> str | None:
    """The application URI in the certificate's subjectAltName, if any."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def make_certificate(
    common_name: str,
    app_uri: str,
    hostnames: list[str],
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    is_ca: bool = False,
    valid_from: datetime.datetime | None = None,
    valid_days: int = VALIDITY_DAYS,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A new key and certificate (self-signed unless ``issuer`` is given)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "etalon"),
        ]
    )
    start = valid_from or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(app_uri)]
    for host in hostnames:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    uses: list[KeyUse] = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
    ]
    uses += ["key_cert_sign"] if is_ca or issuer is None else []
    uses += ["crl_sign"] if is_ca else []
    builder = (
        certificate_builder(
            name,
            issuer_cert.subject if issuer_cert else name,
            key.public_key(),
            start,
            start + datetime.timedelta(days=valid_days),
            uses=uses,
            ca=is_ca,
        )
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            # Both: asyncua's server checks clients for clientAuth, and some servers act as both.
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256()), key


def write_pair(
    directory: Path, certificate: x509.Certificate, key: rsa.RSAPrivateKey
) -> CertificatePair:
    """Write a certificate (DER) and its key (PEM, 0600) into a directory."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertificatePair(directory / CERT_FILE, directory / KEY_FILE)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(pair.private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    pair.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    return pair


def ensure_own_certificate(
    directory: Path, app_uri: str, hostnames: list[str]
) -> tuple[CertificatePair, bool]:
    """Our certificate in ``directory``, made on first use; returns it and whether it is new.

    An existing certificate is kept as long as it carries the same application URI and has not
    expired — a server that trusts it keeps trusting it across restarts.
    """
    pair = CertificatePair(directory / CERT_FILE, directory / KEY_FILE)
    if pair.certificate.is_file() and pair.private_key.is_file():
        try:
            existing = x509.load_der_x509_certificate(pair.certificate.read_bytes())
        except ValueError:
            existing = None
        now = datetime.datetime.now(datetime.UTC)
        if (
            existing is not None
            and application_uri(existing) == app_uri
            and existing.not_valid_after_utc > now
        ):
            return pair, False
    certificate, key = make_certificate(app_uri.rsplit(":", 1)[-1], app_uri, hostnames)
    return write_pair(directory, certificate, key), True


def load_certificate(path: Path) -> x509.Certificate:
    """A certificate from a DER or PEM file; raises ValueError."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_trusted(paths: list[Path]) -> list[x509.Certificate]:
    """Every certificate in the given files and directories (*.der, *.pem, *.crt)."""
    out: list[x509.Certificate] = []
    for path in paths:
        files = (
            sorted(p for p in path.iterdir() if p.suffix.lower() in (".der", ".pem", ".crt"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            out.append(load_certificate(file))
    return out


def trust_problem(certificate: x509.Certificate, trusted: list[x509.Certificate]) -> str | None:
    """Why a peer certificate is not trusted, or None when it is."""
    now = datetime.datetime.now(datetime.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return (
            f"certificate is not valid now (valid {certificate.not_valid_before_utc:%Y-%m-%d} "
            f"to {certificate.not_valid_after_utc:%Y-%m-%d}): {describe(certificate)}"
        )
    der = certificate.public_bytes(serialization.Encoding.DER)
    for candidate in trusted:
        if candidate.public_bytes(serialization.Encoding.DER) == der:
            return None
    for candidate in trusted:
        try:
            constraints = candidate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            continue
        if not constraints.ca or candidate.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return None
    return f"certificate is not trusted: {describe(certificate)}"


def first_certificate(der: bytes) -> bytes:
    """The leaf of a DER certificate chain (servers may send the chain concatenated)."""
    length = int.from_bytes(der[2:4], "big") + 4
    return der[:length]
