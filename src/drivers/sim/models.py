"""Physical models of reference standards and lab environments, on an injectable clock.

Each model's parameters (:mod:`drivers.sim.model_params`, re-exported here) are built into a
sampler whose ``sample(quantity, t_ns)`` returns the true value plus noise at that instant.
"""

from __future__ import annotations

import math
import random
from typing import Generic, Protocol, TypeVar

from drivers.sim.model_params import (
    QUANTITIES,
    SECONDS_PER_YEAR,
    Ambient,
    ChillerParams,
    Excursion,
    FrequencyStandardParams,
    ModelParams,
    ResistorParams,
    RoomParams,
    Step,
    ThermometerParams,
    ZenerParams,
    datetime_ns,
    seconds,
    years_since,
)

__all__ = [
    "QUANTITIES",
    "SECONDS_PER_YEAR",
    "Ambient",
    "Chiller",
    "ChillerParams",
    "Excursion",
    "FrequencyStandard",
    "FrequencyStandardParams",
    "ModelParams",
    "Resistor",
    "ResistorParams",
    "Room",
    "RoomParams",
    "Sampler",
    "Step",
    "Thermometer",
    "ThermometerParams",
    "Zener",
    "ZenerParams",
    "build_model",
    "datetime_ns",
]


class Sampler(Protocol):
    """A built model: the value of a quantity at an instant, with noise."""

    kind: str

    def sample(self, quantity: str, t_ns: int) -> float:
        """Value of ``quantity`` at ``t_ns``."""
        ...

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free value, for tests that check a fit against the truth."""
        ...


class _Seeded(Protocol):
    @property
    def seed(self) -> int: ...


P = TypeVar("P", bound=_Seeded)
S = TypeVar("S", bound=ZenerParams | ResistorParams)


class _Model(Generic[P]):
    """A sampler's parameters and its own random stream (seeded by the parameters)."""

    def __init__(self, params: P) -> None:
        self.p = params
        self._rng = random.Random(params.seed)


class _Standard(_Model[S]):
    """A standard whose value is nominal × (1 + relative deviation in ppm), the deviation made
    of offset, drift since the epoch, temperature coefficient(s) and an optional step, in an
    ambient whose temperature is its second quantity."""

    def _nominal(self) -> float:
        raise NotImplementedError

    def _temperature_ppm(self, dt_k: float) -> tuple[float, ...]:
        """The terms of the relative deviation (ppm) ``dt_k`` kelvin away from the reference
        temperature (added one by one, in order)."""
        raise NotImplementedError

    def _with_noise(self, value: float) -> float:
        raise NotImplementedError

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free value of the standard or ambient temperature."""
        p = self.p
        temperature = p.ambient.true_c(t_ns)
        if quantity == "temperature":
            return temperature
        rel_ppm = p.offset_ppm + p.drift_ppm_per_year * years_since(t_ns, p.epoch)
        for term in self._temperature_ppm(temperature - p.reference_temperature_c):
            rel_ppm += term
        rel_ppm += p.step.ppm_at(t_ns) if p.step else 0.0
        return self._nominal() * (1 + rel_ppm * 1e-6)

    def sample(self, quantity: str, t_ns: int) -> float:
        """Value with white noise."""
        value = self.true_value(quantity, t_ns)
        if quantity == "temperature":
            return value + self._rng.gauss(0, self.p.ambient.noise_k)
        return self._with_noise(value)


class Zener(_Standard[ZenerParams]):
    """Samples a :class:`ZenerParams` reference: voltage or ambient temperature."""

    kind = "zener"

    def _nominal(self) -> float:
        return self.p.nominal_v

    def _temperature_ppm(self, dt_k: float) -> tuple[float, ...]:
        return (self.p.tempco_uv_per_v_per_k * dt_k,)

    def _with_noise(self, value: float) -> float:
        return value + self._rng.gauss(0, self.p.noise_uv * 1e-6)


class Resistor(_Standard[ResistorParams]):
    """Samples a :class:`ResistorParams` standard resistor: resistance or bath temperature."""

    kind = "resistor"

    def _nominal(self) -> float:
        return self.p.nominal_ohm

    def _temperature_ppm(self, dt_k: float) -> tuple[float, ...]:
        return self.p.alpha_ppm_per_k * dt_k, self.p.beta_ppm_per_k2 * dt_k * dt_k

    def _with_noise(self, value: float) -> float:
        return value * (1 + self._rng.gauss(0, self.p.noise_ppm) * 1e-6)


class Room(_Model[RoomParams]):
    """Samples a :class:`RoomParams` calibration room."""

    kind = "room"

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free temperature (°C), humidity (%rh) or pressure (hPa)."""
        p = self.p
        s = seconds(t_ns)
        if quantity == "temperature":
            ripple = p.hvac_amplitude_k * math.sin(2 * math.pi * s / p.hvac_period_s)
            excursion = p.excursion.offset_k(t_ns) if p.excursion else 0.0
            return p.temperature.true_c(t_ns) + ripple + excursion
        if quantity == "humidity":
            # Relative humidity falls when the room warms: anti-phase with the daily cycle.
            daily = (p.temperature.true_c(t_ns) - p.temperature.mean_c) / max(
                p.temperature.daily_amplitude_k, 1e-9
            )
            return min(100.0, max(0.0, p.humidity_mean_rh - p.humidity_daily_amplitude_rh * daily))
        if quantity == "pressure":
            days = s / 86_400
            weather = p.pressure_weather_amplitude_hpa * math.sin(
                2 * math.pi * days / p.pressure_weather_period_days
            )
            tide = p.pressure_tide_amplitude_hpa * math.cos(4 * math.pi * days)
            return p.pressure_mean_hpa + weather + tide
        raise KeyError(quantity)

    def sample(self, quantity: str, t_ns: int) -> float:
        """Value with noise."""
        noise = {
            "temperature": self.p.temperature.noise_k,
            "humidity": self.p.humidity_noise_rh,
            "pressure": self.p.pressure_noise_hpa,
        }[quantity]
        return self.true_value(quantity, t_ns) + self._rng.gauss(0, noise)


