"""The SCPI instruments of the simulated bench: a multifunction calibrator, DMMs wired to it, and
the bench's control channel.

Each speaks SCPI through :class:`drivers.sim.scpi.ScpiSimulator` (TCP and/or a pty) with a real
error queue: ``-222,"Data out of range"`` for a level beyond the instrument or its fixed range,
``-221,"Settings conflict"`` for a set-point refused by the fault, ``-113,"Undefined header"``
for what it does not know. The commands are listed in ``docs/bench-simulator.md``.

Faults (:mod:`drivers.sim.scpi_faults`, also as ``SIMulate:FAULt <name>[,<value>]`` on the
instrument itself or through the control channel): every instrument has ``HANG``, ``DELAY``,
``GARBAGE``, ``DISCONNECT`` (the simulator's :class:`~drivers.sim.faults.FaultHooks`); the
calibrator ``REFUSE`` (every set-point and ``OUTP ON`` answered with -221 — ``OUTP OFF`` always
works) and ``UNSTABLE`` (the output wanders and never settles); a DMM ``SILENT`` (stops answering
queries, still takes commands), ``SILENT_AFTER n`` (answers n more readings — READ?, FETC?,
MEAS? — then goes silent: "stops answering mid-point") and ``SERIAL text`` (``*IDN?`` shows
another serial: the unit was swapped).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from core.clock import Clock
from drivers.sim.bench_physics import FUNCTIONS, OVERRANGE, BenchPhysics, Meter
from drivers.sim.faults import FaultHooks
from drivers.sim.scpi_base import (
    OVERLOAD,
    ScpiInstrument,
    no_params,
    one_param,
    pick_range,
    pick_value,
    setting_query,
)
from drivers.sim.scpi_faults import (
    COMMON_FAULTS,
    FaultCommands,
    non_negative,
    on_off,
    word_param,
)
from drivers.sim.scpi_instruments import DMM_FUNCTIONS, DMM_LONG_FORMS, Dmm, DmmFunction
from drivers.sim.scpi_parser import (
    DATA_OUT_OF_RANGE,
    ILLEGAL_PARAMETER,
    MISSING_PARAMETER,
    ScpiError,
    number,
)

SETTINGS_CONFLICT = (-221, "Settings conflict")


def _on_off_param(params: list[str]) -> bool:
    """The single ON/OFF (1/0) parameter of a command; -224 when it is neither."""
    try:
        return on_off(one_param(params))
    except ValueError:
        raise ScpiError(*ILLEGAL_PARAMETER) from None


# -- the calibrator --------------------------------------------------------------------------

_FUNCTION_ALIASES = {
    "VOLT": "VOLT:DC",
    "VOLT:DC": "VOLT:DC",
    "VOLTAGE": "VOLT:DC",
    "VOLTAGE:DC": "VOLT:DC",
    "DCV": "VOLT:DC",
    "VOLT:AC": "VOLT:AC",
    "VOLTAGE:AC": "VOLT:AC",
    "ACV": "VOLT:AC",
    "CURR": "CURR:DC",
    "CURR:DC": "CURR:DC",
    "CURRENT": "CURR:DC",
    "CURRENT:DC": "CURR:DC",
    "DCI": "CURR:DC",
    "RES": "RES",
    "RESISTANCE": "RES",
    "OHMS": "RES",
}

_SOURCE_HEADERS = {
    "VOLT:DC": "[SOURce]:VOLTage:[DC]",
    "VOLT:AC": "[SOURce]:VOLTage:AC",
    "CURR:DC": "[SOURce]:CURRent:[DC]",
    "RES": "[SOURce]:RESistance",
}


class Calibrator(FaultCommands, ScpiInstrument):
    """A multifunction calibrator whose output is the bench's physics (see the module doc)."""

    FAULTS = (*COMMON_FAULTS, "REFUSE", "UNSTABLE")

    def __init__(self, idn: str, physics: BenchPhysics, faults: FaultHooks) -> None:
        self.physics = physics
        self.refuse = False
        self.faults = faults
        super().__init__(idn, {}, physics.clock)
        self.add_fault_commands()
        tree = self.tree
        tree.add("[SOURce]:FUNCtion:[MODE]", self._set_function)
        tree.add("[SOURce]:FUNCtion:[MODE]?", self._function_query)
        for function, header in _SOURCE_HEADERS.items():
            tree.add(f"{header}:[LEVel]:[IMMediate]:[AMPLitude]", self._set_level(function))
            level = f"{header}:[LEVel]:[IMMediate]:[AMPLitude]?"
            tree.add(level, setting_query(physics, "levels", function, "+.10E"))
            tree.add(f"{header}:RANGe", self._set_range(function))
            tree.add(f"{header}:RANGe?", setting_query(physics, "ranges", function))
            tree.add(f"{header}:RANGe:AUTO", self._set_auto(function))
            tree.add(f"{header}:RANGe:AUTO?", setting_query(physics, "auto_range", function, "d"))
        tree.add("[SOURce]:FREQuency:[CW]", self._set_frequency)
        tree.add("[SOURce]:FREQuency:[CW]?", lambda _: f"{self.physics.frequency_hz:+.6E}")
        tree.add("OUTPut:[STATe]", self._set_output)
        tree.add("OUTPut:[STATe]?", lambda _: "1" if self.physics.output else "0")

    def reset(self) -> None:
        """``*RST``: standby (output off), DC volts, levels 0, automatic ranges."""
        self.physics.reset()

    def set_fault(self, fault: str, value: str = "ON") -> None:
        """REFUSE and UNSTABLE besides the common faults."""
        name = fault.strip().upper()
        if name == "REFUSE":
            self.refuse = on_off(value)
        elif name == "UNSTABLE":
            self.physics.unstable = on_off(value)
        else:
            super().set_fault(fault, value)

    def clear_faults(self) -> None:
        """Every fault off."""
        super().clear_faults()
        self.refuse = False
        self.physics.unstable = False

    def fault_state(self) -> dict[str, object]:
        """The faults as plain data."""
        return super().fault_state() | {"refuse": self.refuse, "unstable": self.physics.unstable}

    def _refused(self) -> None:
        if self.refuse:
            raise ScpiError(*SETTINGS_CONFLICT)

    def _set_function(self, params: list[str]) -> None:
        word = word_param(params).upper()
        function = _FUNCTION_ALIASES.get(word)
        if function is None:
            raise ScpiError(*ILLEGAL_PARAMETER)
        self._refused()
        self.physics.set_function(function)

    def _function_query(self, params: list[str]) -> str:
        no_params(params)
        return self.physics.function

    def _set_level(self, function: str) -> Callable[[list[str]], None]:
        spec = FUNCTIONS[function]

        def handler(params: list[str]) -> None:
            level = pick_value(number(one_param(params)), spec.low, spec.high, 0.0)
            fixed = not self.physics.auto_range[function]
            if fixed and abs(level) > self.physics.ranges[function] * OVERRANGE:
                raise ScpiError(*DATA_OUT_OF_RANGE)
            self._refused()
            self.physics.set_level(function, level)

        return handler

    def _set_range(self, function: str) -> Callable[[list[str]], None]:
        spec = FUNCTIONS[function]

        def handler(params: list[str]) -> None:
            value = number(one_param(params), ("MIN", "MAX", "DEF", "AUTO"))
            if value == "AUTO":
                self._refused()
                self.physics.set_range(function, None)
                return
            chosen = pick_range(value, spec.ranges)
            if abs(self.physics.levels[function]) > chosen * OVERRANGE:
                raise ScpiError(*SETTINGS_CONFLICT)  # the level set does not fit that range
            self._refused()
            self.physics.set_range(function, chosen)

        return handler

    def _set_auto(self, function: str) -> Callable[[list[str]], None]:
        def handler(params: list[str]) -> None:
            if _on_off_param(params):
                self.physics.set_range(function, None)
            else:
                self.physics.set_range(function, self.physics.ranges[function])

        return handler

    def _set_frequency(self, params: list[str]) -> None:
        frequency = pick_value(number(one_param(params)), 10.0, 1e5, 1000.0)
        self._refused()
        self.physics.frequency_hz = frequency

    def _set_output(self, params: list[str]) -> None:
        on = _on_off_param(params)
        if on:
            self._refused()  # standby always works: it is what a runner's abort sends
        self.physics.set_output(on)


