"""The physics of a simulated calibration bench: one calibrator output, seen by every meter.

A multifunction calibrator sources one quantity at a time — DC voltage, AC voltage (RMS), DC
current or resistance — at its set level. What appears at its terminals is the set level with the
calibrator's own small error (gain and offset), approached on a first-order response with time
constant ``tau_s`` from wherever the output was when the level, function or output state changed,
plus the source's noise. Every meter wired to the bench sees that same output (:meth:`Bench
Physics.present`): the noise is a function of time shared by all, so two meters reading at the
same instant see the same source value, each adding its own error, noise and resolution
(:class:`Meter`). Output off: voltage and current read ~0 (the meters' own noise); resistance
reads open circuit (overload).

Every value is a function of the injectable clock's time, so a test can drive the physics with
:class:`core.clock.ManualClock` and know the truth exactly (:meth:`BenchPhysics.true_output`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from core.clock import Clock
from core.models import FrozenModel

FunctionName = Literal["VOLT:DC", "VOLT:AC", "CURR:DC", "RES"]
"""The calibrator's functions (and the meters' matching ones)."""

Quantity = Literal["dcv", "acv", "dci", "ohms"]


@dataclass(frozen=True)
class SourceFunction:
    """One function of the calibrator: the quantity at the terminals, unit, ranges, limits."""

    name: FunctionName
    quantity: Quantity
    unit: str
    ranges: tuple[float, ...]
    low: float
    high: float

    def range_for(self, level: float) -> float:
        """The smallest range that holds a level."""
        for candidate in self.ranges:
            if abs(level) <= candidate * OVERRANGE:
                return candidate
        return self.ranges[-1]


OVERRANGE = 1.2
"""A range holds levels up to 120 % of its nominal value (as calibrators and DMMs do)."""

FUNCTIONS: dict[str, SourceFunction] = {
    f.name: f
    for f in (
        SourceFunction("VOLT:DC", "dcv", "V", (0.1, 1.0, 10.0, 100.0, 1000.0), -1020.0, 1020.0),
        SourceFunction("VOLT:AC", "acv", "V", (0.1, 1.0, 10.0, 100.0, 1000.0), 0.0, 1020.0),
        SourceFunction("CURR:DC", "dci", "A", (1e-3, 1e-2, 0.1, 1.0, 10.0), -11.0, 11.0),
        SourceFunction("RES", "ohms", "Ω", tuple(10.0**k for k in range(1, 9)), 0.0, 1.1e8),
    )
}
QUANTITY_FUNCTION: dict[str, str] = {f.quantity: f.name for f in FUNCTIONS.values()}


class ErrorModel(FrozenModel):
    """How a meter (or the calibrator) departs from the truth, in the function's unit.

    indication = x·(1 + gain_ppm·10⁻⁶) + offset + quadratic·x² + drift_per_hour·h + noise,
    rounded to the resolution; h is the hours since the bench started."""

    offset: float = Field(0.0, description="Zero error, in the unit.")
    gain_ppm: float = Field(0.0, description="Gain (scale) error, parts per million.")
    quadratic: float = Field(
        0.0, description="Non-linearity: a term quadratic·x² (1/unit; 2e-7 /V is 20 µV at 10 V)."
    )
    noise: float = Field(0.0, ge=0, description="White noise, rms, in the unit.")
    drift_per_hour: float = Field(0.0, description="Zero drift during the run, unit per hour.")
    resolution: float | None = Field(
        None, gt=0, description="Rounding step; None: the meter's own (range and digits)."
    )

    def apply(self, x: float, hours: float) -> float:
        """The noise-free indication of a true value x."""
        return (
            x * (1 + self.gain_ppm * 1e-6)
            + self.offset
            + self.quadratic * x * x
            + self.drift_per_hour * hours
        )


class CalibratorModel(FrozenModel):
    """The calibrator's physics: settling, its own error, its noise, the instability fault."""

    tau_s: float = Field(0.1, gt=0, le=3600, description="Time constant of the output's settling.")
    gain_ppm: float = Field(1.5, description="Gain error of the output, ppm.")
    offsets: dict[FunctionName, float] = Field(
        default_factory=lambda: dict[FunctionName, float](
            {"VOLT:DC": 1e-6, "CURR:DC": 2e-9, "RES": 1e-4}
        ),
        description="Zero error of each function's output, in its unit.",
    )
    noise_ppm_of_range: float = Field(
        0.1, ge=0, description="Output noise, rms, ppm of the range in use."
    )
    noise_interval_s: float = Field(
        0.01, gt=0, description="The noise takes a new value this often (seen by every meter)."
    )
    unstable_ppm_of_range: float = Field(
        300.0, ge=0, description="Instability fault: amplitude of the wander, ppm of range."
    )
    unstable_period_s: float = Field(3.0, gt=0, description="Instability fault: its period.")