class Chiller(_Model[ChillerParams]):
    """Samples a :class:`ChillerParams` chiller loop."""

    kind = "chiller"

    def _phase(self, t_ns: int) -> float:
        return (seconds(t_ns) % self.p.cycle_s) / self.p.cycle_s

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free supply/return temperature (°C), flow (L/min), compressor state (0/1)
        or setpoint (°C)."""
        p = self.p
        phase = self._phase(t_ns)
        running = phase < p.duty
        if quantity == "compressor":
            return 1.0 if running else 0.0
        if quantity == "setpoint":
            return p.setpoint_c
        if quantity == "flow":
            return p.flow_l_per_min
        # Supply falls from the top of the band to the bottom while the compressor runs, then
        # drifts back up while it rests.
        top, bottom = p.setpoint_c + p.band_k / 2, p.setpoint_c - p.band_k / 2
        if running:
            supply = top - (top - bottom) * phase / p.duty
        else:
            supply = bottom + (top - bottom) * (phase - p.duty) / (1 - p.duty)
        if quantity == "supply_temperature":
            return supply
        if quantity == "return_temperature":
            return supply + p.load_k
        raise KeyError(quantity)

    def sample(self, quantity: str, t_ns: int) -> float:
        """Value with noise (none on the compressor state and the setpoint)."""
        value = self.true_value(quantity, t_ns)
        if quantity in ("supply_temperature", "return_temperature"):
            return value + self._rng.gauss(0, self.p.noise_k)
        if quantity == "flow":
            return max(0.0, value + self._rng.gauss(0, self.p.flow_noise_l_per_min))
        return value


class FrequencyStandard(_Model[FrequencyStandardParams]):
    """Samples a :class:`FrequencyStandardParams` standard as a counter reads it.

    The stochastic parts are stateful processes advanced exactly over the time between two
    samples: random-walk FM is a Wiener process; flicker FM is approximated, as usual, by a sum of
    Ornstein–Uhlenbeck processes with time constants one decade apart (1 s … 10^5 s), which gives a
    flat Allan deviation over that range. Samples must come in time order to mean anything.
    """

    kind = "frequency"
    _FLICKER_TAUS_S = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
    # Each OU component's standard deviation, per unit of the wanted flicker floor; calibrated
    # numerically (Allan deviation of the sum is flat within ±20 % from 2 s to 10^4 s).
    _FLICKER_SIGMA_PER_FLOOR = 1.29

    def __init__(self, params: FrequencyStandardParams) -> None:
        super().__init__(params)
        self._last_s: float | None = None
        self._random_walk = 0.0
        sigma = params.flicker_fm_floor * self._FLICKER_SIGMA_PER_FLOOR
        self._flicker = [self._rng.gauss(0, sigma) for _ in self._FLICKER_TAUS_S]

    def _fractional_true(self, t_ns: int) -> float:
        p = self.p
        days = (seconds(t_ns) - p.epoch.timestamp()) / 86_400
        dt_k = p.ambient.true_c(t_ns) - p.reference_temperature_c
        return p.offset + p.drift_per_day * days + p.tempco_per_k * dt_k

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free frequency (Hz)."""
        if quantity != "frequency":
            raise KeyError(quantity)
        return self.p.nominal_hz * (1 + self._fractional_true(t_ns))

    def _advance(self, now_s: float) -> None:
        p = self.p
        if self._last_s is None or now_s <= self._last_s:
            self._last_s = now_s if self._last_s is None else self._last_s
            return
        dt = now_s - self._last_s
        self._last_s = now_s
        diffusion = 3 * p.random_walk_fm_adev_1s**2  # AVAR of RWFM is D·τ/3
        self._random_walk += self._rng.gauss(0, math.sqrt(diffusion * dt))
        sigma = p.flicker_fm_floor * self._FLICKER_SIGMA_PER_FLOOR
        for i, tau in enumerate(self._FLICKER_TAUS_S):
            decay = math.exp(-dt / tau)
            self._flicker[i] = self._flicker[i] * decay + self._rng.gauss(
                0, sigma * math.sqrt(1 - decay * decay)
            )

    def sample(self, quantity: str, t_ns: int) -> float:
        """Frequency averaged over one gate, with the noise processes advanced to t."""
        if quantity != "frequency":
            raise KeyError(quantity)
        p = self.p
        self._advance(seconds(t_ns))
        white = self._rng.gauss(0, p.white_fm_adev_1s / math.sqrt(p.gate_s))
        y = self._fractional_true(t_ns) + white + self._random_walk + sum(self._flicker)
        return p.nominal_hz * (1 + y)