# -- DMMs ------------------------------------------------------------------------------------

BENCH_DMM_FUNCTIONS: dict[str, DmmFunction] = {
    **DMM_FUNCTIONS,
    "VOLT:AC": DmmFunction("VOLT:AC", "acv", "voltage", (0.1, 1.0, 10.0, 100.0, 1000.0)),
    "CURR:DC": DmmFunction("CURR:DC", "dci", "current", (1e-3, 1e-2, 0.1, 1.0, 10.0)),
}
_METER_FUNCTION = {"VOLT:DC": "VOLT:DC", "VOLT:AC": "VOLT:AC", "CURR:DC": "CURR:DC"}
_METER_FUNCTION |= {"RES": "RES", "FRES": "RES"}


class BenchDmm(FaultCommands, Dmm):
    """A DMM wired to the bench: it reads the calibrator's output through its :class:`Meter`
    (error model, noise, drift), rounded to its resolution — the range divided by 10^digits
    (6 for a 6½-digit meter) — with automatic ranging unless a range is fixed."""

    FAULTS = (*COMMON_FAULTS, "SILENT", "SILENT_AFTER", "SERIAL")

    def __init__(
        self, idn: str, meter: Meter, clock: Clock, faults: FaultHooks, digits: int = 6
    ) -> None:
        self.meter = meter
        self.digits = digits
        self.auto: dict[str, bool] = {}
        self.faults = faults
        self.silent_after: int | None = None
        super().__init__(
            idn,
            {},
            clock,
            significant_digits=digits + 3,
            nplc_choices=(0.02, 0.2, 1, 10, 100),
            functions=BENCH_DMM_FUNCTIONS,
        )
        self.add_fault_commands()
        for key in self.functions:
            long = DMM_LONG_FORMS[key]
            self.tree.add(f"[SENSe]:{long}:RANGe:AUTO", self._set_auto(key))
            self.tree.add(f"[SENSe]:{long}:RANGe:AUTO?", setting_query(self, "auto", key, "d"))

    def reset(self) -> None:
        """Power-on state: DC volts, automatic ranges."""
        super().reset()
        self.auto = dict.fromkeys(self.functions, True)

    # -- faults --

    def set_fault(self, fault: str, value: str = "ON") -> None:
        """SILENT, SILENT_AFTER and SERIAL besides the common faults."""
        name = fault.strip().upper()
        if name == "SILENT":
            self.faults.hang = on_off(value)
            self.silent_after = None
        elif name == "SILENT_AFTER":
            count = int(non_negative(value))
            self.silent_after = count
        elif name == "SERIAL":
            serial = value.strip().strip("\"'")
            if not serial or "," in serial or len(serial) > 32:
                raise ValueError("a serial is 1-32 characters without commas")
            parts = self.idn.split(",")
            parts[2] = serial
            self.idn = ",".join(parts)
        else:
            super().set_fault(fault, value)

    def clear_faults(self) -> None:
        """Every fault off (a swapped serial stays: the unit on the bench is another one)."""
        super().clear_faults()
        self.silent_after = None

    def fault_state(self) -> dict[str, object]:
        """The faults as plain data."""
        return super().fault_state() | {
            "silent_after": self.silent_after,
            "serial": self.serial,
        }

    # -- ranges and readings --

    def _configure(self, key: str) -> Callable[[list[str]], None]:
        def handler(params: list[str]) -> None:
            if len(params) > 2:
                raise ScpiError(*ILLEGAL_PARAMETER)
            choice = number(params[0], ("MIN", "MAX", "DEF", "AUTO")) if params else "AUTO"
            self._choose_range(key, choice)
            self.function = key
            self.sample_count = 1

        return handler

    def _set_range(self, key: str) -> Callable[[list[str]], None]:
        def handler(params: list[str]) -> None:
            self._choose_range(key, number(one_param(params), ("MIN", "MAX", "DEF", "AUTO")))

        return handler

    def _choose_range(self, key: str, choice: float | str) -> None:
        if choice in ("AUTO", "DEF"):
            self.auto[key] = True
            return
        self.range[key] = pick_range(choice, self.functions[key].ranges)
        self.auto[key] = False

    def _set_auto(self, key: str) -> Callable[[list[str]], None]:
        def handler(params: list[str]) -> None:
            self.auto[key] = _on_off_param(params)

        return handler

    def _read(self, params: list[str]) -> str:
        no_params(params)
        if self.silent_after is not None:  # SILENT_AFTER: count the readings down
            if self.silent_after == 0:
                self.faults.hang = True  # the simulator swallows this reply and all after it
                self.silent_after = None
            else:
                self.silent_after -= 1
        function = _METER_FUNCTION[self.function]
        ranges = self.functions[self.function].ranges
        values = []
        for _ in range(self.sample_count):
            now = self.clock.now_ns()
            value = self.meter.indicate(function, now)
            if self.auto[self.function] and math.isfinite(value):
                self.range[self.function] = next(
                    (r for r in ranges if abs(value) <= r * OVERRANGE), ranges[-1]
                )
            span = self.range[self.function]
            if not math.isfinite(value) or abs(value) > span * OVERRANGE:
                values.append(OVERLOAD)
                continue
            values.append(self.meter.rounded(function, value, span * 10.0**-self.digits))
        digits = self.significant_digits - 1
        return ",".join(f"{v:+.{digits}E}" for v in values)


