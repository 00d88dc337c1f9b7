"""A small lab PKI for MQTT over TLS: a CA, server certificates, gateway and agent certificates.

Identity on the broker is the certificate (Mosquitto ``use_identity_as_username``: the subject's
common name becomes the MQTT user name). The common names are chosen so that one ACL pattern,
``pattern write {prefix}/v1/%u/#``, gives each client exactly its own topics:

- an agent's CN is ``{site}/{agent}``: it may publish ``etalon/v1/{site}/{agent}/#`` (data, status,
  metrics, instrument states, its will) and nothing else;
- a gateway's CN is ``{site}/gateways/{id}``: the same pattern gives it its own status, metrics,
  ledger checkpoints and probe (which it publishes to itself and reads back through its site-wide
  read); its user block in the ACL adds reading the site and writing alerts and dead letters.

A CN holds a '/' where a topic level cannot: the pattern's ``%u`` expands to two (or three) topic
levels. Names follow the topic-level rules of the wire format, and an agent may not be called
``gateways``, ``alerts`` or ``deadletter`` (its pattern would then cover the gateway's topics).

Private keys are written with mode 0600 (created so, never chmod-ed afterwards) and no file is
overwritten unless asked. Keys are ECDSA P-256 (default: every TLS stack speaks it) or Ed25519.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import InvalidInputError
from core.models import NAME_PATTERN

KeyType = Literal["ecdsa-p256", "ed25519"]
KEY_TYPES: tuple[KeyType, ...] = ("ecdsa-p256", "ed25519")
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

NAME = re.compile(NAME_PATTERN)
"""A site, agent or gateway name: the wire format's topic-level rule (core.models.Name)."""
PREFIX = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
"""An MQTT topic prefix (MqttConfig.topic_prefix)."""
RESERVED_AGENT_NAMES = frozenset({"gateways", "alerts", "deadletter"})
"""Topic levels under a site that belong to the gateway."""
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CA_DAYS = 3650
LEAF_DAYS = 825


REASONS: dict[str, str] = {
    "name": "{what} {value!r}: letters, digits, '_', '.', '-', starting with a letter or digit, "
    "at most 64 characters (it is an MQTT topic level)",
    "reserved": "agent {value!r}: the name is reserved for the gateway's topics ({names})",
    "host": "host {value!r}: not an IP address or a DNS name",
    "no_host": "a server certificate needs at least one host (DNS name or IP address)",
    "server_name": "server name 'ca' is the CA's own file name",
    "days": "days {value}: between 1 and {most}",
    "ca_name": "CA name {value!r}: 1-64 printable characters",
    "exists": "{paths}: already there, not overwritten (--force replaces)",
    "no_ca": "no CA in {directory} ({missing} missing): run `etalon pki init` first",
    "bad_ca": "cannot read the CA in {directory}: {detail}",
    "prefix": "prefix {value!r}: topic levels of letters, digits, '_' and '-'",
    "certificate": "{path}: not a readable PEM certificate: {detail}",
}
"""Why an operation was refused, in English; the CLI shows them translated (``pki.error.KEY``)."""


class PkiError(InvalidInputError):
    """A PKI operation was refused, nothing written: ``code`` is a key of :data:`REASONS`,
    ``values`` fill it (``reason``, as for every operation error, is the English text)."""

    def __init__(self, code: str, **values: object) -> None:
        self.code = code
        self.values = values
        super().__init__(REASONS[code].format(**values))


@dataclass(frozen=True)
class Issued:
    """What an operation wrote: the certificate, its key, and the identity it carries."""

    cert: Path
    key: Path
    common_name: str


def agent_identity(site: str, agent: str) -> str:
    """The certificate CN (= MQTT user name) of an agent."""
    _check_name("site", site)
    _check_name("agent", agent)
    if agent in RESERVED_AGENT_NAMES:
        raise PkiError("reserved", value=agent, names=", ".join(sorted(RESERVED_AGENT_NAMES)))
    return f"{site}/{agent}"


