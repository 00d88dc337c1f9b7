"""Configuration of an OPC UA instrument: endpoint, security, and channels bound to nodes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.models import FrozenModel
from drivers.config import ChannelBase, InstrumentBase
from drivers.setpoints import DeclaredTargets, SafeValue, TargetKind, TypedTarget

_NODE_ID = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?(i=\d+|s=.+|g=[0-9A-Fa-f-]{36}|b=[A-Za-z0-9+/=]+)$")


def default_certificate_dir() -> Path:
    """Where the agent keeps its OPC UA certificate unless told otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "etalon" / "opcua"


class Deadband(FrozenModel):
    """A data-change filter: report a change only when it exceeds this."""

    kind: Literal["absolute", "percent"] = Field(
        ..., description="absolute: in the node's unit. percent: of the node's EURange span."
    )
    value: float = Field(..., ge=0)

    @model_validator(mode="after")
    def _percent_range(self) -> Deadband:
        if self.kind == "percent" and self.value > 100:
            raise ValueError("a percent deadband is at most 100")
        return self


def check_address(node: str | None, browse_path: list[str] | None) -> None:
    """A channel or target names its node by exactly one of a NodeId and a browse path, the
    NodeId well-formed; raises ValueError."""
    if (node is None) == (browse_path is None):
        raise ValueError("give exactly one of node and browse_path")
    if node is not None and not _NODE_ID.match(node):
        raise ValueError(f"node {node!r} is not a NodeId ('ns=2;s=Name', 'i=2258', …)")


class OpcUaChannel(ChannelBase):
    """A channel bound to one variable node, polled or subscribed."""

    unit: str = Field(
        "",
        max_length=32,
        description="Empty: taken from the node's EngineeringUnits. Given: must match them "
        "(when the node has them), else the channel's readings are bad.",
    )
    node: str | None = Field(
        None, description="NodeId: 'ns=2;s=Chamber.Temperature', 'nsu=urn:x;i=1001', 'i=2258'."
    )
    browse_path: list[str] | None = Field(
        None,
        min_length=1,
        description="Browse names from the Objects folder, e.g. ['ClimateChamber', "
        "'Temperature']; 'N:Name' gives the namespace index, a bare name uses the instrument's "
        "namespace. Resolved at each connect.",
    )
    mode: Literal["poll", "subscribe"] = "poll"
    sampling_interval_ms: float | None = Field(
        None, ge=0, description="subscribe: how often the server samples; default interval_s."
    )
    queue_size: int = Field(
        1, ge=1, le=10_000, description="subscribe: values the server keeps between publishes."
    )
    deadband: Deadband | None = Field(None, description="subscribe: data-change filter.")

    @model_validator(mode="after")
    def _one_address(self) -> OpcUaChannel:
        check_address(self.node, self.browse_path)
        if self.mode == "poll" and (self.deadband or self.sampling_interval_ms is not None):
            raise ValueError("deadband and sampling_interval_ms are for mode: subscribe")
        return self


DataTypeName = Literal[
    "Boolean",
    "SByte",
    "Byte",
    "Int16",
    "UInt16",
    "Int32",
    "UInt32",
    "Int64",
    "UInt64",
    "Float",
    "Double",
    "String",
]
INTEGER_TYPES = frozenset(
    {"SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"}
)


def kind_of(data_type: str) -> TargetKind:
    """What values a node of a built-in data type takes."""
    if data_type == "Boolean":
        return "bool"
    if data_type == "String":
        return "choice"
    return "integer" if data_type in INTEGER_TYPES else "number"


class OpcUaTarget(TypedTarget):
    """A variable node this bench may write, with its limits. Its data type is read from the
    node (the DataType attribute) at connect unless ``data_type`` says it; without one, the
    limits say the kind: allowed words → a String, min/max → a number, none → a Boolean."""

    node: str | None = Field(None, description="NodeId, as for a channel.")
    browse_path: list[str] | None = Field(None, min_length=1, description="As for a channel.")
    data_type: DataTypeName | None = Field(
        None, description="Built-in data type of the node; checked against the node's own."
    )
    verify: bool = Field(False, description="Read the value back after the write and compare.")

    @property
    def kind(self) -> TargetKind:
        """What values the target takes."""
        if self.data_type is not None:
            return kind_of(self.data_type)
        if self.allowed is not None and all(isinstance(a, str) for a in self.allowed):
            return "choice"
        if self.min is not None or self.max is not None or self.allowed is not None:
            return "number"
        return "bool"

    @model_validator(mode="after")
    def _one_address(self) -> OpcUaTarget:
        check_address(self.node, self.browse_path)
        return self


