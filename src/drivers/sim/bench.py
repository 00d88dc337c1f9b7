"""A simulated calibration bench, physically wired: a calibrator, meters and units under test
that all see one physical output.

``BenchSimulator`` starts, on loopback (and pseudo-terminals where asked):

- the **calibrator** — a multifunction calibrator speaking SCPI (profile
  ``multifunction-calibrator``): functions, levels, ranges, output on/off, its output settling
  on a first-order response, with its own small error and noise;
- **DMMs** — by default a reference meter (8½ digits, small known error) and a unit under test
  (6½ digits, a configurable error model), both SCPI (profile ``bench-dmm``), both reading the
  calibrator's output;
- **transmitters** — Modbus devices (register map ``bench-transmitter``) whose input is the
  calibrator's output through their own error model, with FC 43 identification and a serial;
- the **control channel** — a SCPI endpoint taking ``SIMulate:FAULt <instrument>,<fault>
  [,<value>]``, ``SIMulate:FAULt:CLEar``, ``SIMulate:STATe?``, ``SIMulate:TRUTh?``.

The physics is :mod:`drivers.sim.bench_physics`, the SCPI instruments
:mod:`drivers.sim.bench_instruments`. ``etalon sim bench`` runs it standalone and prints every
address; :meth:`BenchSimulator.agent_instruments` gives the agent instrument configs that reach
it (with the calibrator's write targets, limits and safe state). See ``docs/bench-simulator.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from core.clock import Clock, SystemClock
from core.errors import ConfigError
from core.models import FrozenModel, Name
from drivers.sim.bench_instruments import (
    BenchControl,
    BenchDmm,
    Calibrator,
    apply_common_fault,
    on_off,
)
from drivers.sim.bench_physics import (
    BenchPhysics,
    CalibratorModel,
    ErrorModel,
    FunctionName,
    Meter,
)
from drivers.sim.catalog import SIMULATORS, SimulatorEntry
from drivers.sim.faults import FaultHooks
from drivers.sim.modbus_server import (
    SERIAL_OBJECT,
    ModbusFaultHooks,
    ModbusSimServer,
    SimDevice,
    load_register_map,
)
from drivers.sim.scpi import ScpiSimConfig, ScpiSimulator
from drivers.sim.serving import Served

_IDN_FIELD = r"^[A-Za-z0-9_.\-]{1,32}$"
DEFAULT_PORT_BASE = 5030
"""``etalon sim bench`` listens on 5030 (calibrator), 5031… (DMMs), then the transmitters, and
the control channel on 5039, unless told otherwise."""


class CalibratorSim(FrozenModel):
    """The bench's calibrator."""

    name: Name = "calibrator"
    model: str = Field("MFC5500-SIM", pattern=_IDN_FIELD, description="Model in *IDN?.")
    serial: str = Field("CAL-0001", pattern=_IDN_FIELD)
    port: int = Field(0, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    pty: bool = Field(False, description="Also serve SCPI on a pseudo-terminal.")
    physics: CalibratorModel = Field(default_factory=CalibratorModel)


def _reference_errors() -> dict[FunctionName, ErrorModel]:
    return {
        "VOLT:DC": ErrorModel(offset=5e-8, gain_ppm=0.3, noise=5e-8),
        "VOLT:AC": ErrorModel(gain_ppm=20.0, noise=1e-6),
        "CURR:DC": ErrorModel(offset=1e-10, gain_ppm=3.0, noise=1e-10),
        "RES": ErrorModel(offset=1e-5, gain_ppm=0.8, noise=1e-5),
    }


def _uut_errors() -> dict[FunctionName, ErrorModel]:
    return {
        "VOLT:DC": ErrorModel(
            offset=15e-6, gain_ppm=20.0, quadratic=1e-7, noise=3e-6, drift_per_hour=2e-6
        ),
        "VOLT:AC": ErrorModel(offset=20e-6, gain_ppm=150.0, noise=1e-5),
        "CURR:DC": ErrorModel(offset=5e-9, gain_ppm=60.0, noise=2e-9),
        "RES": ErrorModel(offset=2e-3, gain_ppm=30.0, noise=1e-3),
    }


class DmmSim(FrozenModel):
    """A DMM on the bench: the reference meter or a unit under test."""

    name: Name
    role: Literal["reference", "uut"] = Field(
        "uut", description="reference: the bench's reference meter; uut: a unit under test."
    )
    model: str = Field("DMM6500-SIM", pattern=_IDN_FIELD)
    serial: str = Field(..., pattern=_IDN_FIELD)
    digits: int = Field(6, ge=3, le=9, description="Resolution: range / 10^digits (6 = 6½).")
    errors: dict[FunctionName, ErrorModel] = Field(
        default_factory=dict, description="Error model per function; missing: a perfect meter."
    )
    port: int = Field(0, ge=0, le=65535)
    pty: bool = False


def _default_dmms() -> list[DmmSim]:
    return [
        DmmSim(
            name="reference",
            role="reference",
            model="REF8508-SIM",
            serial="REF-0001",
            digits=8,
            errors=_reference_errors(),
        ),
        DmmSim(name="uut-dmm", model="DMM6500-SIM", serial="MY12345", errors=_uut_errors()),
    ]


class TransmitterSim(FrozenModel):
    """A Modbus transmitter on the bench (a unit under test), its input the calibrator's DC
    voltage output."""

    name: Name = "uut-xmtr"
    serial: str = Field("VTX-000042", pattern=_IDN_FIELD)
    map: str = Field("bench-transmitter", description="Register map: a shipped name or a file.")
    device_id: int = Field(1, ge=1, le=247, description="The map's device that is wired in.")
    port: int = Field(0, ge=0, le=65535)
    medium: Literal["tcp", "rtu"] = Field(
        "tcp", description="tcp: Modbus TCP on the port. rtu: Modbus RTU on a pseudo-terminal."
    )
    error: ErrorModel = Field(
        default_factory=lambda: ErrorModel(
            offset=0.5e-3, gain_ppm=300.0, quadratic=2e-5, noise=0.1e-3
        ),
        description="Error model of its voltage input.",
    )


class BenchConfig(FrozenModel):
    """A simulated bench: what ``etalon sim bench --config FILE`` reads (YAML or JSON)."""

    host: str = Field("127.0.0.1", min_length=1, description="Address every instrument listens on.")
    seed: int = 1
    calibrator: CalibratorSim = Field(default_factory=CalibratorSim)
    dmms: list[DmmSim] = Field(default_factory=_default_dmms)
    transmitters: list[TransmitterSim] = Field(default_factory=lambda: [TransmitterSim()])
    control_port: int = Field(0, ge=0, le=65535, description="Port of the control channel.")

    @model_validator(mode="after")
    def _unique_names(self) -> BenchConfig:
        names = [self.calibrator.name, *(d.name for d in self.dmms)]
        names += [t.name for t in self.transmitters]
        seen: set[str] = set()
        for name in names:
            if name in seen or name == "control":
                raise ValueError(f"instrument name {name!r} is used twice (or is 'control')")
            seen.add(name)
        return self


def load_bench_config(path: Path) -> BenchConfig:
    """A bench description from a YAML or JSON file; raises ConfigError naming file, field and
    reason."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML or JSON: {exc}"]) from None
    if data is None:
        data = {}
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"{path}: {where}: {error['msg']}")
        raise ConfigError(problems) from None


class TransmitterInput:
    """The physical model behind a transmitter's registers: the bench's DC voltage as the
    transmitter sees it."""

    kind = "bench"

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def sample(self, quantity: str, t_ns: int) -> float:
        """The indicated voltage (with the transmitter's error and noise), or its internal
        temperature."""
        if quantity != "voltage":
            return 23.0
        value = self.meter.indicate("VOLT:DC", t_ns)
        return self.meter.rounded("VOLT:DC", value, None)

    def true_value(self, quantity: str, t_ns: int) -> float:
        """The noise-free indication."""
        if quantity != "voltage":
            return 23.0
        truth = self.meter.physics.true_present("dcv", t_ns)
        return self.meter.expected("VOLT:DC", truth, t_ns)


class BenchSimulator(Served):
    """The whole bench; ``async with`` starts and stops every instrument (see the module doc)."""

    def __init__(self, config: BenchConfig | None = None, clock: Clock | None = None) -> None:
        config = config or BenchConfig()
        self.config = config
        self.clock = clock or SystemClock()
        self.physics = BenchPhysics(config.calibrator.physics, self.clock, config.seed)
        host = config.host
        cal = config.calibrator
        calibrator_faults = FaultHooks()
        self.calibrator = Calibrator(
            f"ETALON-SIM,{cal.model},{cal.serial},2.3.1", self.physics, calibrator_faults
        )
        self.calibrator_sim = ScpiSimulator(
            ScpiSimConfig(
                personality="multifunction-calibrator",
                serial=cal.serial,
                host=host,
                port=cal.port,
                pty=cal.pty,
            ),
            self.clock,
            instrument=self.calibrator,
            faults=calibrator_faults,
        )
        self.dmms: dict[str, BenchDmm] = {}
        self.dmm_sims: dict[str, ScpiSimulator] = {}
        for index, spec in enumerate(config.dmms):
            hooks = FaultHooks()
            errors: dict[str, ErrorModel] = {str(k): v for k, v in spec.errors.items()}
            meter = Meter(self.physics, errors, seed=config.seed * 100 + index)
            dmm = BenchDmm(
                f"ETALON-SIM,{spec.model},{spec.serial},1.9.4",
                meter,
                self.clock,
                hooks,
                digits=spec.digits,
            )
            self.dmms[spec.name] = dmm
            self.dmm_sims[spec.name] = ScpiSimulator(
                ScpiSimConfig(
                    personality="bench-dmm",
                    serial=spec.serial,
                    host=host,
                    port=spec.port,
                    pty=spec.pty,
                ),
                self.clock,
                instrument=dmm,
                faults=hooks,
            )
        self.transmitters: dict[str, tuple[ModbusSimServer, SimDevice]] = {}
        for index, spec_t in enumerate(config.transmitters):
            register_map = load_register_map(spec_t.map)
            if spec_t.device_id not in {d.device_id for d in register_map.devices}:
                raise ConfigError(
                    [
                        f"transmitter {spec_t.name}: map {spec_t.map} has no device "
                        f"{spec_t.device_id}"
                    ]
                )
            meter = Meter(self.physics, {"VOLT:DC": spec_t.error}, seed=config.seed * 1000 + index)
            server = ModbusSimServer(
                register_map,
                medium="tcp" if spec_t.medium == "tcp" else "pty",
                framing="mbap" if spec_t.medium == "tcp" else "rtu",
                host=host,
                port=spec_t.port,
                clock=self.clock,
                faults=ModbusFaultHooks(),
                models={spec_t.device_id: TransmitterInput(meter)},
            )
            device = server.devices[spec_t.device_id]
            device.set_serial(spec_t.serial)
            self.transmitters[spec_t.name] = (server, device)
        self.control = BenchControl(
            f"ETALON-SIM,BENCH-CONTROL,{cal.serial},1.0",
            self.clock,
            self.set_fault,
            self.clear_faults,
            self.state,
            lambda: self.physics.true_output(),
        )
        self.control_sim = ScpiSimulator(
            ScpiSimConfig(
                personality="multifunction-calibrator",
                serial=cal.serial,
                host=host,
                port=config.control_port,
            ),
            self.clock,
            instrument=self.control,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def _servers(self) -> list[tuple[str, ScpiSimulator | ModbusSimServer]]:
        servers: list[tuple[str, ScpiSimulator | ModbusSimServer]] = [
            (self.config.calibrator.name, self.calibrator_sim)
        ]
        servers += list(self.dmm_sims.items())
        servers += [(name, server) for name, (server, _) in self.transmitters.items()]
        return [*servers, ("control", self.control_sim)]

    async def start(self) -> None:
        """Start every instrument; a port that cannot be opened stops them all again."""
        started: list[ScpiSimulator | ModbusSimServer] = []
        try:
            for name, server in self._servers():
                port = server.config.port if isinstance(server, ScpiSimulator) else server.port
                try:
                    await server.start()
                except OSError as exc:
                    raise ConfigError(
                        [
                            f"{name}: cannot listen on {self.config.host}:{port}: "
                            f"{exc.strerror or exc}"
                        ]
                    ) from exc
                started.append(server)
        except BaseException:
            for server in reversed(started):
                await server.stop()
            raise

    async def stop(self) -> None:
        """Stop every instrument; idempotent."""
        for _, server in reversed(self._servers()):
            await server.stop()

    # -- addresses -----------------------------------------------------------------------------

    def addresses(self) -> dict[str, dict[str, Any]]:
        """Where each instrument is: VISA resources and ports, Modbus host/port or pty, device id
        (what ``--addresses FILE`` writes, as JSON)."""
        out: dict[str, dict[str, Any]] = {}
        for name, sim in [(self.config.calibrator.name, self.calibrator_sim)]:
            out[name] = self._scpi_address(sim, "calibrator")
        for name, sim in self.dmm_sims.items():
            role = next(d.role for d in self.config.dmms if d.name == name)
            out[name] = self._scpi_address(sim, role)
        for name, (server, device) in self.transmitters.items():
            out[name] = {
                "role": "uut",
                "protocol": "modbus",
                "kind": "tcp" if server.medium == "tcp" else "rtu",
                "host": server.host if server.medium == "tcp" else None,
                "port": server.port if server.medium == "tcp" else None,
                "pty": server.pty_path,
                "device_id": device.spec.device_id,
                "serial": device.identity.serial,
            }
        out["control"] = self._scpi_address(self.control_sim, "control")
        return out

    @staticmethod
    def _scpi_address(sim: ScpiSimulator, role: str) -> dict[str, Any]:
        pty = sim.asrl_resource if sim.config.pty else None
        return {
            "role": role,
            "protocol": "visa",
            "resource": sim.tcp_resource,
            "port": sim.port,
            "asrl_resource": pty,
            "serial": sim.instrument.idn.split(",")[2],
        }

    def agent_instruments(self) -> list[dict[str, Any]]:
        """Agent instrument configs (as data for ``AgentConfig.instruments``) that reach this
        bench: the calibrator with its write targets, this bench's limits (±20 V, ±0.1 A,
        ≤ 120 kΩ) and safe state; each DMM with its measurements and range targets; each
        transmitter with its channels, targets and FC 43 serial object."""
        addresses = self.addresses()
        cal = self.config.calibrator.name
        instruments: list[dict[str, Any]] = [
            {
                "name": cal,
                "protocol": "visa",
                "resource": addresses[cal]["resource"],
                "backend": "@py",
                "profile": "multifunction-calibrator",
                "timeout_s": 2.0,
                "channels": [
                    {"name": f"{cal}-output", "measurement": "output_state", "interval_s": 5},
                    {"name": f"{cal}-dcv-level", "measurement": "voltage_dc_level"},
                ],
                "targets": [
                    {"name": "function", "allowed": ["VOLT:DC", "VOLT:AC", "CURR:DC", "RES"]},
                    {"name": "voltage_dc", "min": -20.0, "max": 20.0},
                    {"name": "voltage_dc_range", "allowed": [0.1, 1.0, 10.0]},
                    {"name": "voltage_ac", "min": 0.0, "max": 20.0},
                    {"name": "frequency", "min": 10.0, "max": 10_000.0},
                    {"name": "current_dc", "min": -0.1, "max": 0.1},
                    {"name": "resistance", "min": 0.0, "max": 120_000.0},
                    {"name": "output"},
                ],
                "safe_state": [{"target": "output", "value": False}],
            }
        ]
        for spec in self.config.dmms:
            instruments.append(
                {
                    "name": spec.name,
                    "protocol": "visa",
                    "resource": addresses[spec.name]["resource"],
                    "backend": "@py",
                    "profile": "bench-dmm",
                    "timeout_s": 2.0,
                    "channels": [
                        {"name": f"{spec.name}-dcv", "measurement": "voltage_dc"},
                        {"name": f"{spec.name}-ohms", "measurement": "resistance_4w"},
                    ],
                    "targets": [
                        {"name": "voltage_dc_range", "allowed": [0.1, 1.0, 10.0, 100.0]},
                        {"name": "resistance_range", "allowed": [1e2, 1e3, 1e4, 1e5, 1e6]},
                        {"name": "voltage_dc_autorange"},
                    ],
                }
            )
        for name, (server, device) in self.transmitters.items():
            transport: dict[str, Any]
            if server.medium == "tcp":
                transport = {"kind": "tcp", "host": server.host, "port": server.port}
            else:
                transport = {"kind": "rtu", "port": server.pty_path, "parity": "N"}
            instruments.append(
                {
                    "name": name,
                    "protocol": "modbus",
                    "transport": transport,
                    "device_id": device.spec.device_id,
                    "timeout_s": 2.0,
                    "identify": True,
                    "identity_serial_object": SERIAL_OBJECT,
                    "channels": [
                        {
                            "name": f"{name}-voltage",
                            "table": "input",
                            "address": 0,
                            "type": "float32",
                            "unit": "V",
                        }
                    ],
                    "targets": [
                        {
                            "name": "damping",
                            "address": 200,
                            "type": "float32",
                            "unit": "s",
                            "min": 0.0,
                            "max": 10.0,
                            "verify": True,
                        },
                        {"name": "range_code", "address": 202, "min": 0, "max": 3},
                        {"name": "trim_enable", "table": "coil", "address": 0},
                    ],
                    "safe_state": [{"target": "trim_enable", "value": False}],
                }
            )
        return instruments

    # -- faults and state ----------------------------------------------------------------------

    def _names(self) -> list[str]:
        return [self.config.calibrator.name, *self.dmms, *self.transmitters]

    def set_fault(self, instrument: str, fault: str, value: str = "ON") -> None:
        """Switch a fault of one instrument (see ``docs/bench-simulator.md``); raises ValueError
        for an unknown instrument, fault or value."""
        if instrument == self.config.calibrator.name:
            self.calibrator.set_fault(fault, value)
        elif instrument in self.dmms:
            self.dmms[instrument].set_fault(fault, value)
        elif instrument in self.transmitters:
            self._transmitter_fault(instrument, fault, value)
        else:
            raise ValueError(
                f"no instrument {instrument!r} on the bench ({', '.join(self._names())})"
            )

    def _transmitter_fault(self, name: str, fault: str, value: str) -> None:
        server, device = self.transmitters[name]
        key = fault.strip().upper()
        device_id = device.spec.device_id
        if key == "SILENT":
            silent = set(server.faults.silent_device_ids)
            if on_off(value):
                silent.add(device_id)
            else:
                silent.discard(device_id)
            server.faults.silent_device_ids = sorted(silent)
        elif key == "SERIAL":
            serial = value.strip().strip("\"'")
            if not serial or len(serial) > 32:
                raise ValueError("a serial is 1-32 characters")
            device.set_serial(serial)
        elif not apply_common_fault(server.faults, key, value):
            raise ValueError(
                f"unknown fault {fault!r} (a transmitter has HANG, DELAY, GARBAGE, DISCONNECT, "
                "SILENT, SERIAL)"
            )

    def clear_faults(self, instrument: str | None = None) -> None:
        """Every fault of one instrument (None: of all) off; a swapped serial stays."""
        names = self._names() if instrument is None else [instrument]
        for name in names:
            if name == self.config.calibrator.name:
                self.calibrator.clear_faults()
            elif name in self.dmms:
                self.dmms[name].clear_faults()
            elif name in self.transmitters:
                server, _ = self.transmitters[name]
                server.faults.silent_device_ids = []
                server.faults.hang = server.faults.disconnected = False
                server.faults.delay_s = server.faults.garbage_rate = 0.0
            else:
                raise ValueError(f"no instrument {name!r} on the bench")

    def state(self) -> dict[str, object]:
        """Every instrument's state and faults, as plain data (``SIMulate:STATe?``)."""
        dmms: dict[str, object] = {}
        for name, dmm in self.dmms.items():
            dmms[name] = {
                "function": dmm.function,
                "range": dmm.range[dmm.function],
                "auto_range": dmm.auto[dmm.function],
                "serial": dmm.serial,
                "faults": dmm.fault_state(),
            }
        transmitters: dict[str, object] = {}
        for name, (server, device) in self.transmitters.items():
            transmitters[name] = {
                "serial": device.identity.serial,
                "writes": len(device.writes),
                "silent": device.spec.device_id in server.faults.silent_device_ids,
                "stored": {k: v for k, v in device.stored.items() if not isinstance(v, str)},
            }
        return {
            "calibrator": self.physics.state() | {"faults": self.calibrator.fault_state()},
            "dmms": dmms,
            "transmitters": transmitters,
        }


@contextlib.asynccontextmanager
async def running_bench(
    config: BenchConfig | None = None, clock: Clock | None = None
) -> AsyncIterator[BenchSimulator]:
    """A started bench for the duration of the block."""
    bench = BenchSimulator(config, clock)
    async with bench:
        yield bench


# -- standalone: ``etalon sim bench`` --------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="bench description (YAML or JSON)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port-base",
        type=int,
        default=None,
        help=f"first TCP port (default {DEFAULT_PORT_BASE}; 0: free ports); the config's "
        "ports win where it gives them",
    )
    parser.add_argument("--pty", action="store_true", help="also serve SCPI on pseudo-terminals")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--tau", type=float, help="calibrator settling time constant, s")
    for flag, help_text in (
        ("--uut-offset", "UUT zero error, V (DC volts of every UUT)"),
        ("--uut-gain-ppm", "UUT gain error, ppm"),
        ("--uut-quadratic", "UUT non-linearity: k of k·x², 1/V"),
        ("--uut-noise", "UUT noise, V rms"),
        ("--uut-drift-per-hour", "UUT zero drift, V per hour"),
    ):
        parser.add_argument(flag, type=float, help=help_text)
    parser.add_argument("--addresses", type=Path, help="also write the addresses here (JSON)")


