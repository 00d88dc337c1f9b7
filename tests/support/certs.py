"""A throwaway CA and server certificate for TLS tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core import pki
from core.pki import Issued


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_ca_and_server(directory: Path, ca_name: str = "etalon test CA") -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) for 127.0.0.1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return ca_path, cert_path, key_path


# -- a lab PKI made by etalon's own `core.pki`, and the shipped TLS broker config ---------------

REPO = Path(__file__).resolve().parents[2]


class LabPki:
    """A CA, a broker certificate for 127.0.0.1, a gateway's and agents' client certificates,
    and the ACL for them, in ``directory`` (made with core.pki, as `etalon pki` makes them)."""

    def __init__(self, directory: Path, site: str, gateway: str, agents: list[str]) -> None:
        self.directory = directory
        self.ca = pki.init_ca(directory).cert
        self.broker = pki.issue_server(directory, "broker", ["127.0.0.1", "localhost"])
        self.gateway = pki.issue_gateway(directory, site, gateway)
        self.agents = {name: pki.issue_agent(directory, site, name) for name in agents}
        self.acl = directory / "etalon.acl"
        self.acl.write_text(pki.acl_text([(site, gateway)]))

    def client_tls(self, issued: Issued) -> dict[str, str]:
        """The ``mqtt.tls`` section of a config that connects as ``issued``."""
        return {"ca_file": str(self.ca), "cert_file": str(issued.cert), "key_file": str(issued.key)}


def shipped_tls_broker_lines(pki: LabPki, port: int, workdir: Path) -> list[str]:
    """config/mosquitto-tls.conf as shipped, moved to 127.0.0.1:port, this PKI and workdir.

    Only the listener, the file paths and the persistence location change; every security line
    is the shipped one (the test fails if the shipped file loses one of them)."""
    text = (REPO / "config" / "mosquitto-tls.conf").read_text()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    replaced = {
        "listener 8883": f"listener {port} 127.0.0.1",
        "cafile /etc/mosquitto/certs/ca.pem": f"cafile {pki.ca}",
        "certfile /etc/mosquitto/certs/broker.pem": f"certfile {pki.broker.cert}",
        "keyfile /etc/mosquitto/certs/broker.key": f"keyfile {pki.broker.key}",
        "acl_file /etc/mosquitto/etalon.acl": f"acl_file {pki.acl}",
        "persistence_location /var/lib/mosquitto/": f"persistence_location {workdir}/",
    }
    for required in (
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        "allow_anonymous false",
        *replaced,
    ):
        assert required in lines, f"config/mosquitto-tls.conf lost {required!r}"
    # As root, mosquitto would drop to the `mosquitto` user, who cannot read a test's files.
    return [replaced.get(line, line) for line in lines] + [
        "user root",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
