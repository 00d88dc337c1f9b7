"""OPC UA nodes and values without a session: node ids, browse paths and their string forms,
the bindings of channels and write targets to nodes, read and monitored-item requests,
StatusCodes as qualities, a DataValue as a reading, and a value as the Variant of its target's
built-in type (the driver, :mod:`drivers.opcua.driver`, uses them on its connection).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua

from core.errors import NotConnected, WriteRefused
from drivers.opcua.config import OpcUaChannel, OpcUaInstrument, OpcUaTarget, kind_of
from drivers.reading import Quality, Reading
from drivers.setpoints import SetValue, WriteTarget, integer_bounds, value_text

_NSU = re.compile(r"^nsu=([^;]+);(.+)$")


@dataclass
class Binding:
    """A channel resolved on the current connection."""

    node_id: ua.NodeId | None
    unit: str
    problem: str | None = None


@dataclass
class TargetBinding:
    """A write target resolved on the current connection: its node and built-in type."""

    node_id: ua.NodeId | None
    variant_type: ua.VariantType | None = None
    problem: str | None = None


INTEGER_BOUNDS = {
    f"{'S' if signed else ''}Byte" if bits == 8 else f"{'' if signed else 'U'}Int{bits}": (
        integer_bounds(bits, signed=signed)
    )
    for bits in (8, 16, 32, 64)
    for signed in (True, False)
}
BUILT_IN_NAMES = frozenset({"Boolean", "Float", "Double", "String", *INTEGER_BOUNDS})


def status_name(code: ua.StatusCode) -> str:
    """The symbolic name of a StatusCode (``BadSensorFailure``)."""
    try:
        return str(code.name)
    except KeyError:  # a code asyncua does not know (vendor-specific)
        return f"0x{code.value:08X}"


def quality_of(code: ua.StatusCode) -> Quality:
    """Good/Uncertain/Bad from the StatusCode's severity bits."""
    if code.is_good():
        return Quality.GOOD
    if code.is_uncertain():
        return Quality.UNCERTAIN
    return Quality.BAD


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_ns(stamp: datetime | None) -> int | None:
    """UTC ns of an OPC UA DateTime (integer arithmetic: no float rounding of the µs)."""
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    delta = stamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def data_type_of(
    target: OpcUaTarget, data_value: ua.DataValue
) -> tuple[str | None, ua.VariantType | None]:
    """(problem, built-in type) of a target's node from its DataType attribute."""
    code = data_value.StatusCode or ua.StatusCode()
    if not code.is_good() or data_value.Value is None:
        return f"node not readable ({status_name(code)})", None
    type_id = data_value.Value.Value
    if not isinstance(type_id, ua.NodeId) or type_id.NamespaceIndex != 0:
        return f"node has the data type {type_id}, not a built-in one", None
    try:
        variant_type = ua.VariantType(type_id.Identifier)
    except ValueError:
        return f"node has the data type i={type_id.Identifier}, not a built-in one", None
    name = variant_type.name
    if name not in BUILT_IN_NAMES:
        return f"node has the data type {name}, which a target cannot write", None
    if target.data_type is not None and target.data_type != name:
        return f"the node's DataType is {name}, the config says {target.data_type}", None
    node_kind = kind_of(name)
    # A number may go to an integer node (whole values only, checked at each write).
    if node_kind != target.kind and not (target.kind == "number" and node_kind == "integer"):
        return f"the node's DataType is {name}, which takes no {target.kind} value", None
    return None, variant_type


def browse_path(config: OpcUaInstrument, names: list[str], namespaces: list[str]) -> ua.BrowsePath:
    elements = []
    for part in names:
        index_text, colon, name = part.partition(":")
        if colon and index_text.isdigit():
            index = int(index_text)
        else:
            assert config.namespace is not None
            if config.namespace not in namespaces:
                raise ValueError(f"the server has no namespace {config.namespace!r}")
            index, name = namespaces.index(config.namespace), part
        elements.append(
            ua.RelativePathElement(
                ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences),
                IsInverse=False,
                IncludeSubtypes=True,
                TargetName=ua.QualifiedName(name, index),
            )
        )
    return ua.BrowsePath(
        StartingNode=ua.NodeId(ua.ObjectIds.ObjectsFolder),
        RelativePath=ua.RelativePath(Elements=elements),
    )


def read_requests(
    config: OpcUaInstrument, node_ids: Sequence[ua.ExpandedNodeId | ua.NodeId]
) -> list[Any]:
    """Read requests for the nodes, in chunks of ``max_nodes_per_read``."""
    requests = []
    step = config.max_nodes_per_read
    for start in range(0, len(node_ids), step):
        params = ua.ReadParameters()
        params.TimestampsToReturn = ua.TimestampsToReturn.Both
        for node_id in node_ids[start : start + step]:
            params.NodesToRead.append(
                ua.ReadValueId(NodeId=plain_node_id(node_id), AttributeId=ua.AttributeIds.Value)
            )
        requests.append(params)
    return requests


