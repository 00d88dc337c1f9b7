"""The one error tree of etalon.

Every library exception (pymodbus, asyncua, pyvisa, pyserial, paho-mqtt, HTTP clients, sqlite3)
is mapped to one of these at the boundary where it is caught, with the instrument, channel or
file it concerns and the original exception as ``__cause__``::

    EtalonError
    ├── ConfigError              bad config file: file, field path, reason
    ├── DriverError              an instrument could not be read (or written)
    │   ├── DriverTimeout        no complete answer within the timeout
    │   ├── ProtocolError        an answer that breaks the protocol or cannot be parsed
    │   ├── NotConnected         no connection (refused, closed, lost)
    │   └── WriteError           a set-point that did not take effect (records: what was sent)
    │       ├── WriteRefused     refused before anything was sent: unknown target, wrong type,
    │       │   └── LimitExceeded    outside the limits the instrument config declares
    │       ├── WriteRejected    the instrument refused it or did not confirm it
    │       ├── WriteInterrupted the exchange broke off (timeout, lost connection) mid-write
    │       └── SafeStateError   the safe state could not be confirmed (every step was tried)
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
    """An MQTT payload does not match the wire format; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SpoolError(EtalonError):
    """The on-disk spool could not be opened or written."""


class TransportError(EtalonError):
    """The MQTT broker refused the connection or the credentials."""


class StoreError(EtalonError):
    """A store is unreachable or failed; the write may be retried."""


class StoreRejected(StoreError):
    """A store answered and refused the data itself; retrying the same data cannot succeed."""


class WriteError(DriverError):
    """A set-point write that did not take effect as asked.

    ``records`` holds the :class:`drivers.setpoints.WriteRecord` of every write of the call that
    failed, in order — those that succeeded and the failed one — so an audit keeps what reached
    the instrument even when the call raised (typed access: ``drivers.setpoints.records_of``).
    """

    def __init__(
        self,
        instrument: str,
        message: str,
        target: str | None = None,
        records: tuple[object, ...] = (),
    ) -> None:
        super().__init__(instrument, message, target)
        self.target = target
        self.records = records


class WriteRefused(WriteError):
    """Refused by etalon before anything was sent: an unknown target, a value of the wrong
    type, or one the target cannot take. ``code`` says which (``unknown_target``,
    ``wrong_type``, ``not_finite``, ``not_integer``, ``below_min``, ``above_max``,
    ``not_allowed``, ``unusable``)."""

    def __init__(
        self,
        instrument: str,
        target: str,
        value: object,
        limit: str,
        code: str,
        message: str,
        records: tuple[object, ...] = (),
    ) -> None:
        super().__init__(instrument, message, target, records)
        self.value = value
        self.limit = limit
        self.code = code


class LimitExceeded(WriteRefused):
    """The value lies outside the limits the instrument config declares for the target
    (``limit`` names the bound it broke, e.g. ``max 20 V``); nothing was sent."""


class WriteRejected(WriteError):
    """The instrument refused the write (an error-queue entry, a Modbus exception response, a
    Bad StatusCode) or did not confirm it (the read-back differs); ``instrument_message`` is the
    instrument's own words where it gave any."""

    def __init__(
        self,
        instrument: str,
        message: str,
        target: str | None = None,
        instrument_message: str | None = None,
        records: tuple[object, ...] = (),
    ) -> None:
        super().__init__(instrument, message, target, records)
        self.instrument_message = instrument_message


class WriteInterrupted(WriteError):
    """The exchange broke off during a write (no reply, lost connection, unusable reply): what
    the instrument did is unknown. The cause (``DriverTimeout``, ``NotConnected``,
    ``ProtocolError``) is ``__cause__``."""


class SafeStateError(WriteError):
    """The safe state could not be confirmed: every step was still tried; ``failures`` lists
    what failed, ``records`` what was done."""

    def __init__(
        self, instrument: str, failures: list[str], records: tuple[object, ...] = ()
    ) -> None:
        super().__init__(
            instrument, f"safe state not confirmed: {'; '.join(failures)}", None, records
        )
        self.failures = failures
