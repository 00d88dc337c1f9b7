"""A simulated OPC UA server: a climate chamber and reference standards, values from the models.

An asyncua server on loopback exposing, in namespace ``urn:etalon:sim``::

    Objects/ClimateChamber/{Temperature, Humidity, Pressure, TemperatureSetpoint}
    Objects/ReferenceStandards/Zener10V/{Voltage, Temperature}
    Objects/ReferenceStandards/Resistor10k/Resistance
    Objects/ReferenceStandards/Rubidium10M/Frequency
    Objects/Bulk/Item0000 … (``bulk_items`` of them, for load tests)
    Objects/Source/{Setpoint (Double, V, EURange ±20), Output (Boolean), Range (UInt16),
                    Mode (String), Gain (Float)}          writable: a source's set-points

Writes from clients are logged (``writes``: path, value, StatusCode); a write of a number outside
a writable node's EURange is refused with BadOutOfRange, as a device refuses what it cannot do.

Node ids are strings of the dotted path (``ns=2;s=ClimateChamber.Temperature``). Every measured
variable is an AnalogItem with its EngineeringUnits (UNECE code and symbol) and an EURange, and
changes every ``update_interval_s`` with the model's value and a source timestamp from the clock.
Security: None, Basic256Sha256 Sign and SignAndEncrypt with the server's certificate; a client
certificate is checked against ``trusted_clients`` when that list is given; users with passwords.

Fault hooks (methods): ``restart`` (the server goes away and comes back without its sessions),
``freeze``/``thaw`` (stops answering without closing sockets, as a cut cable), ``set_status``
(bad or uncertain StatusCodes on a node's values), ``remove_node``/``restore_node``.

``Server.init()`` takes about 1.5 s: start one simulator per test session, not per test.

What the server offers (config, variables, units, users) is :mod:`drivers.sim.opcua_space`; the
simulator class stays whole here because its address space, value updates and fault hooks all
act on the one asyncua server's nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import math
import random
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common.utils import ServiceError
from cryptography import x509

from core.clock import Clock, SystemClock
from drivers.opcua.certs import load_trusted, make_certificate, trust_problem, write_pair
from drivers.opcua.config import OpcUaInstrument
from drivers.sim.catalog import SIMULATORS, SimulatorEntry
from drivers.sim.models import (
    FrequencyStandardParams,
    ResistorParams,
    RoomParams,
    Sampler,
    ZenerParams,
    build_model,
)
from drivers.sim.opcua_space import (
    EU_RANGES,
    NAMESPACE,
    POINTS,
    POLICY_TYPES,
    UNITS,
    OpcUaSimConfig,
    PasswordUsers,
    Point,
    SecurityMode,
    Unit,
    add_arguments,
    honour_percent_deadbands,
    status_text,
)
from drivers.sim.serving import Served, flags, serve_until

__all__ = [
    "NAMESPACE",
    "POINTS",
    "UNITS",
    "OpcUaSimConfig",
    "OpcUaSimulator",
    "Point",
    "Unit",
    "running",
    "simulate_opcua",
    "status_text",
]

log = logging.getLogger("etalon.drivers.sim.opcua")


class OpcUaSimulator(Served):
    """Serves the simulated address space; ``async with`` starts and stops it."""

    def __init__(self, config: OpcUaSimConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.models: dict[str, Sampler] = {
            "chamber": build_model(RoomParams(seed=config.seed)),
            "zener": build_model(ZenerParams(seed=config.seed + 1)),
            "resistor": build_model(ResistorParams(seed=config.seed + 2)),
            "rubidium": build_model(FrequencyStandardParams(seed=config.seed + 3)),
        }
        self._rng = random.Random(config.seed)
        self.server: Server | None = None
        self.namespace_index = 0
        self.nodes: dict[str, Node] = {}
        self._removed: dict[str, tuple[str, Point | None]] = {}
        self.status: dict[str, ua.StatusCode] = {}
        self.port = config.port
        self._updater: asyncio.Task[None] | None = None
        self._trusted: list[x509.Certificate] | None = None
        self.frozen = False
        self._held: dict[Any, tuple[Callable[[bytes], object], list[bytes]]] = {}
        self.last_outage: tuple[int, int] | None = None
        """(went away, came back) of the last restart, in ns: no value exists in between."""
        self.update_times: deque[int] = deque(maxlen=1000)
        """Source timestamps (ns) of the latest update rounds, for tests to check against."""
        self.writes: list[tuple[str, object, str]] = []
        """(node path, value, StatusCode name) of every client write, in order."""
        self._write_ranges: dict[ua.NodeId, tuple[float, float]] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint URL clients connect to."""
        return f"opc.tcp://{self.config.host}:{self.port}{self.config.path}"

    async def start(self) -> None:
        """Build the address space and listen (about 1.5 s: asyncua's init)."""
        config = self.config
        if config.trusted_clients is not None:
            self._trusted = load_trusted(config.trusted_clients)
        honour_percent_deadbands()
        server = Server(user_manager=PasswordUsers(config.users, config.allow_anonymous))
        await server.init()
        server.set_endpoint(f"opc.tcp://{config.host}:{self.port}{config.path}")
        server.set_server_name("etalon simulated lab")
        await server.set_application_uri("urn:etalon:sim:server")
        server.set_security_policy([POLICY_TYPES[mode] for mode in config.security])
        tokens: list[type] = [ua.UserNameIdentityToken] if config.users else []
        if config.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if config.certificate is not None:
            await server.load_certificate(str(config.certificate))
            if config.private_key is None:
                raise ValueError("certificate given without private_key")
            await server.load_private_key(str(config.private_key))
        elif any(mode != "None" for mode in config.security):
            raise ValueError("secure endpoints need certificate and private_key")
        server.set_certificate_validator(self._validate_client)
        self._log_writes(server)
        self.server = server
        self.namespace_index = await server.register_namespace(NAMESPACE)
        await self._build()
        await server.start()
        assert server.bserver is not None
        self.port = server.bserver.port
        server.set_endpoint(self.endpoint)
        await self._update_all(self.clock.now_ns(), bulk=True)
        self._updater = asyncio.create_task(self._update_loop(), name="opcua-sim-update")
        log.info("opcua simulator started", extra={"endpoint": self.endpoint})

    async def stop(self) -> None:
        """Stop updating and serving; idempotent."""
        if self._updater is not None:
            self._updater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._updater
            self._updater = None
        if self.server is not None:
            self.thaw()
            await self.server.stop()
            self.server = None

    # -- address space -------------------------------------------------------------------------

    def node_id(self, path: str) -> str:
        """The NodeId string of a variable's dotted path."""
        return f"ns={self.namespace_index};s={path}"

    async def _folder(self, path: str) -> Node:
        if path in self.nodes:
            return self.nodes[path]
        assert self.server is not None
        parent_path, _, name = path.rpartition(".")
        parent = await self._folder(parent_path) if parent_path else self.server.nodes.objects
        index = self.namespace_index
        node = await parent.add_object(ua.NodeId(path, index), ua.QualifiedName(name, index))
        self.nodes[path] = node
        return node

    async def _add_variable(
        self,
        point: Point | None,
        path: str,
        engineering_units: ua.EUInformation | None,
        initial: float,
    ) -> None:
        parent_path, _, name = path.rpartition(".")
        parent = await self._folder(parent_path)
        index = self.namespace_index
        node = await parent.add_variable(
            ua.NodeId(path, index),
            ua.QualifiedName(name, index),
            ua.Variant(initial, ua.VariantType.Double),
        )
        # An AnalogItem, as instruments publish measured values (Part 8), not a plain variable.
        await node.delete_reference(
            ua.NodeId(ua.ObjectIds.BaseDataVariableType), ua.ObjectIds.HasTypeDefinition
        )
        await node.add_reference(
            ua.NodeId(ua.ObjectIds.AnalogItemType), ua.ObjectIds.HasTypeDefinition
        )
        if engineering_units is not None:
            await node.add_property(
                ua.NodeId(f"{path}.EngineeringUnits", index),
                ua.QualifiedName("EngineeringUnits", 0),
                engineering_units,
            )
        low, high = (point.low, point.high) if point else (0.0, 20.0)
        EU_RANGES[ua.NodeId(path, index)] = (low, high)
        await node.add_property(
            ua.NodeId(f"{path}.EURange", index),
            ua.QualifiedName("EURange", 0),
            ua.Range(Low=low, High=high),
        )
        self.nodes[path] = node

    async def add_variable(
        self, path: str, engineering_units: ua.EUInformation | None, value: float = 0.0
    ) -> str:
        """Add a constant analog item with these EngineeringUnits (None: without the property),
        as other vendors' servers publish them; returns its NodeId. Remove it with
        :meth:`remove_node`."""
        await self._add_variable(None, path, engineering_units, value)
        return self.node_id(path)

    async def _build(self) -> None:
        now = self.clock.now_ns()
        for point in POINTS:
            initial = self.models[point.model].sample(point.quantity, now)
            await self._add_variable(point, point.path, UNITS[point.unit].information(), initial)
        setpoint = await (await self._folder("ClimateChamber")).add_variable(
            ua.NodeId("ClimateChamber.TemperatureSetpoint", self.namespace_index),
            ua.QualifiedName("TemperatureSetpoint", self.namespace_index),
            23.0,
        )
        await setpoint.set_writable()
        self.nodes["ClimateChamber.TemperatureSetpoint"] = setpoint
        await self._build_source()
        for i in range(self.config.bulk_items):
            await self._add_variable(None, f"Bulk.Item{i:04d}", UNITS["V"].information(), 0.0)

    async def _build_source(self) -> None:
        """Writable set-points of a source (see the module doc)."""
        index = self.namespace_index
        folder = await self._folder("Source")
        initial: list[tuple[str, object, ua.VariantType]] = [
            ("Setpoint", 0.0, ua.VariantType.Double),
            ("Output", False, ua.VariantType.Boolean),
            ("Range", 10, ua.VariantType.UInt16),
            ("Mode", "VOLT:DC", ua.VariantType.String),
            ("Gain", 1.0, ua.VariantType.Float),
        ]
        for name, value, variant_type in initial:
            path = f"Source.{name}"
            node = await folder.add_variable(
                ua.NodeId(path, index), ua.QualifiedName(name, index), value, variant_type
            )
            await node.set_writable()
            self.nodes[path] = node
        setpoint = self.nodes["Source.Setpoint"]
        await setpoint.add_property(
            ua.NodeId("Source.Setpoint.EngineeringUnits", index),
            ua.QualifiedName("EngineeringUnits", 0),
            UNITS["V"].information(),
        )
        await setpoint.add_property(
            ua.NodeId("Source.Setpoint.EURange", index),
            ua.QualifiedName("EURange", 0),
            ua.Range(Low=-20.0, High=20.0),
        )
        self._write_ranges[setpoint.nodeid] = (-20.0, 20.0)

    def _log_writes(self, server: Server) -> None:
        """Wrap this server's attribute service: log client writes, refuse out-of-range ones."""
        service = server.iserver.attribute_service
        original = service.write

        async def write(params: ua.WriteParameters, *args: Any, **kwargs: Any) -> list[Any]:
            results: list[Any] = []
            for item in params.NodesToWrite:
                value = item.Value.Value.Value if item.Value and item.Value.Value else None
                path = self._path_of(item.NodeId) or item.NodeId.to_string()
                span = self._write_ranges.get(item.NodeId)
                if (
                    span is not None
                    and isinstance(value, int | float)
                    and not span[0] <= value <= span[1]
                ):
                    code = ua.StatusCode(ua.StatusCodes.BadOutOfRange)
                else:
                    single = ua.WriteParameters()
                    single.NodesToWrite.append(item)
                    (code,) = await original(single, *args, **kwargs)
                self.writes.append((path, value, status_text(code)))
                results.append(code)
            return results

        service.write = write

    def _path_of(self, node_id: ua.NodeId) -> str | None:
        for path, node in self.nodes.items():
            if node.nodeid == node_id:
                return path
        return None

    def _bulk_value(self, i: int, t_ns: int) -> float:
        phase = t_ns / 1e9 / 60 + i / 7
        return 10.0 + 1e-3 * math.sin(2 * math.pi * phase) + self._rng.gauss(0, 1e-6)

    # -- updates -------------------------------------------------------------------------------

    async def _write(self, path: str, value: float, t_ns: int) -> None:
        if path in self._removed:
            return
        assert self.server is not None
        stamp = datetime.datetime.fromtimestamp(t_ns / 1e9, datetime.UTC)
        status = self.status.get(path, ua.StatusCode(ua.StatusCodes.Good))
        data_value = ua.DataValue(
            ua.Variant(value, ua.VariantType.Double),
            StatusCode=status,
            SourceTimestamp=stamp,
            ServerTimestamp=stamp,
        )
        await self.server.write_attribute_value(self.nodes[path].nodeid, data_value)

    async def _update_all(self, t_ns: int, bulk: bool) -> None:
        for point in POINTS:
            value = self.models[point.model].sample(point.quantity, t_ns)
            await self._write(point.path, value, t_ns)
        if bulk:
            for i in range(self.config.bulk_items):
                await self._write(f"Bulk.Item{i:04d}", self._bulk_value(i, t_ns), t_ns)
        self.update_times.append(t_ns)

    async def _update_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_bulk = loop.time()
        while True:
            await asyncio.sleep(self.config.update_interval_s)
            bulk = loop.time() >= next_bulk
            if bulk:
                next_bulk = loop.time() + self.config.bulk_update_interval_s
            if self.server is not None:
                await self._update_all(self.clock.now_ns(), bulk)

    def true_value(self, path: str, t_ns: int) -> float:
        """The noise-free value of a model-driven variable at t."""
        point = next(p for p in POINTS if p.path == path)
        return self.models[point.model].true_value(point.quantity, t_ns)

    # -- fault hooks -------------------------------------------------------------------------

    def set_status(self, path: str, code: int | None) -> None:
        """Give a variable's next values this StatusCode (None: Good again)."""
        if code is None:
            self.status.pop(path, None)
        else:
            self.status[path] = ua.StatusCode(code)

    async def remove_node(self, path: str) -> None:
        """Delete a variable from the address space (a PLC program change, a dead module)."""
        assert self.server is not None
        node = self.nodes.pop(path)
        point = next((p for p in POINTS if p.path == path), None)
        self._removed[path] = (path, point)
        await self.server.delete_nodes([node], recursive=True)

    async def restore_node(self, path: str) -> None:
        """Put a removed variable back."""
        _, point = self._removed.pop(path)
        unit = UNITS[point.unit] if point else UNITS["V"]
        await self._add_variable(point, path, unit.information(), 0.0)

    def freeze(self) -> None:
        """Stop the traffic of every client connection both ways, sockets left open (a cut
        cable): nothing is read, and what the server sends is held back as TCP would."""
        assert self.server is not None
        self.frozen = True
        for transport in self.server.iserver.asyncio_transports:
            transport.pause_reading()
            held: list[bytes] = []
            self._held[transport] = (transport.write, held)
            transport.write = held.append  # the instance attribute shadows the method

    def thaw(self) -> None:
        """Undo :meth:`freeze`: held data goes out, reading resumes."""
        if self.server is None or not self.frozen:
            return
        self.frozen = False
        for transport, (write, held) in self._held.items():
            del transport.write
            if transport.is_closing():
                continue
            for data in held:
                write(data)
            with contextlib.suppress(RuntimeError):
                transport.resume_reading()
        self._held.clear()

    async def restart(self, downtime_s: float = 0.5) -> None:
        """Go away (connections closed, sessions and subscriptions lost) and come back on the
        same port after ``downtime_s``. Takes asyncua's init time again."""
        gone_at = self.clock.now_ns()
        await self.stop()
        self.nodes.clear()
        self._removed.clear()
        await asyncio.sleep(downtime_s)
        self.last_outage = (gone_at, self.clock.now_ns())
        await self.start()

    # -- security ------------------------------------------------------------------------------

    async def _validate_client(
        self, certificate: x509.Certificate, _description: ua.ApplicationDescription
    ) -> None:
        if self._trusted is None:
            return
        problem = trust_problem(certificate, self._trusted)
        if problem is not None:
            log.warning("client certificate refused", extra={"reason": problem})
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)