def monitored_item(
    handle: int, node_id: ua.NodeId, channel: OpcUaChannel, sampling: dict[str, float]
) -> ua.MonitoredItemCreateRequest:
    item_filter = None
    if channel.deadband is not None:
        item_filter = ua.DataChangeFilter(
            Trigger=ua.DataChangeTrigger.StatusValue,
            DeadbandType=(
                ua.DeadbandType.Absolute
                if channel.deadband.kind == "absolute"
                else ua.DeadbandType.Percent
            ),
            DeadbandValue=channel.deadband.value,
        )
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=ua.MonitoringParameters(
            ClientHandle=handle,
            SamplingInterval=sampling[channel.name],
            QueueSize=channel.queue_size,
            DiscardOldest=True,
            Filter=item_filter,
        ),
    )


def parse_node_id(text: str, namespaces: list[str]) -> ua.NodeId:
    """A NodeId from its string form; ``nsu=`` is resolved against the server's namespaces."""
    match = _NSU.match(text)
    if match:
        uri, rest = match.groups()
        if uri not in namespaces:
            raise ValueError(f"the server has no namespace {uri!r}")
        text = f"ns={namespaces.index(uri)};{rest}"
    return ua.NodeId.from_string(text)


def plain_node_id(node_id: ua.NodeId | ua.ExpandedNodeId) -> ua.NodeId:
    return ua.NodeId(node_id.Identifier, node_id.NamespaceIndex, node_id.NodeIdType)


def reading_of(
    config: OpcUaInstrument,
    channel: OpcUaChannel,
    binding: Binding,
    data_value: ua.DataValue,
    fallback_ns: int,
) -> Reading:
    """A DataValue as a reading: value, StatusCode → quality, the configured timestamp."""
    chosen = config.timestamps
    ts = fallback_ns
    if chosen == "source":
        ts = utc_ns(data_value.SourceTimestamp) or utc_ns(data_value.ServerTimestamp) or fallback_ns
    elif chosen == "server":
        ts = utc_ns(data_value.ServerTimestamp) or fallback_ns
    code = data_value.StatusCode or ua.StatusCode()
    quality = quality_of(code)
    name = config.name
    raw = data_value.Value.Value if data_value.Value is not None else None
    if quality is Quality.BAD or raw is None:
        reason = status_name(code) if quality is Quality.BAD else "no value"
        return Reading.bad(name, channel.name, ts, binding.unit, reason)
    if not isinstance(raw, bool | int | float | str):
        unsupported = f"unsupported value type {type(raw).__name__}"
        return Reading.bad(name, channel.name, ts, binding.unit, unsupported)
    note = status_name(code) if quality is Quality.UNCERTAIN else None
    return Reading(name, channel.name, ts, raw, binding.unit, quality, note)


def variant_for(
    config: OpcUaInstrument,
    bindings: Mapping[str, TargetBinding],
    target: WriteTarget,
    value: SetValue,
) -> tuple[ua.NodeId, ua.Variant]:
    """The node and the Variant a value goes as; raises WriteRefused when the target is
    unusable on this connection or its type cannot hold the value."""
    binding = bindings.get(target.name)
    if binding is None:
        raise NotConnected(config.name, "not connected")
    if binding.problem or binding.node_id is None or binding.variant_type is None:
        raise WriteRefused(
            config.name,
            target.name,
            value,
            "a usable node",
            "unusable",
            f"{binding.problem or 'node not bound'}; nothing was sent",
        )
    name = binding.variant_type.name
    bounds = INTEGER_BOUNDS.get(name)
    if bounds is not None:
        assert isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(value, float) and not value.is_integer():
            raise WriteRefused(
                config.name,
                target.name,
                value,
                f"a whole number ({name})",
                "not_integer",
                f"{value_text(value, target.unit)} is not a whole number, as the node's "
                f"{name} needs; nothing was sent",
            )
        if not bounds[0] <= value <= bounds[1]:
            raise WriteRefused(
                config.name,
                target.name,
                value,
                f"{name} {bounds[0]} … {bounds[1]}",
                "unusable",
                f"{value_text(value, target.unit)} does not fit the node's {name}; "
                "nothing was sent",
            )
        value = int(value)
    elif name in ("Float", "Double"):
        value = float(value)
    return binding.node_id, ua.Variant(value, binding.variant_type)
