"""OPC UA connection security: check the server's certificate against our trust list, make or
load our own, set up message security (Basic256Sha256, Sign or SignAndEncrypt); a refused
server certificate is saved for its administrator to look at.
"""

from __future__ import annotations

import logging
import socket

from asyncua import Client, ua
from asyncua.crypto import security_policies
from cryptography import x509

from core.errors import NotConnected
from drivers.opcua.certs import (
    describe,
    ensure_own_certificate,
    fingerprint,
    first_certificate,
    load_certificate,
    load_trusted,
    trust_problem,
)
from drivers.opcua.config import OpcUaInstrument

log = logging.getLogger("etalon.drivers.opcua")

_MODES = {
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}


async def secure(client: Client, config: OpcUaInstrument, app_uri: str) -> None:
    """Check the server's certificate against our trust list, then set up message security."""
    security = config.security
    if security.certificate is not None and security.private_key is not None:
        certificate, private_key = security.certificate, security.private_key
    else:
        pair, made = ensure_own_certificate(
            security.certificate_dir, app_uri, [socket.gethostname(), "localhost"]
        )
        certificate, private_key = pair.certificate, pair.private_key
        if made:
            log.info(
                "made our OPC UA application certificate",
                extra={"instrument": config.name, "certificate": str(certificate)},
            )
    mode = _MODES[security.mode]
    policy = security_policies.SecurityPolicyBasic256Sha256
    endpoints = await client.connect_and_get_server_endpoints()
    matching = [
        e for e in endpoints if e.SecurityMode == mode and e.SecurityPolicyUri == policy.URI
    ]
    if not matching:
        offered = sorted(
            {
                f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name.rstrip('_')}"
                for e in endpoints
            }
        )
        raise NotConnected(
            config.name,
            f"the server offers no Basic256Sha256/{security.mode} endpoint "
            f"(it offers {', '.join(offered)})",
        )
    server_der = first_certificate(matching[0].ServerCertificate)
    try:
        server_certificate = x509.load_der_x509_certificate(server_der)
        trusted = load_trusted(security.trusted_server_certificates)
    except (OSError, ValueError) as exc:
        raise NotConnected(config.name, f"server certificate check: {exc}") from exc
    problem = trust_problem(server_certificate, trusted)
    if problem is not None:
        saved = save_rejected(config, server_certificate, server_der)
        raise NotConnected(
            config.name,
            f"server {problem}; if it is the right server, add it to "
            f"security.trusted_server_certificates (saved as {saved})",
        )
    await client.set_security(
        policy, str(certificate), str(private_key), server_certificate=server_der, mode=mode
    )


def save_rejected(config: OpcUaInstrument, certificate: x509.Certificate, der: bytes) -> str:
    folder = config.security.certificate_dir / "rejected"
    path = folder / f"{fingerprint(certificate).replace(':', '')[:16].lower()}.der"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(der)
    except OSError:
        return "(could not save it)"
    return str(path)


def own_certificate_text(config: OpcUaInstrument) -> str:
    security = config.security
    path = security.certificate or security.certificate_dir / "cert.der"
    try:
        return f"{path} ({describe(load_certificate(path))})"
    except (OSError, ValueError):
        return str(path)