class PasswordSource(FrozenModel):
    """A password from an environment variable or a file — never inline in a config."""

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> PasswordSource:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env and file")
        return self

    def resolve(self) -> str:
        """The password; raises ValueError when it cannot be read."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            return self.file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ValueError(f"cannot read password file {self.file}: {exc}") from exc


class OpcUaSecurity(FrozenModel):
    """Message security and the certificates it needs."""

    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    policy: Literal["Basic256Sha256"] = "Basic256Sha256"
    certificate: Path | None = Field(
        None, description="Our application certificate (DER/PEM); None: made in certificate_dir."
    )
    private_key: Path | None = None
    certificate_dir: Path = Field(
        default_factory=default_certificate_dir,
        description="Where our certificate is made on first start (cert.der, key.pem) and where "
        "refused server certificates are saved (rejected/) for an administrator to inspect.",
    )
    application_uri: str | None = Field(
        None, description="Our application URI; default urn:etalon:agent:<hostname>."
    )
    trusted_server_certificates: list[Path] = Field(
        default_factory=list,
        description="Certificate files or directories: the server's own certificate (pinned) "
        "or the CA that issued it. Required unless mode is None.",
    )

    @model_validator(mode="after")
    def _complete(self) -> OpcUaSecurity:
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and private_key go together")
        if self.mode != "None" and not self.trusted_server_certificates:
            raise ValueError(
                f"mode {self.mode} needs trusted_server_certificates: without them any server "
                "could claim to be this one"
            )
        return self


class OpcUaInstrument(InstrumentBase, DeclaredTargets[OpcUaTarget]):
    """An OPC UA server (a climate chamber, a PLC, a bench) whose variables are channels."""

    protocol: Literal["opcua"]
    endpoint: str = Field(..., description="opc.tcp://host:port/path")
    namespace: str | None = Field(
        None, description="Namespace URI of bare browse names (e.g. 'urn:etalon:sim')."
    )
    security: OpcUaSecurity = Field(default_factory=OpcUaSecurity)
    username: str | None = None
    password: PasswordSource | None = None
    timestamps: Literal["source", "server", "agent"] = Field(
        "source",
        description="Which time stamps a reading: the value's SourceTimestamp (the default), the "
        "ServerTimestamp, or the agent's clock at the request's mid-point.",
    )
    publishing_interval_ms: float | None = Field(
        None, gt=0, description="Subscription publishing interval; default the shortest sampling."
    )
    max_nodes_per_read: int = Field(1000, ge=1, le=100_000)
    targets: list[OpcUaTarget] = Field(
        default_factory=list,
        description="Nodes this bench may write, with their limits; nothing else is written.",
    )
    safe_state: list[SafeValue] = Field(
        default_factory=list, description="Target values that make the equipment safe, in order."
    )
    channels: list[OpcUaChannel]

    @field_validator("endpoint")
    @classmethod
    def _opc_tcp(cls, endpoint: str) -> str:
        if not re.match(r"^opc\.tcp://[^/:]+(:\d+)?(/.*)?$", endpoint):
            raise ValueError(f"{endpoint!r} is not an opc.tcp:// endpoint URL")
        return endpoint

    @model_validator(mode="after")
    def _credentials(self) -> OpcUaInstrument:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.password is not None:
            self.password.resolve()
        addressed: list[OpcUaChannel | OpcUaTarget] = [*self.channels, *self.targets]
        bare = [
            c.name
            for c in addressed
            if c.browse_path and any(":" not in part for part in c.browse_path)
        ]
        if bare and self.namespace is None:
            raise ValueError(
                f"channels {', '.join(bare)} use bare browse names: set namespace (its URI)"
            )
        self.check_safe_state()
        return self
