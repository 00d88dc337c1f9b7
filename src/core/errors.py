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
    ├── StoreError               a time-series or record store refused a write or is down
    │   └── StoreRejected        the store answered and refused the data (not retryable as is)
    └── OperationError           a request (API call, CLI command) that cannot be done as asked
        ├── NotFoundError        what it names does not exist
        ├── ConflictError        it clashes with what is recorded (an id in use, a wrong state)
        └── InvalidInputError    the input (a file, a field, an option) cannot be used

Features subclass the leaves they raise, so a caller may catch a feature's base
(``RegistryError``, ``AlertOperationError``) or a kind across features (``NotFoundError``):

    OperationError ── RegistryError (gateway.standards.errors), AlertOperationError
                      (gateway.alerts.lifecycle), each with NotFound / Conflict / invalid-input
                      children that are also the core leaf of that kind
    InvalidInputError ── AnalyticsError (gateway.analytics.errors, also a ValueError),
                         CsvError (gateway.analytics.cli)
    RegistryError ── ImportProblems (an import file's problems, one line each)
    InvalidInputError ── DccError (metrology.errors: DccInvalid, DccUnsafe, UnsupportedUnit,
                         SignatureError), MetrologyError (metrology._common, also a ValueError)
    InvalidInputError ── PkiError (core.pki: a refused CA or certificate operation)
    EtalonError ── LedgerError (ledger.errors: canonical form, keys, checkpoints, segments;
                   tampering itself is a verification report, not an error)

Each boundary maps the tree once: the HTTP API (``gateway.api.problems``) to status codes —
NotFoundError 404, ConflictError 409, InvalidInputError 422, other OperationError 400,
StoreError 503 — and the CLI (``app.cli``) to exit statuses.
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


class OperationError(EtalonError):
    """A request (an API call, a CLI command) that cannot be done as asked; the message says why
    in words the person who asked can act on."""

    @property
    def reason(self) -> str:
        """The message, as the API's problem body and the CLI print it."""
        return str(self)


class NotFoundError(OperationError):
    """What the request names does not exist."""


class ConflictError(OperationError):
    """The request clashes with what is recorded (an id in use, an alert in another state)."""


class InvalidInputError(OperationError):
    """The input (a file, a field, an option) cannot be used."""


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
