"""The parameters of the simulators' physical models (see :mod:`drivers.sim.models`), and the
time helpers they share.

Each model is configured by a frozen pydantic model (``kind`` is the discriminator). Parameters
carry their units in their names. The defaults are plausible for a national lab: a 10 V Zener
reference drifting a fraction of a µV/V per year, a 1 Ω or 10 kΩ standard resistor in an oil
bath, and a calibration room at 23 °C with HVAC ripple.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from core.models import FrozenModel

SECONDS_PER_YEAR = 365.25 * 86_400
_DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def seconds(t_ns: int) -> float:
    """Nanoseconds as seconds."""
    return t_ns / 1e9


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_ns(moment: datetime) -> int:
    """Exact UTC nanoseconds of an aware datetime (float seconds cannot resolve ns today)."""
    return (moment - _UNIX_EPOCH) // timedelta(microseconds=1) * 1000


def years_since(t_ns: int, epoch: datetime) -> float:
    """Years (of 365.25 days) from ``epoch`` to ``t_ns``."""
    return (seconds(t_ns) - epoch.timestamp()) / SECONDS_PER_YEAR


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
        hours = (seconds(t_ns) / 3600 + self.utc_offset_h) % 24
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

    @property
    def offset_ppm(self) -> float:
        """The offset as a relative deviation in ppm (µV/V is ppm)."""
        return self.offset_uv_per_v

    @property
    def drift_ppm_per_year(self) -> float:
        """The drift in ppm per year."""
        return self.drift_uv_per_v_per_year


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
        hours = (seconds(t_ns) - self.start.timestamp()) / 3600
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