_UUT_FLAGS = {
    "uut_offset": "offset",
    "uut_gain_ppm": "gain_ppm",
    "uut_quadratic": "quadratic",
    "uut_noise": "noise",
    "uut_drift_per_hour": "drift_per_hour",
}


def config_from_arguments(args: argparse.Namespace) -> BenchConfig:
    """The bench a command line describes: the file (if any), then the flags over it; raises
    ConfigError naming the flag or the file's field."""
    config = load_bench_config(args.config) if args.config else BenchConfig()
    data = config.model_dump(mode="json")
    if args.host is not None:
        data["host"] = args.host
    if args.seed is not None:
        data["seed"] = args.seed
    # Without a file the bench has fixed ports (the example agent config's); with one, its
    # own (0: free); --port-base fills the ports a file leaves at 0.
    base = args.port_base
    if base is None:
        base = 0 if args.config is not None else DEFAULT_PORT_BASE
    if not 0 <= base <= 65535 - 10:
        raise ConfigError([f"--port-base {base}: must be 0 or a port ≤ 65525"])
    if base:
        data["calibrator"]["port"] = data["calibrator"]["port"] or base
        for i, dmm in enumerate(data["dmms"]):
            dmm["port"] = dmm["port"] or base + 1 + i
        for i, transmitter in enumerate(data["transmitters"]):
            transmitter["port"] = transmitter["port"] or base + 1 + len(data["dmms"]) + i
        data["control_port"] = data["control_port"] or base + 9
    if args.pty:
        data["calibrator"]["pty"] = True
        for dmm in data["dmms"]:
            dmm["pty"] = True
    if args.tau is not None:
        data["calibrator"]["physics"]["tau_s"] = args.tau
    for flag, field in _UUT_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if not math.isfinite(value):
            raise ConfigError([f"--{flag.replace('_', '-')}: {value} is not a finite number"])
        for dmm in data["dmms"]:
            if dmm["role"] == "uut":
                dmm["errors"].setdefault("VOLT:DC", {})[field] = value
        for transmitter in data["transmitters"]:
            transmitter["error"][field] = value
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"command line: {where}: {error['msg']}")
        raise ConfigError(problems) from None