# -- standalone: ``etalon sim opcua`` --------------------------------------------------------


async def _run(
    args: argparse.Namespace, stop: asyncio.Event, started: asyncio.Event | None = None
) -> None:
    names = ("host", "port", "bulk_items", "certificate", "private_key", "security")
    simulator = OpcUaSimulator(OpcUaSimConfig(**flags(args, *names)))
    await serve_until(simulator, stop, lambda sim: [f"opcua: {sim.endpoint}"], started)


SIMULATORS["opcua"] = SimulatorEntry(
    "opcua",
    "OPC UA server: climate chamber and reference standards with EngineeringUnits",
    add_arguments,
    _run,
)


@contextlib.asynccontextmanager
async def running(
    config: OpcUaSimConfig, clock: Clock | None = None
) -> AsyncIterator[OpcUaSimulator]:
    """A started simulator for the duration of the block."""
    async with OpcUaSimulator(config, clock) as simulator:
        yield simulator


@contextlib.asynccontextmanager
async def simulate_opcua(config: OpcUaInstrument) -> AsyncIterator[OpcUaInstrument]:
    """The registry's ``simulate`` hook: the simulated server on a free loopback port, offering
    the instrument's security mode with a fresh server certificate that the rewritten config
    trusts (and a temporary directory for the agent's own certificate)."""
    with tempfile.TemporaryDirectory(prefix="etalon-opcua-sim-") as scratch:
        root = Path(scratch)
        modes: list[SecurityMode] = ["None"]
        security = config.security
        sim_config = OpcUaSimConfig(security=modes)
        if security.mode != "None":
            certificate, key = make_certificate(
                "etalon simulated lab", "urn:etalon:sim:server", ["127.0.0.1", "localhost"]
            )
            pair = write_pair(root / "server", certificate, key)
            modes = ["None", f"Basic256Sha256_{security.mode}"]  # type: ignore[list-item]
            sim_config = OpcUaSimConfig(
                security=modes, certificate=pair.certificate, private_key=pair.private_key
            )
            security = security.model_copy(
                update={
                    "trusted_server_certificates": [pair.certificate],
                    "certificate_dir": root / "client",
                    "certificate": None,
                    "private_key": None,
                }
            )
        async with running(sim_config) as simulator:
            yield config.model_copy(
                update={
                    "endpoint": simulator.endpoint,
                    "namespace": config.namespace or NAMESPACE,
                    "security": security,
                    "username": None,
                    "password": None,
                }
            )
