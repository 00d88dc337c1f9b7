"""The etalon error for what asyncua or the OS raised during an OPC UA call: a timeout, a
refused certificate or user, another StatusCode, a lost connection.
"""

from __future__ import annotations

from asyncua import ua

from core.errors import DriverError, DriverTimeout, NotConnected, ProtocolError
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.nodes import status_name
from drivers.opcua.security import own_certificate_text

_CERTIFICATE_CODES = {
    ua.StatusCodes.BadCertificateUntrusted,
    ua.StatusCodes.BadCertificateInvalid,
    ua.StatusCodes.BadSecurityChecksFailed,
    ua.StatusCodes.BadCertificateUriInvalid,
    ua.StatusCodes.BadCertificateUseNotAllowed,
    ua.StatusCodes.BadCertificateTimeInvalid,
}
_IDENTITY_CODES = {
    ua.StatusCodes.BadUserAccessDenied,
    ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadIdentityTokenRejected,
}


def driver_error(config: OpcUaInstrument, what: str, exc: BaseException) -> DriverError:
    """The etalon error for an asyncua/OS exception raised while doing ``what``."""
    name = config.name
    if isinstance(exc, TimeoutError):
        return DriverTimeout(name, f"{what}: no answer within {config.timeout_s:g} s")
    if isinstance(exc, ua.UaStatusCodeError):
        code = ua.StatusCode(exc.code)
        if exc.code in _CERTIFICATE_CODES:
            return NotConnected(
                name,
                f"{what}: the server refused our certificate ({status_name(code)}); have its "
                f"administrator trust {own_certificate_text(config)}",
            )
        if exc.code in _IDENTITY_CODES:
            return NotConnected(name, f"{what}: the server refused the user ({status_name(code)})")
        return ProtocolError(name, f"{what}: {status_name(code)}")
    if isinstance(exc, ConnectionError | OSError):
        return NotConnected(name, f"{what}: {type(exc).__name__}: {exc}")
    return ProtocolError(name, f"{what}: {type(exc).__name__}: {exc}")
