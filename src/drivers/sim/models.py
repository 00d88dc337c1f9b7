"""Physical models of reference standards and lab environments, on an injectable clock.

Each model is configured by a frozen pydantic model (``kind`` is the discriminator) and built into
a sampler whose ``sample(quantity, t_ns)`` returns the true value plus noise at that instant.
Parameters carry their units in their names. The defaults are plausible for a national lab:
a 10 V Zener reference drifting a fraction of a µV/V per year, a 1 Ω or 10 kΩ standard resistor in
an oil bath, and a calibration room at 23 °C with HVAC ripple.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, Protocol

from pydantic import AwareDatetime, Field

from core.models import FrozenModel

SECONDS_PER_YEAR = 365.25 * 86_400
_DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _seconds(t_ns: int) -> float:
    return t_ns / 1e9


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_ns(moment: datetime) -> int:
    """Exact UTC nanoseconds of an aware datetime (float seconds cannot resolve ns today)."""
    return (moment - _UNIX_EPOCH) // timedelta(microseconds=1) * 1000


def _years_since(t_ns: int, epoch: datetime) -> float:
    return (_seconds(t_ns) - epoch.timestamp()) / SECONDS_PER_YEAR


class Step(FrozenModel):
    """A sudden change of the standard's value at one instant (a shock, a repair)."""

    at: AwareDatetime
    size_ppm: float = Field(..., description="Relative size of the step, in parts per million.")

    def ppm_at(self, t_ns: int) -> float:
        """The step's contribution at time t (0 before it)."""
        return self.size_ppm if t_ns >= datetime_ns(self.at) else 0.0


class Ambient(FrozenModel):
    """Temperature around a standard: mean, daily cycle, noise."""

    mean_c: float = 23.0
    daily_amplitude_k: float = Field(0.2, ge=0)
    noise_k: float = Field(0.005, ge=0)
    utc_offset_h: float = Field(7.0, description="Local time of the lab (Vietnam: +7).")
    peak_hour: float = Field(15.0, ge=0, lt=24, description="Local hour of the daily maximum.")

    def true_c(self, t_ns: int) -> float:
        """Noise-free temperature at t."""
        hours = (_seconds(t_ns) / 3600 + self.utc_offset_h) % 24
        return self.mean_c + self.daily_amplitude_k * math.cos(
            2 * math.pi * (hours - self.peak_hour) / 24
        )


class ZenerParams(FrozenModel):
    """A DC voltage reference (Zener standard, e.g. 10 V output)."""

    kind: Literal["zener"] = "zener"
    nominal_v: float = 10.0
    offset_uv_per_v: float = Field(0.8, description="Deviation from nominal at the epoch, µV/V.")
    drift_uv_per_v_per_year: float = Field(-0.4, description="Linear drift, µV/V per year.")
    epoch: AwareDatetime = _DEFAULT_EPOCH
    noise_uv: float = Field(0.2, ge=0, description="White noise, µV rms.")
    tempco_uv_per_v_per_k: float = Field(0.02, description="Temperature coefficient, µV/V per K.")
    reference_temperature_c: float = 23.0
    ambient: Ambient = Field(default_factory=Ambient)
    step: Step | None = None
    seed: int = 1


class ResistorParams(FrozenModel):
    """A standard resistor, usually in an oil or air bath."""

    kind: Literal["resistor"] = "resistor"
    nominal_ohm: float = Field(10_000.0, gt=0)
    offset_ppm: float = 1.2
    drift_ppm_per_year: float = 0.3
    epoch: AwareDatetime = _DEFAULT_EPOCH
    alpha_ppm_per_k: float = Field(0.5, description="Linear temperature coefficient.")
    beta_ppm_per_k2: float = Field(-0.03, description="Quadratic temperature coefficient.")
    reference_temperature_c: float = 25.0
    noise_ppm: float = Field(0.02, ge=0)
    ambient: Ambient = Field(
        default_factory=lambda: Ambient(mean_c=25.0, daily_amplitude_k=0.003, noise_k=0.0005)
    )
    step: Step | None = None
    seed: int = 2


class Excursion(FrozenModel):
    """A room temperature fault: from ``start``, temperature moves at ``rate_k_per_h`` for
    ``duration_h`` hours, then holds (an HVAC failure); with ``hold_h``, it holds that long and
    then comes back at the same rate (the HVAC repaired)."""

    start: AwareDatetime
    rate_k_per_h: float
    duration_h: float = Field(1.0, gt=0)
    hold_h: float | None = Field(None, ge=0, description="None: the excursion never ends.")

    def offset_k(self, t_ns: int) -> float:
        """Temperature added by the excursion at t."""
        hours = (_seconds(t_ns) - self.start.timestamp()) / 3600
        if hours <= 0:
            return 0.0
        peak = self.rate_k_per_h * min(hours, self.duration_h)
        if self.hold_h is None or hours <= self.duration_h + self.hold_h:
            return peak
        back = hours - self.duration_h - self.hold_h
        return peak * max(0.0, 1.0 - back / self.duration_h)


