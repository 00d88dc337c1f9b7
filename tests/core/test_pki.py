"""`etalon pki`: a lab CA, server, gateway and agent certificates that chain to it and carry the
identities the broker's ACL expects; private keys 0600; nothing overwritten without --force;
every name checked before anything is written; the shipped ACL template is what `etalon pki acl`
prints."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.cli import main
from core import pki

REPO = Path(__file__).resolve().parents[2]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.mark.parametrize("key_type", pki.KEY_TYPES)
def test_a_lab_pki_chains_to_its_ca_and_names_each_client(tmp_path: Path, key_type: str) -> None:
    directory = tmp_path / "pki"
    ca_files = pki.init_ca(directory, key_type=key_type)
    server = pki.issue_server(
        directory,
        "broker",
        ["mqtt.lab.example", "10.1.2.3"],
        key_type=key_type,
    )
    gateway = pki.issue_gateway(directory, "hanoi", "gw-1", key_type=key_type)
    agent = pki.issue_agent(directory, "hanoi", "bench.1", key_type=key_type)
    ca = load(ca_files.cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for issued, name, usage in (
        (server, "mqtt.lab.example", ExtendedKeyUsageOID.SERVER_AUTH),
        (gateway, "hanoi/gateways/gw-1", ExtendedKeyUsageOID.CLIENT_AUTH),
        (agent, "hanoi/bench.1", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        cert = load(issued.cert)
        cert.verify_directly_issued_by(ca)
        assert (
            common_name(cert) == name == issued.common_name == pki.certificate_identity(issued.cert)
        )
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [usage]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        public = cert.public_key()
        wanted = ed25519.Ed25519PublicKey if key_type == "ed25519" else ec.EllipticCurvePublicKey
        assert isinstance(public, wanted)
    sans = load(server.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["mqtt.lab.example"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    for key in directory.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for cert_path in directory.glob("*.pem"):
        assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644, cert_path
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_nothing_is_overwritten_without_force(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    pki.init_ca(directory)
    agent = pki.issue_agent(directory, "hanoi", "bench-1")
    before = agent.key.read_bytes(), (directory / "ca.key").read_bytes()
    with pytest.raises(pki.PkiError, match="already there, not overwritten"):
        pki.init_ca(directory)
    with pytest.raises(pki.PkiError, match=r"agent-hanoi-bench-1\.pem"):
        pki.issue_agent(directory, "hanoi", "bench-1")
    assert (agent.key.read_bytes(), (directory / "ca.key").read_bytes()) == before
    again = pki.issue_agent(directory, "hanoi", "bench-1", force=True)
    assert again.key.read_bytes() != before[0]
    assert stat.S_IMODE(again.key.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda d: pki.issue_agent(d, "hanoi", "a/b"), "agent 'a/b': letters, digits"),
        (lambda d: pki.issue_agent(d, "hanoi", "+"), "agent '+'"),
        (lambda d: pki.issue_agent(d, "hanoi", "#"), "agent '#'"),
        (lambda d: pki.issue_agent(d, "hanoi", ""), "agent ''"),
        (lambda d: pki.issue_agent(d, "hanoi", "x" * 65), "at most 64"),
        (lambda d: pki.issue_agent(d, "hanoi", "bench\n1"), "agent 'bench\\n1'"),
        (lambda d: pki.issue_agent(d, "ha noi", "b"), "site 'ha noi'"),
        (lambda d: pki.issue_agent(d, "hanoi", "gateways"), "reserved for the gateway"),
        (lambda d: pki.issue_agent(d, "hanoi", "alerts"), "reserved for the gateway"),
        (lambda d: pki.issue_agent(d, "hanoi", "deadletter"), "reserved for the gateway"),
        (lambda d: pki.issue_gateway(d, "hanoi", "gw/1"), "gateway 'gw/1'"),
        (lambda d: pki.issue_server(d, "broker", []), "at least one host"),
        (lambda d: pki.issue_server(d, "broker", ["bad host"]), "host 'bad host'"),
        (lambda d: pki.issue_server(d, "broker", ["-x.example"]), "host '-x.example'"),
        (lambda d: pki.issue_server(d, "ca", ["h.example"]), "the CA's own file name"),
        (lambda d: pki.issue_server(d, "../etc", ["h.example"]), "server name '../etc'"),
        (lambda d: pki.issue_agent(d, "hanoi", "b", days=0), "days 0"),
        (lambda d: pki.issue_agent(d, "hanoi", "b", days=3651), "days 3651"),
    ],
)
def test_a_bad_name_is_refused_before_anything_is_written(
    tmp_path: Path, call: object, reason: str
) -> None:
    directory = tmp_path / "pki"
    pki.init_ca(directory)
    before = sorted(p.name for p in directory.iterdir())
    with pytest.raises(pki.PkiError) as refused:
        call(directory)  # type: ignore[operator]
    assert reason in str(refused.value)
    assert sorted(p.name for p in directory.iterdir()) == before


def test_issuing_without_a_ca_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(pki.PkiError, match="run `etalon pki init` first"):
        pki.issue_agent(tmp_path / "empty", "hanoi", "b")


def test_the_shipped_acl_is_what_etalon_pki_acl_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "acl", "--gateway", "hanoi/gw-1"]) == 0
    assert capsys.readouterr().out == (REPO / "config" / "mosquitto.acl").read_text()


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tmp_path / "pki")
    assert main(["pki", "init", "--dir", directory]) == 0
    assert main(["pki", "issue", "agent", "--site", "hanoi", "--id", "b1", "--dir", directory]) == 0
    out = capsys.readouterr().out
    assert "MQTT identity (certificate CN): hanoi/b1" in out
    assert "mode 0600" in out
    assert main(["--lang", "vi", "pki", "init", "--dir", directory]) == 1
    assert "etalon pki: từ chối:" in capsys.readouterr().err
    assert main(["pki", "acl", "--gateway", "hanoi"]) == 1  # no gateway id
    assert "gateway ''" in capsys.readouterr().err
    assert main(["pki", "acl", "--gateway", "h/g", "--revoke", "h/bench-7"]) == 0
    assert "user h/bench-7\ntopic deny etalon/v1/#" in capsys.readouterr().out
