"""Exit statuses of the ``etalon`` command, mapped once from the error tree (:mod:`core.errors`).

0 done; 1 a bad config or a request that cannot be done as asked (a file, a field, an option);
2 a bad command line (argparse); 3 the MQTT broker refused or dropped us; 4 the spool cannot be
used; 5 anything else; 128 + the signal number when a signal ended it: 130 SIGINT, 143 SIGTERM
(a forced stop, :mod:`core.signals`; an interrupted calibration run). ``etalon calibrate`` adds
6, a run aborted (``calibration.console.EXIT_ABORTED``).
"""

from __future__ import annotations

from core.errors import ConfigError, OperationError, SpoolError, TransportError
from core.i18n import language, translate_reason

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_TRANSPORT = 3
EXIT_SPOOL = 4
EXIT_OTHER = 5
EXIT_SIGNAL_BASE = 128
"""A process ended by a signal exits with this + the signal number, as a shell reports it."""


def signal_status(signum: int) -> int:
    """The exit status of a process ended by signal ``signum``: 130 for SIGINT, 143 for SIGTERM
    (a forced stop, :mod:`core.signals`; a calibration run interrupted, ``calibration.cli``)."""
    return EXIT_SIGNAL_BASE + signum


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    """Exit status and message for an error that stops a process, in the process's language
    (:func:`core.i18n.translate_reason`; an error's class by the catalogue's name for it)."""
    if isinstance(exc, BaseExceptionGroup):
        first = exc.exceptions[0]
        return exit_code_for(first)
    lang = language()
    message = translate_reason(str(exc), lang)
    if isinstance(exc, ConfigError | OperationError):
        return EXIT_CONFIG, message
    if isinstance(exc, TransportError):
        return EXIT_TRANSPORT, message
    if isinstance(exc, SpoolError):
        return EXIT_SPOOL, message
    return EXIT_OTHER, f"{translate_reason(type(exc).__name__, lang)}: {message}"