@dataclass
class _Transition:
    """The output's current first-order approach: from ``start`` at ``t0_ns`` to ``target``."""

    quantity: Quantity
    start: float
    target: float
    t0_ns: int


class BenchPhysics:
    """The calibrator's state and the output every meter sees (see the module doc).

    Mutated by the simulated calibrator (``set_*`` methods) and read by the meters
    (:meth:`present`); not thread-safe, used from one event loop."""

    def __init__(self, model: CalibratorModel, clock: Clock, seed: int = 1) -> None:
        self.model = model
        self.clock = clock
        self.seed = seed
        self.started_ns = clock.now_ns()
        self.function: str = "VOLT:DC"
        self.levels: dict[str, float] = dict.fromkeys(FUNCTIONS, 0.0)
        self.ranges: dict[str, float] = {n: f.ranges[0] for n, f in FUNCTIONS.items()}
        self.auto_range: dict[str, bool] = dict.fromkeys(FUNCTIONS, True)
        self.frequency_hz = 1000.0
        self.output = False
        self.unstable = False
        self._transition = _Transition("dcv", 0.0, 0.0, self.started_ns)
        self.changes = 0
        """How often the output's target changed (a test can tell a refused set-point)."""

    # -- state -------------------------------------------------------------------------------

    @property
    def spec(self) -> SourceFunction:
        """The active function."""
        return FUNCTIONS[self.function]

    def range_in_use(self) -> float:
        """The active function's range."""
        return self.ranges[self.function]

    def _target(self) -> float:
        """Where the output is heading: the level with the calibrator's own error, or 0."""
        if not self.output:
            return 0.0
        level = self.levels[self.function]
        offsets: dict[str, float] = {str(k): v for k, v in self.model.offsets.items()}
        return level * (1 + self.model.gain_ppm * 1e-6) + offsets.get(self.function, 0.0)

    def _retarget(self) -> None:
        now = self.clock.now_ns()
        quantity = self.spec.quantity
        current = self._transition
        start = self._settled(now) if current.quantity == quantity else 0.0
        self._transition = _Transition(quantity, start, self._target(), now)
        self.changes += 1

    def set_function(self, function: str) -> None:
        """Switch the output to another function (its level kept from before)."""
        if function != self.function:
            self.function = function
            self._retarget()

    def set_level(self, function: str, level: float) -> None:
        """Set a function's level and make it the active function."""
        self.levels[function] = level
        if self.auto_range[function]:
            self.ranges[function] = FUNCTIONS[function].range_for(level)
        self.function = function
        self._retarget()

    def set_range(self, function: str, value: float | None) -> None:
        """Fix a function's range (None: automatic)."""
        if value is None:
            self.auto_range[function] = True
            self.ranges[function] = FUNCTIONS[function].range_for(self.levels[function])
        else:
            self.auto_range[function] = False
            self.ranges[function] = value

    def set_output(self, on: bool) -> None:
        """Operate (on) or standby (off)."""
        if on != self.output:
            self.output = on
            self._retarget()

    def reset(self) -> None:
        """``*RST``: standby, DC volts, every level 0, automatic ranges."""
        self.output = False
        self.function = "VOLT:DC"
        self.levels = dict.fromkeys(FUNCTIONS, 0.0)
        self.auto_range = dict.fromkeys(FUNCTIONS, True)
        self.ranges = {n: f.ranges[0] for n, f in FUNCTIONS.items()}
        self.frequency_hz = 1000.0
        self._retarget()

    # -- the output ----------------------------------------------------------------------------

    def _settled(self, t_ns: int) -> float:
        """The first-order approach, noise-free."""
        transition = self._transition
        elapsed = max(0.0, (t_ns - transition.t0_ns) / 1e9)
        decay = math.exp(-elapsed / self.model.tau_s)
        return transition.target + (transition.start - transition.target) * decay

    def true_output(self, t_ns: int | None = None) -> float:
        """The output at the terminals at t (default: now), without noise — the truth every
        meter's reading is compared with. Includes the instability fault's wander."""
        t = self.clock.now_ns() if t_ns is None else t_ns
        value = self._settled(t)
        if self.unstable and self.output:
            amplitude = self.model.unstable_ppm_of_range * 1e-6 * self.range_in_use()
            value += amplitude * math.sin(2 * math.pi * t / 1e9 / self.model.unstable_period_s)
        return value

    def noise_at(self, t_ns: int) -> float:
        """The source's noise at t: one value per ``noise_interval_s``, the same for every meter
        that looks within that interval."""
        if not self.output:
            return 0.0
        sigma = self.model.noise_ppm_of_range * 1e-6 * self.range_in_use()
        if sigma == 0:
            return 0.0
        bucket = int(t_ns / 1e9 / self.model.noise_interval_s)
        return random.Random(self.seed * 1_000_003 + bucket).gauss(0.0, sigma)

    def present(self, quantity: str, t_ns: int | None = None) -> float:
        """What a meter measuring ``quantity`` sees at the terminals at t: the output with its
        noise when the calibrator sources that quantity, else 0 (voltage, current) or an open
        circuit (resistance: infinity)."""
        t = self.clock.now_ns() if t_ns is None else t_ns
        sourcing = self.output and self.spec.quantity == quantity
        if quantity == "ohms":
            return self.true_output(t) + self.noise_at(t) if sourcing else math.inf
        if not sourcing:
            return 0.0
        value = self.true_output(t) + self.noise_at(t)
        return abs(value) if quantity == "acv" else value

    def true_present(self, quantity: str, t_ns: int | None = None) -> float:
        """What :meth:`present` shows, without the source's noise (the truth a meter's
        noise-free indication is computed from)."""
        t = self.clock.now_ns() if t_ns is None else t_ns
        sourcing = self.output and self.spec.quantity == quantity
        if quantity == "ohms":
            return self.true_output(t) if sourcing else math.inf
        if not sourcing:
            return 0.0
        value = self.true_output(t)
        return abs(value) if quantity == "acv" else value

    def hours(self, t_ns: int | None = None) -> float:
        """Hours since the bench started (for the meters' drift)."""
        t = self.clock.now_ns() if t_ns is None else t_ns
        return (t - self.started_ns) / 3.6e12

    def state(self) -> dict[str, object]:
        """The calibrator's state as plain data (the control channel's ``SIM:STATE?``)."""
        return {
            "function": self.function,
            "level": self.levels[self.function],
            "unit": self.spec.unit,
            "range": self.range_in_use(),
            "auto_range": self.auto_range[self.function],
            "frequency_hz": self.frequency_hz,
            "output": self.output,
            "true_output": self.true_output(),
            "unstable": self.unstable,
            "changes": self.changes,
        }