class Thermometer(_Model[ThermometerParams]):
    """Samples a :class:`ThermometerParams` probe: indicated temperature and resistance."""

    kind = "thermometer"

    def _probe_error_k(self, t_ns: int) -> float:
        p = self.p
        return (p.probe_offset_mk + p.drift_mk_per_year * years_since(t_ns, p.epoch)) * 1e-3

    def resistance_at(self, temperature_c: float) -> float:
        """Callendar–Van Dusen resistance of the probe at a temperature (°C ≥ 0)."""
        p = self.p
        t = temperature_c
        return p.r0_ohm * (1 + p.cvd_a * t + p.cvd_b * t * t)

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Indicated temperature (bath + probe error) or the probe's resistance, noise-free."""
        indicated = self.p.bath.true_c(t_ns) + self._probe_error_k(t_ns)
        if quantity == "temperature":
            return indicated
        if quantity == "resistance":
            return self.resistance_at(indicated)
        raise KeyError(quantity)

    def sample(self, quantity: str, t_ns: int) -> float:
        """Value with readout noise (the same noise, in kelvin, on both quantities)."""
        noise_k = self._rng.gauss(0, self.p.noise_mk * 1e-3)
        indicated = self.true_value("temperature", t_ns) + noise_k
        if quantity == "temperature":
            return indicated
        if quantity == "resistance":
            return self.resistance_at(indicated)
        raise KeyError(quantity)


def build_model(
    params: ZenerParams
    | ResistorParams
    | RoomParams
    | ChillerParams
    | FrequencyStandardParams
    | ThermometerParams,
) -> Sampler:
    """The sampler for a model's parameters."""
    if isinstance(params, ZenerParams):
        return Zener(params)
    if isinstance(params, ResistorParams):
        return Resistor(params)
    if isinstance(params, ChillerParams):
        return Chiller(params)
    if isinstance(params, FrequencyStandardParams):
        return FrequencyStandard(params)
    if isinstance(params, ThermometerParams):
        return Thermometer(params)
    return Room(params)
