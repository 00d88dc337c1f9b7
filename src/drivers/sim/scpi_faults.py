"""Faults a simulated SCPI instrument switches on itself: the ``SIMulate:FAULt`` commands over
the simulator's live :class:`~drivers.sim.faults.FaultHooks` (``HANG``, ``DELAY``, ``GARBAGE``,
``DISCONNECT``), which an instrument extends with faults of its own (see
:mod:`drivers.sim.bench_instruments`)."""

from __future__ import annotations

import json
import math

from drivers.sim.faults import FaultHooks
from drivers.sim.scpi_base import no_params, one_param
from drivers.sim.scpi_parser import (
    ILLEGAL_PARAMETER,
    MISSING_PARAMETER,
    CommandTree,
    ScpiError,
)

SETTINGS_CONFLICT = (-221, "Settings conflict")

_ON = ("ON", "1", "TRUE")
_OFF = ("OFF", "0", "FALSE")

COMMON_FAULTS = ("HANG", "DELAY", "GARBAGE", "DISCONNECT")


_ON = ("ON", "1", "TRUE")
_OFF = ("OFF", "0", "FALSE")

COMMON_FAULTS = ("HANG", "DELAY", "GARBAGE", "DISCONNECT")


def on_off(text: str) -> bool:
    """ON/OFF/1/0 → bool; raises ValueError otherwise."""
    word = text.strip().strip("\"'").upper()
    if word in _ON:
        return True
    if word in _OFF:
        return False
    raise ValueError(f"{text!r} is not ON or OFF")


def apply_common_fault(hooks: FaultHooks, fault: str, value: str) -> bool:
    """Switch one of the faults every simulator has; False if ``fault`` is not one of them."""
    if fault == "HANG":
        hooks.hang = on_off(value)
    elif fault == "DISCONNECT":
        hooks.disconnected = on_off(value)
    elif fault == "DELAY":
        hooks.delay_s = non_negative(value)
    elif fault == "GARBAGE":
        rate = non_negative(value)
        if rate > 1:
            raise ValueError("GARBAGE is a rate between 0 and 1")
        hooks.garbage_rate = rate
    else:
        return False
    return True


def non_negative(text: str) -> float:
    """A finite number ≥ 0; raises ValueError otherwise."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r} is not a number ≥ 0")
    return value


def word_param(params: list[str]) -> str:
    """The single parameter of a command, unquoted."""
    return one_param(params).strip().strip("\"'")


class FaultCommands:
    """Mixin of the bench's SCPI instruments: live fault hooks shared with the simulator, and
    the ``SIMulate:FAULt`` commands that switch them."""

    FAULTS: tuple[str, ...] = COMMON_FAULTS
    faults: FaultHooks
    tree: CommandTree
    idn: str

    def add_fault_commands(self) -> None:
        """Register ``SIMulate:FAULt``, ``SIMulate:FAULt:CLEar`` and ``SIMulate:FAULt?``."""
        self.tree.add("SIMulate:FAULt", self._sim_fault)
        self.tree.add("SIMulate:FAULt:CLEar", self._sim_clear)
        self.tree.add("SIMulate:FAULt?", lambda _: json.dumps(self.fault_state()))

    @property
    def serial(self) -> str:
        """The serial number ``*IDN?`` shows now."""
        return self.idn.split(",")[2]

    def set_fault(self, fault: str, value: str = "ON") -> None:
        """Switch a fault by name (see the module doc); raises ValueError for an unknown one."""
        name = fault.strip().upper()
        if not apply_common_fault(self.faults, name, value):
            raise ValueError(
                f"unknown fault {fault!r} (this instrument has {', '.join(self.FAULTS)})"
            )

    def clear_faults(self) -> None:
        """Every fault off."""
        self.faults.hang = self.faults.disconnected = False
        self.faults.delay_s = self.faults.garbage_rate = 0.0

    def fault_state(self) -> dict[str, object]:
        """The faults as plain data."""
        return {
            "hang": self.faults.hang,
            "delay_s": self.faults.delay_s,
            "garbage_rate": self.faults.garbage_rate,
            "disconnected": self.faults.disconnected,
        }

    def _sim_fault(self, params: list[str]) -> None:
        if not params:
            raise ScpiError(*MISSING_PARAMETER)
        if len(params) > 2:
            raise ScpiError(*ILLEGAL_PARAMETER)
        try:
            self.set_fault(params[0], params[1] if len(params) == 2 else "ON")
        except ValueError:
            raise ScpiError(*ILLEGAL_PARAMETER) from None

    def _sim_clear(self, params: list[str]) -> None:
        no_params(params)
        self.clear_faults()
