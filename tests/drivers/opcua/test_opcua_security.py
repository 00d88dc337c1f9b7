"""OPC UA security: each mode with the right certificates, a clear error with the wrong ones."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from core.errors import NotConnected
from drivers.opcua.certs import ensure_own_certificate, fingerprint, load_certificate
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver
from drivers.reading import Quality
from drivers.sim.opcua_server import OpcUaSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

Config = Callable[..., OpcUaInstrument]
Build = Callable[[OpcUaInstrument], OpcUaDriver]
Secure = Callable[..., dict[str, Any]]
CHANNELS = [{"name": "temperature", "node": "ns=2;s=ClimateChamber.Temperature"}]


@pytest.mark.parametrize("mode", ["None", "Sign", "SignAndEncrypt"])
async def test_each_security_mode_connects_with_the_right_certificates(
    mode: str, ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build, secure: Secure
) -> None:
    security = secure(mode) if mode != "None" else {"mode": "None"}
    config = ua_config(ua_server.endpoint, CHANNELS, security=security)
    driver = ua_drivers(config)
    await driver.connect()
    expected = "None" if mode == "None" else f"Basic256Sha256/{mode}"
    assert driver.describe()["security"] == expected
    (reading,) = await driver.read(config.channels)
    assert reading.quality is Quality.GOOD


async def test_a_pinned_server_certificate_is_trusted_too(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build, secure: Secure, pki: Any
) -> None:
    security = secure("Sign", trusted_server_certificates=[str(pki.server.certificate)])
    driver = ua_drivers(ua_config(ua_server.endpoint, CHANNELS, security=security))
    await driver.connect()


async def test_an_untrusted_server_certificate_is_refused_and_kept_for_review(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build, secure: Secure, pki: Any
) -> None:
    # We trust an impostor's certificate (same name, other key): our server must be refused.
    security = secure("SignAndEncrypt", trusted_server_certificates=[str(pki.impostor.certificate)])
    driver = ua_drivers(ua_config(ua_server.endpoint, CHANNELS, security=security))
    with pytest.raises(NotConnected) as caught:
        await driver.connect()
    server_certificate = load_certificate(pki.server.certificate)
    reason = caught.value.reason
    assert reason.startswith("server certificate is not trusted: subject 'O=etalon,CN=etalon")
    assert fingerprint(server_certificate) in reason
    assert "add it to security.trusted_server_certificates" in reason
    saved = Path(reason.rsplit("saved as ", 1)[1].rstrip(")"))
    assert load_certificate(saved) == server_certificate


async def test_a_client_certificate_the_server_does_not_trust_is_a_clear_error(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build, secure: Secure, pki: Any
) -> None:
    security = secure(
        "SignAndEncrypt",
        certificate_dir=str(pki.stranger_dir),
        application_uri="urn:etalon:agent:stranger",
    )
    driver = ua_drivers(ua_config(ua_server.endpoint, CHANNELS, security=security))
    with pytest.raises(NotConnected) as caught:
        await driver.connect()
    reason = caught.value.reason
    assert "the server refused our certificate (BadCertificateUntrusted)" in reason
    assert str(pki.stranger_dir / "cert.der") in reason  # what to hand the administrator


async def test_user_and_password(
    ua_server: OpcUaSimulator,
    ua_config: Config,
    ua_drivers: Build,
    secure: Secure,
    password_env: Callable[[str], str],
) -> None:
    variable = password_env("s3cret")
    credentials = {"username": "operator", "password": {"env": variable}}
    config = ua_config(
        ua_server.endpoint, CHANNELS, security=secure("SignAndEncrypt"), **credentials
    )
    await ua_drivers(config).connect()
    password_env("guess")
    config = ua_config(
        ua_server.endpoint, CHANNELS, security=secure("SignAndEncrypt"), **credentials
    )
    with pytest.raises(NotConnected, match=r"the server refused the user \(BadUserAccessDenied\)"):
        await ua_drivers(config).connect()


async def test_the_agent_makes_its_certificate_on_first_start_and_keeps_it(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "pki"
    first, made = ensure_own_certificate(directory, "urn:etalon:agent:lab-pc", ["lab-pc"])
    assert made
    assert stat.S_IMODE(first.private_key.stat().st_mode) == 0o600
    certificate = load_certificate(first.certificate)
    uris = certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["urn:etalon:agent:lab-pc"]
    again, made_again = ensure_own_certificate(directory, "urn:etalon:agent:lab-pc", ["lab-pc"])
    assert not made_again
    assert load_certificate(again.certificate) == certificate
    # A new application URI needs a new certificate.
    _, remade = ensure_own_certificate(directory, "urn:etalon:agent:other-pc", ["other-pc"])
    assert remade


async def test_a_secure_connect_without_a_certificate_makes_one(
    ua_server: OpcUaSimulator,
    ua_config: Config,
    ua_drivers: Build,
    secure: Secure,
    tmp_path: Path,
) -> None:
    security = secure("Sign", certificate_dir=str(tmp_path / "fresh"))
    driver = ua_drivers(ua_config(ua_server.endpoint, CHANNELS, security=security))
    # The session's server trusts only the test agent's certificate: a fresh one is refused,
    # but it has been made, where the config says, for the administrator to trust.
    with pytest.raises(NotConnected, match="refused our certificate"):
        await driver.connect()
    assert (tmp_path / "fresh" / "cert.der").is_file()
    assert (tmp_path / "fresh" / "key.pem").is_file()