# -- the bench's control channel -------------------------------------------------------------


class BenchControl(ScpiInstrument):
    """The control channel of the bench: faults of any instrument by name, and the truth.

    ``SIMulate:FAULt <instrument>,<fault>[,<value>]``, ``SIMulate:FAULt:CLEar [<instrument>]``,
    ``SIMulate:STATe?`` (JSON: every instrument's state and faults), ``SIMulate:TRUTh?`` (the
    calibrator's output now, noise-free)."""

    def __init__(
        self,
        idn: str,
        clock: Clock,
        set_fault: Callable[[str, str, str], None],
        clear_faults: Callable[[str | None], None],
        state: Callable[[], dict[str, object]],
        truth: Callable[[], float],
    ) -> None:
        self._set_fault = set_fault
        self._clear_faults = clear_faults
        self._state = state
        self._truth = truth
        super().__init__(idn, {}, clock)
        self.tree.add("SIMulate:FAULt", self._fault)
        self.tree.add("SIMulate:FAULt:CLEar", self._clear)
        self.tree.add("SIMulate:STATe?", lambda _: json.dumps(self._state(), sort_keys=True))
        self.tree.add("SIMulate:TRUTh?", lambda _: f"{self._truth():+.12E}")

    def _fault(self, params: list[str]) -> None:
        if len(params) not in (2, 3):
            raise ScpiError(*MISSING_PARAMETER if len(params) < 2 else ILLEGAL_PARAMETER)
        instrument, fault = (p.strip().strip("\"'") for p in params[:2])
        value = params[2].strip() if len(params) == 3 else "ON"
        try:
            self._set_fault(instrument, fault, value)
        except ValueError:
            raise ScpiError(*ILLEGAL_PARAMETER) from None

    def _clear(self, params: list[str]) -> None:
        if len(params) > 1:
            raise ScpiError(*ILLEGAL_PARAMETER)
        try:
            self._clear_faults(params[0].strip().strip("\"'") if params else None)
        except ValueError:
            raise ScpiError(*ILLEGAL_PARAMETER) from None
