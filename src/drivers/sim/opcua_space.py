"""What the simulated OPC UA server (:mod:`drivers.sim.opcua_server`) offers: its config, the
variables of its address space with their units and ranges, the percent deadbands asyncua's
server lacks, and its users."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server import internal_subscription
from asyncua.server.monitored_item_service import MonitoredItemService
from pydantic import Field

from core.models import FrozenModel
from drivers.opcua.units import UNECE_NAMESPACE, unit_id

NAMESPACE = "urn:etalon:sim"

SecurityMode = Literal["None", "Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt"]
POLICY_TYPES = {
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


def honour_percent_deadbands() -> None:
    """Make asyncua's server honour percent deadbands (see :class:`_PercentDeadbandItems`)."""
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


def status_text(code: ua.StatusCode) -> str:
    """A StatusCode's name (or its hex value when asyncua does not know it)."""
    try:
        return str(code.name)
    except KeyError:
        return f"0x{code.value:08X}"


class PasswordUsers:
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line arguments of ``etalon sim opcua``."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument("--bulk-items", type=int, default=0)
    parser.add_argument("--certificate", type=Path, default=None)
    parser.add_argument("--private-key", type=Path, default=None)
    parser.add_argument(
        "--security",
        nargs="+",
        default=["None"],
        choices=sorted(POLICY_TYPES),
        help="endpoints to offer (secure ones need --certificate/--private-key)",
    )
