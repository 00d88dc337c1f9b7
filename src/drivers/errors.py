"""The one error tree of etalon.

Every library exception (pymodbus, asyncua, pyvisa, pyserial, paho-mqtt, HTTP clients, sqlite3)
is mapped to one of these at the boundary where it is caught, with the instrument, channel or
file it concerns and the original exception as ``__cause__``::

    EtalonError
    ├── ConfigError              bad config file: file, field path, reason
    ├── DriverError              an instrument could not be read
    │   ├── DriverTimeout        no complete answer within the timeout
    │   ├── ProtocolError        an answer that breaks the protocol or cannot be parsed
    │   └── NotConnected         no connection (refused, closed, lost)
    ├── PayloadError             an MQTT payload that fails the wire format
    ├── SpoolError               the on-disk spool cannot be opened or written
    ├── TransportError           the MQTT broker refused or dropped us
    └── StoreError               a time-series or record store refused a write or is down
        └── StoreRejected        the store answered and refused the data (not retryable as is)
"""

from __future__ import annotations


class EtalonError(Exception):
    """Base of every error etalon raises on purpose."""


class ConfigError(EtalonError):
    """A configuration file is invalid; ``problems`` lists each as ``file: field: reason``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DriverError(EtalonError):
    """An instrument could not be read; names the instrument and, where known, the channel."""

    def __init__(self, instrument: str, message: str, channel: str | None = None) -> None:
        self.instrument = instrument
        self.channel = channel
        self.reason = message
        where = f"{instrument}/{channel}" if channel else instrument
        super().__init__(f"{where}: {message}")


class DriverTimeout(DriverError, TimeoutError):
    """The instrument gave no complete answer within its timeout."""


class ProtocolError(DriverError):
    """The instrument's answer broke the protocol or could not be parsed."""


class NotConnected(DriverError):
    """There is no connection to the instrument (refused, closed, lost)."""


class PayloadError(EtalonError):
    """An MQTT payload does not match the wire format; ``reason`` says why (with the values),
    ``cause`` names the kind of fault without them (what logs and counters group by)."""

    def __init__(self, reason: str, cause: str | None = None) -> None:
        self.reason = reason
        self.cause = cause or reason
        super().__init__(reason)


class SpoolError(EtalonError):
    """The on-disk spool could not be opened or written."""


class TransportError(EtalonError):
    """The MQTT broker refused the connection or the credentials."""


class StoreError(EtalonError):
    """A store is unreachable or failed; the write may be retried."""


class StoreRejected(StoreError):
    """A store answered and refused the data itself; retrying the same data cannot succeed."""