class RoomParams(FrozenModel):
    """A calibration room: temperature, relative humidity, barometric pressure."""

    kind: Literal["room"] = "room"
    temperature: Ambient = Field(
        default_factory=lambda: Ambient(mean_c=23.0, daily_amplitude_k=0.35, noise_k=0.02)
    )
    hvac_amplitude_k: float = Field(0.12, ge=0, description="HVAC control ripple amplitude.")
    hvac_period_s: float = Field(900.0, gt=0)
    humidity_mean_rh: float = Field(45.0, ge=0, le=100)
    humidity_daily_amplitude_rh: float = Field(4.0, ge=0)
    humidity_noise_rh: float = Field(0.3, ge=0)
    pressure_mean_hpa: float = 1010.0
    pressure_weather_amplitude_hpa: float = Field(4.0, ge=0)
    pressure_weather_period_days: float = Field(4.0, gt=0)
    pressure_tide_amplitude_hpa: float = Field(0.8, ge=0, description="Semi-diurnal tide.")
    pressure_noise_hpa: float = Field(0.03, ge=0)
    excursion: Excursion | None = None
    seed: int = 3


class ChillerParams(FrozenModel):
    """A chiller loop keeping a bath or a room's water circuit near a setpoint: the compressor
    cycles on and off, so the supply temperature saw-tooths inside the control band."""

    kind: Literal["chiller"] = "chiller"
    setpoint_c: float = 18.0
    band_k: float = Field(1.0, gt=0, description="Hysteresis band of the on/off control.")
    cycle_s: float = Field(600.0, gt=0, description="Period of one on/off cycle.")
    duty: float = Field(0.4, gt=0, lt=1, description="Share of the cycle the compressor runs.")
    load_k: float = Field(3.5, description="Return minus supply temperature (heat load).")
    flow_l_per_min: float = Field(40.0, ge=0)
    noise_k: float = Field(0.02, ge=0)
    flow_noise_l_per_min: float = Field(0.3, ge=0)
    seed: int = 4


class FrequencyStandardParams(FrozenModel):
    """A frequency standard (rubidium, caesium, OCXO) read by a counter over a gate time.

    Its fractional frequency y carries the noise types of an Allan-deviation plot: white FM
    (σ_y ∝ τ^-1/2), flicker FM (a floor), random-walk FM (σ_y ∝ τ^1/2), plus ageing.
    """

    kind: Literal["frequency"] = "frequency"
    nominal_hz: float = Field(10e6, gt=0)
    offset: float = Field(2e-12, description="Fractional frequency offset at the epoch.")
    drift_per_day: float = Field(-5e-14, description="Ageing: fractional frequency per day.")
    epoch: AwareDatetime = _DEFAULT_EPOCH
    gate_s: float = Field(1.0, gt=0, description="Averaging time of one reading (counter gate).")
    white_fm_adev_1s: float = Field(1e-11, ge=0, description="σ_y(1 s) of the white FM noise.")
    flicker_fm_floor: float = Field(2e-13, ge=0, description="σ_y floor of the flicker FM noise.")
    random_walk_fm_adev_1s: float = Field(
        1e-15, ge=0, description="σ_y(1 s) of the random-walk FM noise (grows as √τ)."
    )
    tempco_per_k: float = Field(1e-13, description="Fractional frequency per K of ambient.")
    reference_temperature_c: float = 23.0
    ambient: Ambient = Field(
        default_factory=lambda: Ambient(mean_c=23.0, daily_amplitude_k=0.2, noise_k=0.0)
    )
    seed: int = 4


class ThermometerParams(FrozenModel):
    """A platinum resistance thermometer in a stirred bath, read by a thermometer readout.

    Resistance follows Callendar–Van Dusen (above 0 °C) from the probe's true temperature; the
    probe's calibration error and drift make the indicated temperature differ from the bath's.
    """

    kind: Literal["thermometer"] = "thermometer"
    bath: Ambient = Field(
        default_factory=lambda: Ambient(mean_c=23.0, daily_amplitude_k=0.002, noise_k=0.0)
    )
    r0_ohm: float = Field(25.5, gt=0, description="Resistance at 0 °C (25.5 Ω SPRT, 100 Ω PRT).")
    cvd_a: float = 3.9083e-3
    cvd_b: float = -5.775e-7
    probe_offset_mk: float = Field(0.0, description="Calibration error of the probe, mK.")
    drift_mk_per_year: float = Field(0.1, description="Probe drift, mK per year.")
    epoch: AwareDatetime = _DEFAULT_EPOCH
    noise_mk: float = Field(0.2, ge=0, description="Readout noise, mK rms.")
    seed: int = 5


ModelParams = Annotated[
    ZenerParams
    | ResistorParams
    | RoomParams
    | ChillerParams
    | FrequencyStandardParams
    | ThermometerParams,
    Field(discriminator="kind"),
]

