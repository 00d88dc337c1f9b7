"""What every simulated SCPI instrument shares: an IEEE 488.2 error queue and status bytes,
the common commands, and the checks of a command's parameters (see
:mod:`drivers.sim.scpi_instruments` for the personalities built on it)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

from core.clock import Clock
from drivers.sim.models import (
    Sampler,
)
from drivers.sim.scpi_parser import (
    DATA_OUT_OF_RANGE,
    MISSING_PARAMETER,
    PARAMETER_NOT_ALLOWED,
    QUEUE_OVERFLOW,
    CommandTree,
    ScpiError,
    parse_message,
)

ERROR_QUEUE_DEPTH = 20
OVERLOAD = 9.9e37
"""What SCPI instruments answer for an input beyond the range (9.90000000E+37)."""

NO_ERROR = '+0,"No error"'

# *ESR? bits set by errors of each class (IEEE 488.2 standard event status register).
_ESR_COMMAND_ERROR = 32
_ESR_EXECUTION_ERROR = 16
_ESR_DEVICE_ERROR = 8
_ESR_QUERY_ERROR = 4


class ScpiInstrument:
    """The parts every SCPI instrument shares: identity, error queue, common commands."""

    def __init__(self, idn: str, inputs: Mapping[str, Sampler], clock: Clock) -> None:
        self.idn = idn
        self.inputs = dict(inputs)
        self.clock = clock
        self.errors: deque[str] = deque()
        self.esr = 0
        self.tree = CommandTree()
        self.tree.add("*IDN?", lambda _: self.idn)
        self.tree.add("*RST", self._rst)
        self.tree.add("*CLS", self._cls)
        self.tree.add("*OPC?", lambda _: "1")
        self.tree.add("*OPC", lambda _: None)
        self.tree.add("*WAI", lambda _: None)
        self.tree.add("*ESR?", self._esr)
        self.tree.add("*STB?", lambda _: str(4 if self.errors else 0))
        self.tree.add("SYSTem:ERRor:[NEXT]?", self._next_error)
        self.tree.add("SYSTem:ERRor:COUNt?", lambda _: str(len(self.errors)))
        self.tree.add("SYSTem:VERSion?", lambda _: "1999.0")
        self.reset()

    # -- error queue ---------------------------------------------------------------------------

    def push_error(self, code: int, message: str) -> None:
        """Add an entry to the error queue (the last one becomes -350 when it is full)."""
        if len(self.errors) >= ERROR_QUEUE_DEPTH:
            self.errors[-1] = ScpiError(*QUEUE_OVERFLOW).entry
            return
        self.errors.append(ScpiError(code, message).entry)
        if -199 <= code <= -100:
            self.esr |= _ESR_COMMAND_ERROR
        elif -299 <= code <= -200:
            self.esr |= _ESR_EXECUTION_ERROR
        elif -499 <= code <= -400:
            self.esr |= _ESR_QUERY_ERROR
        else:
            self.esr |= _ESR_DEVICE_ERROR

    def _next_error(self, params: list[str]) -> str:
        no_params(params)
        return self.errors.popleft() if self.errors else NO_ERROR

    def _esr(self, params: list[str]) -> str:
        no_params(params)
        value, self.esr = self.esr, 0
        return str(value)

    def _cls(self, params: list[str]) -> None:
        no_params(params)
        self.errors.clear()
        self.esr = 0

    def _rst(self, params: list[str]) -> None:
        no_params(params)
        self.reset()

    def reset(self) -> None:
        """``*RST``: the personality's default state."""

    # -- program messages ----------------------------------------------------------------------

    def execute(self, message: str) -> list[str]:
        """Run one program message; returns the replies of its queries, in order."""
        replies: list[str] = []
        for command in parse_message(message):
            if isinstance(command, ScpiError):
                self.push_error(command.code, command.message)
                continue
            try:
                handler = self.tree.find(command.tokens, command.is_query).handler
                reply = handler(command.params)
            except ScpiError as exc:
                self.push_error(exc.code, exc.message)
                continue
            if command.is_query and reply is not None:
                replies.append(reply)
        return replies

    def sample(self, input_name: str, quantity: str) -> float:
        """The value an input presents now."""
        return self.inputs[input_name].sample(quantity, self.clock.now_ns())


def no_params(params: list[str]) -> None:
    """Refuse parameters on a command that takes none."""
    if params:
        raise ScpiError(*PARAMETER_NOT_ALLOWED)


def query(answer: Callable[[], str]) -> Callable[[list[str]], str]:
    """The handler of a query that takes no parameters: it answers ``answer()``."""

    def handler(params: list[str]) -> str:
        no_params(params)
        return answer()

    return handler


def setting_query(
    owner: object, setting: str, key: str, spec: str = "+.5E"
) -> Callable[[list[str]], str]:
    """The handler of a query answering one function's value of a setting kept per function,
    ``owner.<setting>[key]``, formatted by ``spec`` (``"d"`` answers a flag as 1 or 0). The
    mapping is looked up when asked, as a reset replaces it."""
    return query(lambda: format(getattr(owner, setting)[key], spec))


def one_param(params: list[str]) -> str:
    """The single parameter of a command."""
    if not params:
        raise ScpiError(*MISSING_PARAMETER)
    if len(params) > 1:
        raise ScpiError(*PARAMETER_NOT_ALLOWED)
    return params[0]


def pick_range(value: float | str, ranges: tuple[float, ...]) -> float:
    """The smallest range that holds ``value`` (MIN/MAX/DEF keywords allowed)."""
    if value == "MIN":
        return ranges[0]
    if value in ("MAX", "DEF", "AUTO"):
        return ranges[-1] if value == "MAX" else ranges[len(ranges) // 2]
    assert isinstance(value, float)
    for candidate in ranges:
        if abs(value) <= candidate:
            return candidate
    raise ScpiError(*DATA_OUT_OF_RANGE)


def pick_value(value: float | str, low: float, high: float, default: float) -> float:
    """A numeric setting within [low, high] (MIN/MAX/DEF keywords allowed)."""
    if value == "MIN":
        return low
    if value == "MAX":
        return high
    if value == "DEF":
        return default
    assert isinstance(value, float)
    if not low <= value <= high:
        raise ScpiError(*DATA_OUT_OF_RANGE)
    return value