class Meter:
    """A meter wired to the bench: the truth it sees through its error model, its noise and its
    resolution. One per simulated DMM or transmitter."""

    def __init__(self, physics: BenchPhysics, errors: dict[str, ErrorModel], seed: int) -> None:
        self.physics = physics
        self.errors = errors
        self._rng = random.Random(seed)

    def error_model(self, function: str) -> ErrorModel:
        """The meter's error model of a function (a perfect meter where none is given)."""
        return self.errors.get(function) or ErrorModel()

    def expected(self, function: str, true_value: float, t_ns: int) -> float:
        """The noise-free indication of a true value (what a test compares readings with)."""
        return self.error_model(function).apply(true_value, self.physics.hours(t_ns))

    def indicate(self, function: str, t_ns: int) -> float:
        """One reading of a function at t, before rounding: the bench's output as this meter
        sees it, with its error and noise; infinity for an open circuit."""
        quantity = FUNCTIONS[function].quantity
        seen = self.physics.present(quantity, t_ns)
        if math.isinf(seen):
            return seen
        model = self.error_model(function)
        value = model.apply(seen, self.physics.hours(t_ns))
        if model.noise:
            value += self._rng.gauss(0.0, model.noise)
        return abs(value) if quantity == "acv" else value

    def rounded(self, function: str, value: float, resolution: float | None) -> float:
        """A reading rounded to the error model's resolution, else to ``resolution``."""
        step = self.error_model(function).resolution or resolution
        return round(value / step) * step if step else value
