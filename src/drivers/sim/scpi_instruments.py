"""Simulated SCPI instruments: the personalities behind the shipped VISA profiles.

Each personality is an IEEE 488.2 / SCPI instrument with a real error queue, common commands
(``*IDN?``, ``*RST``, ``*CLS``, ``*OPC?``, ``*ESR?``, ``*STB?``), and its own measurement
subsystem. Values come from the physical models (:mod:`drivers.sim.models`) sampled at the
instant the query is processed. Personalities are named like the profiles they answer
(``generic-dmm``, ``longscale-dmm``, ``frequency-counter``, ``thermometer-readout``). What
they share is :mod:`drivers.sim.scpi_base`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.clock import Clock
from drivers.sim.models import (
    FrequencyStandard,
    FrequencyStandardParams,
    ModelParams,
    ResistorParams,
    Sampler,
    ThermometerParams,
    ZenerParams,
    build_model,
)
from drivers.sim.scpi_base import (
    OVERLOAD,
    ScpiInstrument,
    no_params,
    one_param,
    pick_range,
    pick_value,
    setting_query,
)
from drivers.sim.scpi_parser import (
    DATA_OUT_OF_RANGE,
    ILLEGAL_PARAMETER,
    PARAMETER_NOT_ALLOWED,
    ScpiError,
    channel_list,
    number,
)

__all__ = [
    "DMM_FUNCTIONS",
    "DMM_LONG_FORMS",
    "OVERLOAD",
    "PERSONALITIES",
    "Counter",
    "Dmm",
    "DmmFunction",
    "Personality",
    "ScpiInstrument",
    "ThermometerReadout",
    "build_instrument",
]


# -- DMM -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DmmFunction:
    """One measurement function of a DMM: where its value comes from and its ranges."""

    scpi: str
    input: str
    quantity: str
    ranges: tuple[float, ...]


DMM_FUNCTIONS: dict[str, DmmFunction] = {
    "VOLT:DC": DmmFunction("VOLT:DC", "dcv", "voltage", (0.1, 1.0, 10.0, 100.0, 1000.0)),
    "RES": DmmFunction("RES", "ohms", "resistance", tuple(10.0**k for k in range(2, 9))),
    "FRES": DmmFunction("FRES", "ohms", "resistance", tuple(10.0**k for k in range(2, 9))),
}
"""The functions of the shipped DMM personalities."""

DMM_LONG_FORMS = {
    "VOLT:DC": "VOLTage:[DC]",
    "VOLT:AC": "VOLTage:AC",
    "CURR:DC": "CURRent:[DC]",
    "RES": "RESistance",
    "FRES": "FRESistance",
}
"""Header of each function in the command tree (DC is optional where SCPI makes it so)."""


class Dmm(ScpiInstrument):
    """A digital multimeter: DC volts from one input, resistance (2- and 4-wire) from another
    (or the ``functions`` given)."""

    def __init__(
        self,
        idn: str,
        inputs: Mapping[str, Sampler],
        clock: Clock,
        significant_digits: int,
        nplc_choices: tuple[float, ...],
        functions: Mapping[str, DmmFunction] | None = None,
    ) -> None:
        self.functions = dict(functions or DMM_FUNCTIONS)
        self.significant_digits = significant_digits
        self.nplc_choices = nplc_choices
        self.function = "VOLT:DC"
        self.range: dict[str, float] = {}
        self.nplc: dict[str, float] = {}
        self.sample_count = 1
        self.autozero = True
        super().__init__(idn, inputs, clock)
        tree = self.tree
        for key in self.functions:
            long = DMM_LONG_FORMS[key]
            tree.add(f"CONFigure:{long}", self._configure(key))
            tree.add(f"MEASure:{long}?", self._measure(key))
            tree.add(f"[SENSe]:{long}:NPLCycles", self._set_nplc(key))
            tree.add(f"[SENSe]:{long}:NPLCycles?", setting_query(self, "nplc", key))
            tree.add(f"[SENSe]:{long}:RANGe", self._set_range(key))
            tree.add(f"[SENSe]:{long}:RANGe?", setting_query(self, "range", key))
        tree.add("CONFigure?", lambda _: f'"{self.function} {self.range[self.function]:+.5E}"')
        tree.add("[SENSe]:FUNCtion", self._set_function)
        tree.add("[SENSe]:FUNCtion?", lambda _: f'"{self.function}"')
        tree.add("[SENSe]:VOLTage:[DC]:ZERO:AUTO", self._set_autozero)
        tree.add("SAMPle:COUNt", self._set_sample_count)
        tree.add("SAMPle:COUNt?", lambda _: str(self.sample_count))
        tree.add("TRIGger:SOURce", self._set_trigger)
        tree.add("INITiate", lambda _: None)
        tree.add("READ?", self._read)
        tree.add("FETCh?", self._read)

    def reset(self) -> None:
        """Power-on state: DC volts, 10 V range, 10 NPLC, one sample."""
        self.function = "VOLT:DC"
        self.range = {key: f.ranges[len(f.ranges) // 2] for key, f in self.functions.items()}
        if "VOLT:DC" in self.range:
            self.range["VOLT:DC"] = 10.0
        self.nplc = dict.fromkeys(self.functions, 10.0)
        self.sample_count = 1
        self.autozero = True

    def _configure(self, key: str) -> Callable[[list[str]], None]:
        def handler(params: list[str]) -> None:
            if len(params) > 2:
                raise ScpiError(*PARAMETER_NOT_ALLOWED)
            if params:
                self.range[key] = pick_range(
                    number(params[0], ("MIN", "MAX", "DEF", "AUTO")), self.functions[key].ranges
                )
            self.function = key
            self.sample_count = 1

        return handler

    def _measure(self, key: str) -> Callable[[list[str]], str]:
        def handler(params: list[str]) -> str:
            self._configure(key)(params)
            return self._read([])

        return handler

    def _set_nplc(self, key: str) -> Callable[[list[str]], None]:
        def handler(params: list[str]) -> None:
            value = number(one_param(params))
            if value in ("MIN", "MAX", "DEF"):
                choices = self.nplc_choices
                self.nplc[key] = {"MIN": choices[0], "MAX": choices[-1], "DEF": 10.0}[str(value)]
                return
            if value not in self.nplc_choices:
                raise ScpiError(*DATA_OUT_OF_RANGE)
            self.nplc[key] = float(value)

        return handler

    def _set_range(self, key: str) -> Callable[[list[str]], None]:
        def handler(params: list[str]) -> None:
            self.range[key] = pick_range(
                number(one_param(params), ("MIN", "MAX", "DEF", "AUTO")), self.functions[key].ranges
            )

        return handler

    def _set_function(self, params: list[str]) -> None:
        name = one_param(params).strip("\"'").upper()
        aliases = {
            "VOLT": "VOLT:DC",
            "VOLTAGE": "VOLT:DC",
            "VOLTAGE:DC": "VOLT:DC",
            "VOLTAGE:AC": "VOLT:AC",
            "CURR": "CURR:DC",
            "CURRENT": "CURR:DC",
            "CURRENT:DC": "CURR:DC",
            "RESISTANCE": "RES",
            "FRESISTANCE": "FRES",
        }
        name = aliases.get(name, name)
        if name not in self.functions:
            raise ScpiError(*ILLEGAL_PARAMETER)
        self.function = name

    def _set_autozero(self, params: list[str]) -> None:
        word = one_param(params).upper()
        if word not in ("ON", "OFF", "1", "0", "ONCE"):
            raise ScpiError(*ILLEGAL_PARAMETER)
        self.autozero = word in ("ON", "1")

    def _set_sample_count(self, params: list[str]) -> None:
        self.sample_count = int(pick_value(number(one_param(params)), 1, 1000, 1))

    def _set_trigger(self, params: list[str]) -> None:
        word = one_param(params).upper()
        if word not in ("IMM", "IMMEDIATE", "BUS", "EXT", "EXTERNAL"):
            raise ScpiError(*ILLEGAL_PARAMETER)

    def _read(self, params: list[str]) -> str:
        no_params(params)
        function = self.functions[self.function]
        full_scale = self.range[self.function] * 1.2
        values = []
        for _ in range(self.sample_count):
            value = self.sample(function.input, function.quantity)
            values.append(OVERLOAD if abs(value) > full_scale else value)
        digits = self.significant_digits - 1
        return ",".join(f"{v:+.{digits}E}" for v in values)


# -- counter ---------------------------------------------------------------------------------


class Counter(ScpiInstrument):
    """A frequency counter: the frequency of input 1, averaged over the gate time."""

    def __init__(self, idn: str, inputs: Mapping[str, Sampler], clock: Clock) -> None:
        self.gate_s = 0.1
        self.sample_count = 1
        super().__init__(idn, inputs, clock)
        tree = self.tree
        tree.add("CONFigure:FREQuency", self._configure)
        tree.add("MEASure:FREQuency?", self._measure)
        tree.add("[SENSe]:FREQuency:GATE:TIME", self._set_gate)
        tree.add("[SENSe]:FREQuency:GATE:TIME?", lambda _: f"{self.gate_s:+.6E}")
        tree.add("[SENSe]:FREQuency:GATE:SOURce", lambda _: None)
        tree.add("SAMPle:COUNt", self._set_sample_count)
        tree.add("TRIGger:SOURce", lambda _: None)
        tree.add("INITiate", lambda _: None)
        tree.add("READ?", self._read)
        tree.add("FETCh?", self._read)

    def reset(self) -> None:
        """Power-on state: 0.1 s gate, one sample."""
        self.gate_s = 0.1
        self.sample_count = 1
        self._apply_gate()

    def _apply_gate(self) -> None:
        # The standard's white FM averages down with the gate, as on a real counter.
        model = self.inputs.get("ch1")
        if isinstance(model, FrequencyStandard) and model.p.gate_s != self.gate_s:
            model.p = model.p.model_copy(update={"gate_s": self.gate_s})

    def _configure(self, params: list[str]) -> None:
        for param in params:
            if param.strip().startswith("(@"):
                if channel_list(param) != [1]:
                    raise ScpiError(*ILLEGAL_PARAMETER)
            else:
                expected = number(param)
                if isinstance(expected, float) and not 1e-3 <= expected <= 350e6:
                    raise ScpiError(*DATA_OUT_OF_RANGE)
        self.sample_count = 1

    def _measure(self, params: list[str]) -> str:
        self._configure(params)
        return self._read([])

    def _set_gate(self, params: list[str]) -> None:
        self.gate_s = pick_value(number(one_param(params)), 1e-5, 1000.0, 0.1)
        self._apply_gate()

    def _set_sample_count(self, params: list[str]) -> None:
        self.sample_count = int(pick_value(number(one_param(params)), 1, 1000, 1))

    def _read(self, params: list[str]) -> str:
        no_params(params)
        values = [self.sample("ch1", "frequency") for _ in range(self.sample_count)]
        return ",".join(f"{v:+.14E}" for v in values)


# -- thermometer readout ---------------------------------------------------------------------


class ThermometerReadout(ScpiInstrument):
    """A two-channel precision thermometer readout (PRT/SPRT), answering with units."""

    _UNITS = ("C", "K", "F")

    def __init__(self, idn: str, inputs: Mapping[str, Sampler], clock: Clock) -> None:
        self.unit = "C"
        super().__init__(idn, inputs, clock)
        tree = self.tree
        tree.add("MEASure:TEMPerature?", self._measure_temperature)
        tree.add("MEASure:FRESistance?", self._measure_resistance)
        tree.add("FETCh?", self._fetch)
        tree.add("UNIT:TEMPerature", self._set_unit)
        tree.add("UNIT:TEMPerature?", lambda _: self.unit)
        tree.add("[SENSe]:AVERage:COUNt", self._set_average)

    def reset(self) -> None:
        """Power-on state: °C."""
        self.unit = "C"

    def _channels(self, params: list[str], default: list[int]) -> list[int]:
        if len(params) > 1:
            raise ScpiError(*PARAMETER_NOT_ALLOWED)
        channels = channel_list(params[0]) if params else default
        for channel in channels:
            if f"ch{channel}" not in self.inputs:
                raise ScpiError(*ILLEGAL_PARAMETER)
        return channels

    def _in_unit(self, celsius: float) -> float:
        if self.unit == "K":
            return celsius + 273.15
        if self.unit == "F":
            return celsius * 9 / 5 + 32
        return celsius

    def _measure_temperature(self, params: list[str]) -> str:
        (channel,) = self._single(params)
        value = self._in_unit(self.sample(f"ch{channel}", "temperature"))
        return f"{value:.6f} {self.unit}"

    def _measure_resistance(self, params: list[str]) -> str:
        (channel,) = self._single(params)
        return f"{self.sample(f'ch{channel}', 'resistance'):.7f} OHM"

    def _single(self, params: list[str]) -> list[int]:
        channels = self._channels(params, [1])
        if len(channels) != 1:
            raise ScpiError(*ILLEGAL_PARAMETER)
        return channels

    def _fetch(self, params: list[str]) -> str:
        channels = self._channels(params, [1])
        values = [self._in_unit(self.sample(f"ch{c}", "temperature")) for c in channels]
        return ",".join(f"{v:.6f}" for v in values)

    def _set_average(self, params: list[str]) -> None:
        pick_value(number(one_param(params)), 1, 1000, 1)

    def _set_unit(self, params: list[str]) -> None:
        word = one_param(params).upper()
        if word not in self._UNITS:
            raise ScpiError(*ILLEGAL_PARAMETER)
        self.unit = word


# -- personalities ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Personality:
    """A simulated instrument answering one shipped profile."""

    name: str
    description: str
    idn: str
    """``*IDN?`` with ``{serial}`` to fill in."""
    inputs: Mapping[str, ModelParams]
    build: Callable[[str, Mapping[str, Sampler], Clock], ScpiInstrument]


PERSONALITIES: dict[str, Personality] = {
    p.name: p
    for p in (
        Personality(
            "generic-dmm",
            "6½-digit SCPI DMM: a 10 V Zener on the volts input, a 10 kΩ resistor on ohms",
            "ETALON-SIM,DMM6500-SIM,{serial},1.7.12b",
            {"dcv": ZenerParams(), "ohms": ResistorParams()},
            lambda idn, inputs, clock: Dmm(
                idn, inputs, clock, significant_digits=8, nplc_choices=(0.02, 0.2, 1, 10, 100)
            ),
        ),
        Personality(
            "longscale-dmm",
            "8½-digit long-scale DMM on a 10 V Zener reference",
            "ETALON-SIM,LS8508-SIM,{serial},2.04",
            {"dcv": ZenerParams(seed=11), "ohms": ResistorParams(seed=12)},
            lambda idn, inputs, clock: Dmm(
                idn,
                inputs,
                clock,
                significant_digits=10,
                nplc_choices=(0.02, 0.2, 1, 2, 10, 20, 50, 100, 200, 500, 1000),
            ),
        ),
        Personality(
            "frequency-counter",
            "12-digit frequency counter on a 10 MHz rubidium standard",
            "ETALON-SIM,FC53230-SIM,{serial},03.11-1911.2408",
            {"ch1": FrequencyStandardParams()},
            Counter,
        ),
        Personality(
            "thermometer-readout",
            "2-channel precision thermometer readout, SPRTs in a stirred bath",
            "ETALON-SIM,TR1594-SIM,{serial},1.20",
            {
                "ch1": ThermometerParams(),
                "ch2": ThermometerParams(seed=6, probe_offset_mk=0.8, r0_ohm=25.49),
            },
            ThermometerReadout,
        ),
    )
}


def _calibrator(idn: str, _inputs: Mapping[str, Sampler], clock: Clock) -> ScpiInstrument:
    # Imported here: the bench's instruments build on the classes of this module.
    from drivers.sim.bench_instruments import Calibrator
    from drivers.sim.bench_physics import BenchPhysics, CalibratorModel
    from drivers.sim.faults import FaultHooks

    return Calibrator(idn, BenchPhysics(CalibratorModel(), clock), FaultHooks())


def _bench_dmm(idn: str, _inputs: Mapping[str, Sampler], clock: Clock) -> ScpiInstrument:
    from drivers.sim.bench_instruments import BenchDmm
    from drivers.sim.bench_physics import BenchPhysics, CalibratorModel, ErrorModel, Meter
    from drivers.sim.faults import FaultHooks

    # Alone, its terminals are wired to an idle calibrator: it reads its own noise around 0 V.
    meter = Meter(
        BenchPhysics(CalibratorModel(), clock), {"VOLT:DC": ErrorModel(noise=2e-6)}, seed=9
    )
    return BenchDmm(idn, meter, clock, FaultHooks())


PERSONALITIES |= {
    p.name: p
    for p in (
        Personality(
            "multifunction-calibrator",
            "multifunction calibrator (DCV, ACV, DCI, resistance, output on/off, settling); "
            "`etalon sim bench` wires it to meters",
            "ETALON-SIM,MFC5500-SIM,{serial},2.3.1",
            {},
            _calibrator,
        ),
        Personality(
            "bench-dmm",
            "bench DMM (DCV, ACV, DCI, resistance, ranges); alone its inputs are open",
            "ETALON-SIM,DMM6500-SIM,{serial},1.9.4",
            {},
            _bench_dmm,
        ),
    )
}


def build_instrument(
    personality: str,
    clock: Clock,
    serial: str = "SIM0001",
    inputs: Mapping[str, ModelParams] | None = None,
) -> ScpiInstrument:
    """A simulated instrument of a personality, its inputs' models overridden by ``inputs``."""
    spec = PERSONALITIES[personality]
    unknown = set(inputs or {}) - set(spec.inputs)
    if unknown:
        raise ValueError(
            f"{personality} has no input {', '.join(sorted(unknown))} "
            f"(it has {', '.join(spec.inputs)})"
        )
    chosen = {**spec.inputs, **(inputs or {})}
    models = {name: build_model(params) for name, params in chosen.items()}
    return spec.build(spec.idn.format(serial=serial), models, clock)