def gateway_identity(site: str, gateway: str) -> str:
    """The certificate CN (= MQTT user name) of a gateway."""
    _check_name("site", site)
    _check_name("gateway", gateway)
    return f"{site}/gateways/{gateway}"


def _check_name(what: str, value: str) -> None:
    if not NAME.match(value):
        raise PkiError("name", what=what, value=value)


def _check_host(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _DNS.match(host):
        raise PkiError("host", value=host)
    return x509.DNSName(host)


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _digest(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _refuse_overwrite(paths: Sequence[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise PkiError("exists", paths=", ".join(existing))


def _write_private(path: Path, key: PrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start: a chmod after writing leaves a window where others can read.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)


def _prepare_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


KeyUse = Literal[
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
]
"""What a certificate's key may be used for (the X.509 KeyUsage bits)."""
_KEY_USES: tuple[KeyUse, ...] = get_args(KeyUse)


def certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    uses: Sequence[KeyUse],
    ca: bool = False,
    path_length: int | None = None,
) -> x509.CertificateBuilder:
    """A certificate to sign: its names, key and validity, basic constraints and key usage
    (both critical: exactly the ``uses`` given) and a subject key identifier; the caller adds
    what its kind of certificate needs beside (extended key usage, alternative names)."""
    flags = {use: use in uses for use in _KEY_USES}
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def init_ca(
    directory: Path,
    *,
    name: str = "etalon lab CA",
    days: int = CA_DAYS,
    key_type: KeyType = "ecdsa-p256",
    force: bool = False,
) -> Issued:
    """Create the lab CA in ``directory`` (``ca.pem``, ``ca.key``)."""
    if not name.strip() or len(name) > 64 or any(ord(ch) < 32 for ch in name):
        raise PkiError("ca_name", value=name)
    if not 1 <= days <= 36500:
        raise PkiError("days", value=days, most=36500)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    _refuse_overwrite([cert_path, key_path], force)
    _prepare_dir(directory)
    key = _new_key(key_type)
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = certificate_builder(
        _name(name),
        _name(name),
        public,
        now - dt.timedelta(minutes=5),
        now + dt.timedelta(days=days),
        uses=("key_cert_sign", "crl_sign"),
        ca=True,
        path_length=0,
    ).sign(key, _digest(key))
    _write_private(key_path, key)
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path, name)


def _load_ca(directory: Path) -> tuple[x509.Certificate, PrivateKey]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise PkiError("no_ca", directory=directory, missing=exc.filename) from None
    except (OSError, ValueError, TypeError) as exc:
        raise PkiError("bad_ca", directory=directory, detail=exc) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise PkiError("bad_ca", directory=directory, detail="not an ECDSA or Ed25519 key")
    return cert, key


def _issue(
    directory: Path,
    stem: str,
    common_name: str,
    usage: x509.ObjectIdentifier,
    *,
    hosts: Sequence[str] = (),
    days: int,
    key_type: KeyType,
    force: bool,
) -> Issued:
    if not 1 <= days <= 3650:
        raise PkiError("days", value=days, most=3650)
    alt_names = [_check_host(h) for h in hosts]
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    _refuse_overwrite([cert_path, key_path], force)
    ca_cert, ca_key = _load_ca(directory)
    key = _new_key(key_type)
    public = key.public_key()
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        certificate_builder(
            _name(common_name),
            ca_cert.subject,
            public,
            now - dt.timedelta(minutes=5),
            not_after,
            uses=("digital_signature",),
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, _digest(ca_key))
    _write_private(key_path, key)
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path, common_name)


def issue_server(
    directory: Path,
    name: str,
    hosts: Sequence[str],
    *,
    days: int = LEAF_DAYS,
    key_type: KeyType = "ecdsa-p256",
    force: bool = False,
) -> Issued:
    """A server certificate (the broker, the gateway's HTTPS API) for ``hosts`` (DNS names or IP
    addresses, which clients check): ``NAME.pem`` and ``NAME.key``."""
    _check_name("server name", name)
    if name == "ca":
        raise PkiError("server_name")
    if not hosts:
        raise PkiError("no_host")
    return _issue(
        directory,
        name,
        hosts[0],
        ExtendedKeyUsageOID.SERVER_AUTH,
        hosts=hosts,
        days=days,
        key_type=key_type,
        force=force,
    )


def issue_client(
    directory: Path,
    site: str,
    name: str,
    *,
    role: Literal["agent", "gateway"],
    days: int = LEAF_DAYS,
    key_type: KeyType = "ecdsa-p256",
    force: bool = False,
) -> Issued:
    """A client certificate of an agent or a gateway ``name`` of ``site``: ``ROLE-SITE-NAME.pem``
    and ``.key``, carrying the role's identity (:func:`agent_identity`,
    :func:`gateway_identity`)."""
    identity = (agent_identity if role == "agent" else gateway_identity)(site, name)
    return _issue(
        directory,
        f"{role}-{site}-{name}",
        identity,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        days=days,
        key_type=key_type,
        force=force,
    )


issue_agent = functools.partial(issue_client, role="agent")
"""An agent's client certificate: ``agent-SITE-AGENT.pem`` and ``.key``."""
issue_gateway = functools.partial(issue_client, role="gateway")
"""A gateway's client certificate: ``gateway-SITE-ID.pem`` and ``.key``."""


_ACL_HEAD = """\
# Mosquitto ACL for etalon with certificate identities (use_identity_as_username true).
# Generated by `etalon pki acl`; see docs/security.md.
#
# Every client: the user name is the certificate's CN. An agent's CN is SITE/AGENT, a
# gateway's SITE/gateways/ID, so %u expands to its own topic levels. Nothing else is
# granted to agents: no reads, no other site, no other agent. An agent's own topics:
# data, status, metrics, instruments/+ and calibrations. A calibration bench
# (`etalon calibrate`) is a client of its own, CN SITE/AGENT-cal by default: it
# publishes its readings, status and calibration records under etalon/v1/SITE/AGENT-cal/.
pattern write {root}/%u/#"""
_ACL_GATEWAY = """\
# The gateway {gateway} of site {site}: reads its site's agents and benches (their
# calibration records too), writes alerts and dead letters. Its own status, metrics,
# ledger checkpoints and probe come from the pattern above; the probe, which it
# publishes to itself, it reads back under the read below.
user {identity}
topic read {root}/{site}/#
topic write {root}/{site}/alerts/#
topic write {root}/{site}/deadletter"""
_ACL_REVOKED = """\
# Revoked: the certificate of agent {agent} of site {site} still shakes hands, but
# may neither publish nor read anything.
user {identity}
topic deny {root}/#
topic deny $SYS/#"""


def acl_text(
    sites_gateways: Sequence[tuple[str, str]],
    prefix: str = "etalon",
    revoked: Sequence[tuple[str, str]] = (),
) -> str:
    """A Mosquitto ACL file for certificate identities: every agent publishes only under its own
    topics; each (site, gateway) reads its site and writes its alerts and dead letters; each
    revoked (site, agent) may do nothing (Mosquitto checks denials before grants), until the
    lab CA is replaced or the broker is given a CRL."""
    if not PREFIX.match(prefix):
        raise PkiError("prefix", value=prefix)
    root = f"{prefix}/v1"
    blocks = [_ACL_HEAD.format(root=root)]
    blocks += [
        _ACL_GATEWAY.format(
            root=root, site=site, gateway=gateway, identity=gateway_identity(site, gateway)
        )
        for site, gateway in sites_gateways
    ]
    blocks += [
        _ACL_REVOKED.format(root=root, site=site, agent=agent, identity=agent_identity(site, agent))
        for site, agent in revoked
    ]
    return "\n\n".join(blocks) + "\n"


def certificate_identity(path: Path) -> str:
    """The subject CN of a PEM certificate (what Mosquitto takes as the user name)."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError("certificate", path=path, detail=exc) from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
