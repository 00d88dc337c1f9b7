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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import logging
import math
import random
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asyncua import Node, Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server import internal_subscription
from asyncua.server.monitored_item_service import MonitoredItemService
from cryptography import x509
from pydantic import Field

from core.clock import Clock, SystemClock
from core.models import FrozenModel
from drivers.opcua.certs import load_trusted, make_certificate, trust_problem, write_pair
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.units import UNECE_NAMESPACE, unit_id
from drivers.sim.catalog import SIMULATORS, SimulatorEntry
from drivers.sim.models import (
    FrequencyStandardParams,
    ResistorParams,
    RoomParams,
    Sampler,
    ZenerParams,
    build_model,
)
from drivers.sim.serving import Served

log = logging.getLogger("etalon.drivers.sim.opcua")

NAMESPACE = "urn:etalon:sim"

SecurityMode = Literal["None", "Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt"]
_POLICY_TYPES = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}


@dataclass(frozen=True)
class Unit:
    """A unit as EngineeringUnits carries it."""

    code: str
    symbol: str
    description: str

    def information(self) -> ua.EUInformation:
        """The EUInformation structure."""
        return ua.EUInformation(
            NamespaceUri=UNECE_NAMESPACE,
            UnitId=unit_id(self.code),
            DisplayName=ua.LocalizedText(self.symbol, "en"),
            Description=ua.LocalizedText(self.description, "en"),
        )


UNITS = {
    "°C": Unit("CEL", "°C", "degree Celsius"),
    "%rh": Unit("P1", "%rh", "percent relative humidity"),
    "hPa": Unit("A97", "hPa", "hectopascal"),
    "V": Unit("VLT", "V", "volt"),
    "Ω": Unit("OHM", "Ω", "ohm"),
    "Hz": Unit("HTZ", "Hz", "hertz"),
}


@dataclass(frozen=True)
class Point:
    """One simulated variable: its path, its model and quantity, unit and range."""

    path: str
    model: str
    quantity: str
    unit: str
    low: float
    high: float


POINTS = (
    Point("ClimateChamber.Temperature", "chamber", "temperature", "°C", -40, 180),
    Point("ClimateChamber.Humidity", "chamber", "humidity", "%rh", 0, 100),
    Point("ClimateChamber.Pressure", "chamber", "pressure", "hPa", 800, 1100),
    Point("ReferenceStandards.Zener10V.Voltage", "zener", "voltage", "V", 0, 12),
    Point("ReferenceStandards.Zener10V.Temperature", "zener", "temperature", "°C", 0, 50),
    Point("ReferenceStandards.Resistor10k.Resistance", "resistor", "resistance", "Ω", 0, 2e4),
    Point("ReferenceStandards.Rubidium10M.Frequency", "rubidium", "frequency", "Hz", 0, 2e7),
)


EU_RANGES: dict[ua.NodeId, tuple[float, float]] = {}
"""EURange of every simulated analog item, for percent deadbands."""


class _PercentDeadbandItems(MonitoredItemService):  # type: ignore[misc]
    """Monitored items that honour a percent deadband.

    asyncua's server lets every change through a percent deadband (logging a warning for each);
    OPC UA Part 8 §6.2 says the server turns it into an absolute one of that percentage of the
    node's EURange, and refuses it on a node without one. The simulator does exactly that.
    """

    async def _create_data_change_monitored_item(
        self, params: ua.MonitoredItemCreateRequest
    ) -> ua.MonitoredItemCreateResult:
        requested = params.RequestedParameters
        deadband = requested.Filter
        # Duck-typed: the decoder makes uaprotocol_auto.DataChangeFilter, while ua.DataChangeFilter
        # is uaprotocol_hand's subclass of it.
        if getattr(deadband, "DeadbandType", None) == ua.DeadbandType.Percent:
            span = EU_RANGES.get(params.ItemToMonitor.NodeId)
            if span is None:
                result = ua.MonitoredItemCreateResult()
                result.StatusCode = ua.StatusCode(ua.StatusCodes.BadFilterNotAllowed)
                return result
            absolute = dataclasses.replace(
                deadband,
                DeadbandType=ua.DeadbandType.Absolute,
                DeadbandValue=deadband.DeadbandValue / 100 * (span[1] - span[0]),
            )
            params = dataclasses.replace(
                params, RequestedParameters=dataclasses.replace(requested, Filter=absolute)
            )
        return await super()._create_data_change_monitored_item(params)


def _honour_percent_deadbands() -> None:
    # asyncua builds each subscription's item service from this module attribute.
    internal_subscription.MonitoredItemService = _PercentDeadbandItems


class OpcUaSimConfig(FrozenModel):
    """One simulated OPC UA server."""

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port (kept over restarts).")
    path: str = Field("/etalon/sim", pattern=r"^/[A-Za-z0-9_/\-]*$")
    update_interval_s: float = Field(0.1, gt=0, description="How often the values change.")
    bulk_items: int = Field(0, ge=0, le=100_000, description="Extra Bulk/ItemNNNN variables.")
    bulk_update_interval_s: float = Field(1.0, gt=0)
    security: list[SecurityMode] = Field(
        default_factory=lambda: list[SecurityMode](["None"]),
        min_length=1,
        description="Endpoints offered.",
    )
    certificate: Path | None = Field(None, description="Server certificate (DER or PEM).")
    private_key: Path | None = None
    trusted_clients: list[Path] | None = Field(
        None,
        description="Client certificates (files or directories) accepted on secure endpoints; "
        "None accepts any.",
    )
    users: dict[str, str] = Field(default_factory=dict, description="user name → password")
    allow_anonymous: bool = True
    seed: int = 11


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
        _honour_percent_deadbands()
        server = Server(user_manager=_Users(config.users, config.allow_anonymous))
        await server.init()
        server.set_endpoint(f"opc.tcp://{config.host}:{self.port}{config.path}")
        server.set_server_name("etalon simulated lab")
        await server.set_application_uri("urn:etalon:sim:server")
        server.set_security_policy([_POLICY_TYPES[mode] for mode in config.security])
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


def status_text(code: ua.StatusCode) -> str:
    """A StatusCode's name (or its hex value when asyncua does not know it)."""
    try:
        return str(code.name)
    except KeyError:
        return f"0x{code.value:08X}"


class _Users:
    """Users with passwords (and anonymous, if allowed) for the simulated server."""

    def __init__(self, users: dict[str, str], allow_anonymous: bool) -> None:
        self.users = users
        self.allow_anonymous = allow_anonymous

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        """The user of a session's credentials, None to refuse."""
        if username is None:
            return User(role=UserRole.User) if self.allow_anonymous else None
        if self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


# -- standalone: ``etalon sim opcua`` --------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument("--bulk-items", type=int, default=0)
    parser.add_argument("--certificate", type=Path, default=None)
    parser.add_argument("--private-key", type=Path, default=None)
    parser.add_argument(
        "--security",
        nargs="+",
        default=["None"],
        choices=sorted(_POLICY_TYPES),
        help="endpoints to offer (secure ones need --certificate/--private-key)",
    )


async def _run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    config = OpcUaSimConfig(
        host=args.host,
        port=args.port,
        bulk_items=args.bulk_items,
        certificate=args.certificate,
        private_key=args.private_key,
        security=args.security,
    )
    async with OpcUaSimulator(config) as simulator:
        print(f"opcua: {simulator.endpoint}", flush=True)
        await stop.wait()


SIMULATORS["opcua"] = SimulatorEntry(
    "opcua",
    "OPC UA server: climate chamber and reference standards with EngineeringUnits",
    _add_arguments,
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
