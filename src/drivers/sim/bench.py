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
:mod:`drivers.sim.bench_instruments`, the bench's description (file, flags)
:mod:`drivers.sim.bench_config`. ``etalon sim bench`` runs it standalone and prints every
address; :meth:`BenchSimulator.agent_instruments` gives the agent instrument configs that reach
it (with the calibrator's write targets, limits and safe state). See ``docs/bench-simulator.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from core.clock import Clock, SystemClock
from core.errors import ConfigError
from drivers.sim.bench_config import (
    DEFAULT_PORT_BASE,
    BenchConfig,
    CalibratorSim,
    DmmSim,
    TransmitterSim,
    add_arguments,
    config_from_arguments,
    describe_addresses,
    load_bench_config,
)
from drivers.sim.bench_instruments import (
    BenchControl,
    BenchDmm,
    Calibrator,
)
from drivers.sim.bench_physics import (
    BenchPhysics,
    ErrorModel,
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
from drivers.sim.scpi_faults import apply_common_fault, on_off
from drivers.sim.scpi_instruments import ScpiInstrument
from drivers.sim.serving import Served, serve_until

__all__ = [
    "DEFAULT_PORT_BASE",
    "BenchConfig",
    "BenchSimulator",
    "CalibratorSim",
    "DmmSim",
    "TransmitterInput",
    "TransmitterSim",
    "config_from_arguments",
    "describe_addresses",
    "load_bench_config",
]


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
        self.calibrator_sim = self._scpi_sim(
            "multifunction-calibrator", cal, self.calibrator, calibrator_faults
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
            self.dmm_sims[spec.name] = self._scpi_sim("bench-dmm", spec, dmm, hooks)
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

    def _scpi_sim(
        self,
        personality: str,
        spec: CalibratorSim | DmmSim,
        instrument: ScpiInstrument,
        faults: FaultHooks,
    ) -> ScpiSimulator:
        """The SCPI simulator serving a bench instrument where its spec says."""
        config = ScpiSimConfig(
            personality=personality,
            serial=spec.serial,
            host=self.config.host,
            port=spec.port,
            pty=spec.pty,
        )
        return ScpiSimulator(config, self.clock, instrument=instrument, faults=faults)

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


async def _run(
    args: argparse.Namespace, stop: asyncio.Event, started: asyncio.Event | None = None
) -> None:
    def where(bench: BenchSimulator) -> list[str]:
        addresses = bench.addresses()
        if args.addresses is not None:
            try:
                args.addresses.write_text(json.dumps(addresses, indent=2) + "\n")
            except OSError as exc:
                raise ConfigError(
                    [f"--addresses {args.addresses}: cannot write: {exc.strerror or exc}"]
                ) from exc
        return describe_addresses(addresses)

    await serve_until(BenchSimulator(config_from_arguments(args)), stop, where, started)


SIMULATORS["bench"] = SimulatorEntry(
    "bench",
    "a calibration bench: calibrator, reference DMM, UUT DMM and Modbus transmitter, one "
    "physical output",
    add_arguments,
    _run,
)