QUANTITIES: dict[str, dict[str, str]] = {
    "zener": {"voltage": "V", "temperature": "°C"},
    "resistor": {"resistance": "Ω", "temperature": "°C"},
    "room": {"temperature": "°C", "humidity": "%rh", "pressure": "hPa"},
    "chiller": {
        "supply_temperature": "°C",
        "return_temperature": "°C",
        "flow": "L/min",
        "compressor": "1",
        "setpoint": "°C",
    },
    "frequency": {"frequency": "Hz"},
    "thermometer": {"temperature": "°C", "resistance": "Ω"},
}


class Sampler(Protocol):
    """A built model: the value of a quantity at an instant, with noise."""

    kind: str

    def sample(self, quantity: str, t_ns: int) -> float:
        """Value of ``quantity`` at ``t_ns``."""
        ...

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free value, for tests that check a fit against the truth."""
        ...


class Zener:
    """Samples a :class:`ZenerParams` reference."""

    kind = "zener"

    def __init__(self, params: ZenerParams) -> None:
        self.p = params
        self._rng = random.Random(params.seed)

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free voltage or ambient temperature."""
        p = self.p
        temperature = p.ambient.true_c(t_ns)
        if quantity == "temperature":
            return temperature
        rel_ppm = (
            p.offset_uv_per_v
            + p.drift_uv_per_v_per_year * _years_since(t_ns, p.epoch)
            + p.tempco_uv_per_v_per_k * (temperature - p.reference_temperature_c)
            + (p.step.ppm_at(t_ns) if p.step else 0.0)
        )
        return p.nominal_v * (1 + rel_ppm * 1e-6)

    def sample(self, quantity: str, t_ns: int) -> float:
        """Value with white noise."""
        value = self.true_value(quantity, t_ns)
        if quantity == "temperature":
            return value + self._rng.gauss(0, self.p.ambient.noise_k)
        return value + self._rng.gauss(0, self.p.noise_uv * 1e-6)


class Resistor:
    """Samples a :class:`ResistorParams` standard resistor."""

    kind = "resistor"

    def __init__(self, params: ResistorParams) -> None:
        self.p = params
        self._rng = random.Random(params.seed)

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free resistance or bath temperature."""
        p = self.p
        temperature = p.ambient.true_c(t_ns)
        if quantity == "temperature":
            return temperature
        dt = temperature - p.reference_temperature_c
        rel_ppm = (
            p.offset_ppm
            + p.drift_ppm_per_year * _years_since(t_ns, p.epoch)
            + p.alpha_ppm_per_k * dt
            + p.beta_ppm_per_k2 * dt * dt
            + (p.step.ppm_at(t_ns) if p.step else 0.0)
        )
        return p.nominal_ohm * (1 + rel_ppm * 1e-6)

    def sample(self, quantity: str, t_ns: int) -> float:
        """Value with white noise."""
        value = self.true_value(quantity, t_ns)
        if quantity == "temperature":
            return value + self._rng.gauss(0, self.p.ambient.noise_k)
        return value * (1 + self._rng.gauss(0, self.p.noise_ppm) * 1e-6)


class Room:
    """Samples a :class:`RoomParams` calibration room."""

    kind = "room"

    def __init__(self, params: RoomParams) -> None:
        self.p = params
        self._rng = random.Random(params.seed)

    def true_value(self, quantity: str, t_ns: int) -> float:
        """Noise-free temperature (°C), humidity (%rh) or pressure (hPa)."""
        p = self.p
        s = _seconds(t_ns)
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


class Chiller:
    """Samples a :class:`ChillerParams` chiller loop."""

    kind = "chiller"

    def __init__(self, params: ChillerParams) -> None:
        self.p = params
        self._rng = random.Random(params.seed)

    def _phase(self, t_ns: int) -> float:
        return (_seconds(t_ns) % self.p.cycle_s) / self.p.cycle_s

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


class FrequencyStandard:
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
        self.p = params
        self._rng = random.Random(params.seed)
        self._last_s: float | None = None
        self._random_walk = 0.0
        sigma = params.flicker_fm_floor * self._FLICKER_SIGMA_PER_FLOOR
        self._flicker = [self._rng.gauss(0, sigma) for _ in self._FLICKER_TAUS_S]

    def _fractional_true(self, t_ns: int) -> float:
        p = self.p
        days = (_seconds(t_ns) - p.epoch.timestamp()) / 86_400
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
        self._advance(_seconds(t_ns))
        white = self._rng.gauss(0, p.white_fm_adev_1s / math.sqrt(p.gate_s))
        y = self._fractional_true(t_ns) + white + self._random_walk + sum(self._flicker)
        return p.nominal_hz * (1 + y)


class Thermometer:
    """Samples a :class:`ThermometerParams` probe: indicated temperature and resistance."""

    kind = "thermometer"

    def __init__(self, params: ThermometerParams) -> None:
        self.p = params
        self._rng = random.Random(params.seed)

    def _probe_error_k(self, t_ns: int) -> float:
        p = self.p
        return (p.probe_offset_mk + p.drift_mk_per_year * _years_since(t_ns, p.epoch)) * 1e-3

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