def describe_addresses(addresses: dict[str, dict[str, Any]]) -> list[str]:
    """One line per address, as ``etalon sim bench`` prints them."""
    lines = []
    for name, where in addresses.items():
        if where["protocol"] == "visa":
            lines.append(f"{name} ({where['role']}): {where['resource']}")
            if where.get("asrl_resource"):
                lines.append(f"{name} ({where['role']}): {where['asrl_resource']}")
        elif where["kind"] == "tcp":
            lines.append(
                f"{name} ({where['role']}): modbus tcp {where['host']}:{where['port']} "
                f"device {where['device_id']}"
            )
        else:
            lines.append(
                f"{name} ({where['role']}): modbus rtu {where['pty']} device {where['device_id']}"
            )
    return lines


async def _run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    config = config_from_arguments(args)
    async with BenchSimulator(config) as bench:
        addresses = bench.addresses()
        if args.addresses is not None:
            try:
                args.addresses.write_text(json.dumps(addresses, indent=2) + "\n")
            except OSError as exc:
                raise ConfigError(
                    [f"--addresses {args.addresses}: cannot write: {exc.strerror or exc}"]
                ) from exc
        for line in describe_addresses(addresses):
            print(line, flush=True)
        await stop.wait()


SIMULATORS["bench"] = SimulatorEntry(
    "bench",
    "a calibration bench: calibrator, reference DMM, UUT DMM and Modbus transmitter, one "
    "physical output",
    _add_arguments,
    _run,
)
