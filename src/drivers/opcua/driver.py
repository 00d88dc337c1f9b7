"""The OPC UA driver (asyncua): batched polling and subscriptions, security, reconnect by the agent.

Polled channels are read with one batched Read service call per tick (chunks of
``max_nodes_per_read``). Subscribed channels are monitored items of one subscription and reach the
agent through :meth:`OpcUaDriver.stream` (the :class:`drivers.base.StreamingDriver` extension).
asyncua's own auto-reconnect is off: when the connection is lost, ``read`` raises NotConnected and
``stream`` reports a gap (one BAD reading per subscribed channel) and raises NotConnected; the agent
then reconnects with its backoff, and ``connect`` re-creates the subscription. A value the server
sent again after a reconnect (same source timestamp) is not delivered twice.

StatusCode → quality: Good → GOOD, Uncertain → UNCERTAIN, Bad → BAD; the reason names the code.

Writes (:class:`drivers.base.SettableDriver`): each target's node is resolved at connect and its
DataType attribute read, so a value is sent as a Variant of the node's own built-in type (a
Double as Double, a UInt16 as UInt16); a value the type cannot hold, or a target whose node is
missing or of an unusable type, is refused before anything is sent. The Write service's
StatusCode must be Good (else WriteRejected naming it); with ``verify`` the value is read back.

The module stays over 500 lines because it is one session's state machine: connect, bindings,
polls, the subscription and writes all read and reset the same per-connection state of one asyncua
client, and splitting the class would scatter those invariants (what needs no session is
:mod:`drivers.opcua.nodes`; security, error mapping, config, certificates and units are their own
modules).
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import (
    DataChangeEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)

from core.cancel import cancellable
from core.clock import Clock
from core.errors import (
    DriverError,
    NotConnected,
    WriteRejected,
)
from drivers.opcua.config import OpcUaChannel, OpcUaInstrument, OpcUaTarget
from drivers.opcua.errors import driver_error
from drivers.opcua.nodes import (
    Binding,
    TargetBinding,
    browse_path,
    data_type_of,
    monitored_item,
    parse_node_id,
    read_requests,
    reading_of,
    status_name,
    utc_ns,
    variant_for,
)
from drivers.opcua.security import secure
from drivers.opcua.units import EngineeringUnit, engineering_unit
from drivers.reading import Reading, midpoint_ns
from drivers.setpoints import (
    SetValue,
    Step,
    WriteRecord,
    WriteTarget,
    WriteTrace,
    check_setpoints,
    run_safe_state,
    value_text,
    write_setpoints,
)

log = logging.getLogger("etalon.drivers.opcua")

_IDENTITY_NODES = {
    "manufacturer": ua.ObjectIds.Server_ServerStatus_BuildInfo_ManufacturerName,
    "model": ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductName,
    "firmware": ua.ObjectIds.Server_ServerStatus_BuildInfo_SoftwareVersion,
    "build": ua.ObjectIds.Server_ServerStatus_BuildInfo_BuildNumber,
    "application_uri": ua.ObjectIds.Server_ServerArray,
}
LOSS_CHECK_S = 1.0
"""How often an idle stream checks whether the connection was lost without telling it."""
SUBSCRIPTION_QUEUE = 100_000
"""Notifications held between arrival and the agent taking them; overflowing it forces a
reconnect (a reported gap), never a silent drop."""


class OpcUaDriver:
    """Driver for :class:`OpcUaInstrument` (see :mod:`drivers.base`, including streaming)."""

    def __init__(self, config: OpcUaInstrument, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.channels = {c.name: c for c in config.channels}
        self._client: Client | None = None
        self._bindings: dict[str, Binding] = {}
        self._subscription: Subscription | None = None
        self._handles: dict[int, OpcUaChannel] = {}
        self._streamed: frozenset[str] = frozenset()
        self._refused: list[Reading] = []
        self._identity: dict[str, str] = {}
        self._last_ts: dict[str, int] = {}
        """The instrument's time stamp of each channel's last reading delivered (polled or
        subscribed: a channel is one or the other), by which a repeated sample is left out."""
        self._lost: str | None = None
        self._session_open = False
        self._unit_warnings: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
        self._node_units: dict[str, str] = {}
        """The unit each channel without one of its own took from its node at the last connect."""
        self._plans: dict[tuple[str, ...], tuple[list[str], list[Any]]] = {}
        """Read requests per set of due channels, built once per connection."""
        self._targets = config.write_targets()
        self._target_bindings: dict[str, TargetBinding] = {}
        self.app_uri = config.security.application_uri or f"urn:etalon:agent:{socket.gethostname()}"

    # -- connect -------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect (securely if configured), identify the server, resolve nodes, subscribe."""
        await self.close()
        config = self.config
        client = Client(config.endpoint, timeout=config.timeout_s)
        client.application_uri = self.app_uri
        client.name = client.description = f"etalon agent ({config.name})"
        client.product_uri = "urn:etalon"
        client.session_timeout = 60_000  # a dead agent's session is dropped after a minute
        client.connection_lost_callback = self._on_lost
        self._client = client
        self._lost = None
        try:
            if config.security.mode != "None":
                await secure(client, self.config, self.app_uri)
            if config.username is not None and config.password is not None:
                client.set_user(config.username)
                client.set_password(config.password.resolve())
            await cancellable(client.connect())
            self._session_open = True
            namespaces = await client.get_namespace_array()
            self._identity = await self._identify(client)
            await self._bind(client, namespaces)
            await self._bind_targets(client, namespaces)
            self._plans = {}
            await self._subscribe(client)
        except DriverError:
            await self.close()
            raise
        except (TimeoutError, ConnectionError, OSError, ua.UaError, ValueError) as exc:
            await self.close()
            raise driver_error(self.config, "connect", exc) from exc

    async def _identify(self, client: Client) -> dict[str, str]:
        nodes = [client.get_node(ua.NodeId(i)) for i in _IDENTITY_NODES.values()]
        values = await cancellable(client.read_values(nodes))
        identity: dict[str, str] = {}
        for key, value in zip(_IDENTITY_NODES, values, strict=True):
            if isinstance(value, list):
                value = value[0] if value else None
            if value not in (None, ""):
                identity[key] = str(value)
        if "build" in identity:
            identity["firmware"] = f"{identity.get('firmware', '')} build {identity.pop('build')}"
        identity["endpoint"] = self.config.endpoint
        identity["security"] = (
            "None"
            if self.config.security.mode == "None"
            else f"{self.config.security.policy}/{self.config.security.mode}"
        )
        return identity

    async def _resolve(
        self,
        client: Client,
        namespaces: list[str],
        items: Sequence[OpcUaChannel | OpcUaTarget],
    ) -> dict[str, ua.NodeId | str]:
        """Each channel's or target's node by name, or why it has none: a NodeId parsed here,
        browse paths translated by the server in one request for all."""
        resolved: dict[str, ua.NodeId | str] = {}
        paths: list[tuple[OpcUaChannel | OpcUaTarget, ua.BrowsePath]] = []
        for item in items:
            try:
                if item.node is not None:
                    resolved[item.name] = parse_node_id(item.node, namespaces)
                else:
                    assert item.browse_path is not None
                    paths.append((item, browse_path(self.config, item.browse_path, namespaces)))
            except ValueError as exc:
                resolved[item.name] = str(exc)
        if paths:
            results = await self._translate(client, [p for _, p in paths])
            for (item, _), result in zip(paths, results, strict=True):
                if result.StatusCode.is_good() and result.Targets:
                    found = result.Targets[0].TargetId
                    resolved[item.name] = ua.NodeId(
                        found.Identifier, found.NamespaceIndex, found.NodeIdType
                    )
                else:
                    resolved[item.name] = (
                        f"browse path {'/'.join(item.browse_path or [])} not found "
                        f"({status_name(result.StatusCode)})"
                    )
        return resolved

    async def _bind(self, client: Client, namespaces: list[str]) -> None:
        """Resolve each channel's node and unit; a channel that cannot be bound gets a problem."""
        resolved = await self._resolve(client, namespaces, self.config.channels)
        units = {channel.name: channel.unit for channel in self.config.channels}
        bindings = {
            name: Binding(node, units[name])
            if isinstance(node, ua.NodeId)
            else Binding(None, units[name], node)
            for name, node in resolved.items()
        }
        await self._units(client, bindings)
        self._bindings = bindings

    async def _bind_targets(self, client: Client, namespaces: list[str]) -> None:
        """Resolve each write target's node and read its DataType (one request for all)."""
        resolved = await self._resolve(client, namespaces, self.config.targets)
        bindings = {
            name: TargetBinding(node)
            if isinstance(node, ua.NodeId)
            else TargetBinding(None, problem=node)
            for name, node in resolved.items()
        }
        bound = [(name, b) for name, b in bindings.items() if b.node_id is not None]
        if bound:
            node_ids = [b.node_id for _, b in bound]
            results = await client.uaclient.read_attributes(node_ids, ua.AttributeIds.DataType)
            for (name, binding), data_value in zip(bound, results, strict=True):
                binding.problem, binding.variant_type = data_type_of(
                    self.config.target_named(name), data_value
                )
        self._target_bindings = bindings

    async def _units(self, client: Client, bindings: dict[str, Binding]) -> None:
        """Each bound node's EngineeringUnits: the unit of a channel whose config gives none,
        checked against the config's where it does. A channel left without a unit is warned
        about (once); a server that cannot look the units up (a service it lacks, an operation
        limit) leaves the config's units, and does not fail the connect."""
        bound = [(name, b) for name, b in bindings.items() if b.node_id is not None]
        if not bound:
            return
        missing = "the node has no readable EngineeringUnits"
        try:
            node_units = await self._engineering_units(client, bound)
        except ua.UaStatusCodeError as exc:
            node_units = {}
            code = status_name(ua.StatusCode(exc.code))
            missing = f"the server did not look up EngineeringUnits ({code})"
        for name, binding in bound:
            node_unit = node_units.get(name)
            if binding.unit:
                if node_unit is not None:
                    self._check_unit(self.channels[name], node_unit)
                continue
            reason = missing
            if node_unit is not None:
                binding.unit = node_unit.symbol
                previous = self._node_units.get(name, binding.unit)
                self._node_units[name] = binding.unit
                if previous != binding.unit:
                    self._warn_once(
                        name,
                        "the node's EngineeringUnits changed: its readings carry the new unit",
                        unit=binding.unit,
                        previous_unit=previous,
                    )
                if node_unit.refused is not None:
                    self._warn_once(
                        name,
                        "the node's EngineeringUnits name is too long to be a unit; give the "
                        "channel a unit",
                        display_name=node_unit.refused[:200],
                        unit=node_unit.symbol,
                    )
                    continue
                reason = "the node's EngineeringUnits have no display name nor a known code"
            if not binding.unit:
                self._warn_once(
                    name, "no unit: give the channel a unit; its readings carry none", reason=reason
                )

    async def _engineering_units(
        self, client: Client, bound: list[tuple[str, Binding]]
    ) -> dict[str, EngineeringUnit]:
        """The EngineeringUnits of the nodes that have a readable one, by channel name (one
        translate and one read for all); raises ua.UaStatusCodeError on a service fault."""
        requests = [
            ua.BrowsePath(
                StartingNode=b.node_id,
                RelativePath=ua.RelativePath(
                    Elements=[
                        ua.RelativePathElement(
                            ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasProperty),
                            IsInverse=False,
                            IncludeSubtypes=True,
                            TargetName=ua.QualifiedName("EngineeringUnits", 0),
                        )
                    ]
                ),
            )
            for _, b in bound
        ]
        results = await self._translate(client, requests)
        found = [
            (name, result.Targets[0].TargetId)
            for (name, _), result in zip(bound, results, strict=True)
            if result.StatusCode.is_good() and result.Targets
        ]
        if not found:
            return {}
        values = await self._read_values(client, [target for _, target in found])
        units: dict[str, EngineeringUnit] = {}
        for (name, _), data_value in zip(found, values, strict=True):
            information = data_value.Value.Value if data_value.Value is not None else None
            if not isinstance(information, ua.EUInformation):
                continue
            display = information.DisplayName.Text if information.DisplayName else None
            units[name] = engineering_unit(
                information.NamespaceUri, information.UnitId, display or ""
            )
        return units

    def _check_unit(self, channel: OpcUaChannel, node_unit: EngineeringUnit) -> None:
        """Warn, once per channel and unit, when the config's unit is not the node's. The
        config's unit stays the reading's: it may be right where the server is wrong; but with
        scale or offset it is the unit after conversion, and a difference is expected."""
        if channel.scale != 1.0 or channel.offset != 0.0 or not node_unit.symbol:
            return
        if node_unit.agrees_with(channel.unit):
            return
        self._warn_once(
            channel.name,
            "channel unit disagrees with the node's EngineeringUnits",
            unit=channel.unit,
            node_unit=node_unit.symbol,
            unit_code=node_unit.code or "",
        )

    def _warn_once(self, channel: str, message: str, **fields: str) -> None:
        """A warning about a channel's unit, logged once in the driver's life (not at every
        reconnect)."""
        key = (channel, message, tuple(sorted(fields.items())))
        if key in self._unit_warnings:
            return
        self._unit_warnings.add(key)
        log.warning(message, extra={"instrument": self.config.name, "channel": channel, **fields})

    def units(self) -> dict[str, str]:
        """Each channel's unit on the current connection: the config's, or the node's
        EngineeringUnits where the config gives none (see :class:`drivers.base.ReportsUnits`)."""
        return {name: binding.unit for name, binding in self._bindings.items()}

    async def _translate(
        self, client: Client, paths: list[ua.BrowsePath]
    ) -> list[ua.BrowsePathResult]:
        """TranslateBrowsePathsToNodeIds in calls of ``max_nodes_per_read`` paths, as the reads
        are made: a server refuses a call above its operation limit (BadTooManyOperations)."""
        step = self.config.max_nodes_per_read
        results: list[ua.BrowsePathResult] = []
        for start in range(0, len(paths), step):
            chunk = paths[start : start + step]
            results += await client.uaclient.translate_browsepaths_to_nodeids(chunk)
        return results

    async def _read_values(
        self, client: Client, node_ids: Sequence[ua.ExpandedNodeId | ua.NodeId]
    ) -> list[ua.DataValue]:
        return await self._send_reads(client, read_requests(self.config, node_ids))

    @staticmethod
    async def _send_reads(client: Client, requests: list[Any]) -> list[ua.DataValue]:
        out: list[ua.DataValue] = []
        for params in requests:
            out.extend(await cancellable(client.uaclient.read(params)))
        return out

    async def _subscribe(self, client: Client) -> None:
        """One subscription with a monitored item per subscribed channel."""
        wanted = [c for c in self.config.channels if c.mode == "subscribe"]
        self._streamed = frozenset(c.name for c in wanted)
        self._handles = {}
        self._refused = []
        if not wanted:
            return
        sampling = {c.name: c.sampling_interval_ms or c.interval_s * 1000 for c in wanted}
        publishing = self.config.publishing_interval_ms or min(sampling.values())
        subscription = await client.create_subscription(
            publishing, None, queue_maxsize=SUBSCRIPTION_QUEUE, overflow=OverflowPolicy.DISCONNECT
        )
        self._subscription = subscription
        requests: list[ua.MonitoredItemCreateRequest] = []
        by_handle: dict[int, OpcUaChannel] = {}
        now = self.clock.now_ns()
        for handle, channel in enumerate(wanted, start=1):
            binding = self._bindings[channel.name]
            if binding.node_id is None or binding.problem:
                self._refused.append(
                    Reading.bad(
                        self.config.name, channel.name, now, binding.unit, binding.problem or "?"
                    )
                )
                continue
            by_handle[handle] = channel
            requests.append(monitored_item(handle, binding.node_id, channel, sampling))
        if requests:
            results = await subscription.create_monitored_items(requests)
            for request, result in zip(requests, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    channel = by_handle.pop(request.RequestedParameters.ClientHandle)
                    self._refused.append(
                        Reading.bad(
                            self.config.name,
                            channel.name,
                            now,
                            self._bindings[channel.name].unit,
                            f"monitored item refused: {status_name(result)}",
                        )
                    )
        self._handles = by_handle

    async def _on_lost(self, exc: Exception) -> None:
        self._lost = f"connection lost: {type(exc).__name__}: {exc}".rstrip(": ")

    # -- read ----------------------------------------------------------------------------------

    async def read(self, channels: Sequence[OpcUaChannel]) -> list[Reading]:
        """One batched read of the channels' nodes; one reading per channel, in order, but for a
        channel whose node returns the sample already read (the same source or server time
        stamp): that one is left out, as a subscription leaves out a repeated notification."""
        client = self._client
        if client is None:
            raise NotConnected(self.config.name, "not connected")
        if self._lost is not None:
            raise NotConnected(self.config.name, self._lost)
        key = tuple(c.name for c in channels)
        plan = self._plans.get(key)
        if plan is None:  # the same channels come due tick after tick: build their request once
            bindings = [(c.name, self._binding(c)) for c in channels]
            readable = [name for name, b in bindings if b.node_id and not b.problem]
            node_ids = [self._bindings[name].node_id for name in readable]
            plan = self._plans[key] = (readable, read_requests(self.config, node_ids))
        readable, requests = plan
        start = self.clock.now_ns()
        try:
            values = await self._send_reads(client, requests)
        except (TimeoutError, ConnectionError, OSError, ua.UaError) as exc:
            raise driver_error(self.config, "read", exc) from exc
        midpoint = midpoint_ns(start, self.clock.now_ns())
        by_channel = dict(zip(readable, values, strict=True))
        stamped = self.config.timestamps != "agent"
        last_ts = self._last_ts
        readings = []
        for channel in channels:
            binding = self._binding(channel)
            data_value = by_channel.get(channel.name)
            if data_value is None:
                readings.append(
                    Reading.bad(
                        self.config.name,
                        channel.name,
                        midpoint,
                        binding.unit,
                        binding.problem or "?",
                    )
                )
            else:
                reading = reading_of(self.config, channel, binding, data_value, midpoint)
                if stamped and reading.ts_ns != midpoint:  # the server's stamp, not our fallback
                    # A node that has not changed since the last poll answers with the same
                    # sample; sent again it would be two readings of one series at one time,
                    # which a store keeps once (and the agent's count would say twice).
                    if last_ts.get(channel.name) == reading.ts_ns:
                        continue
                    last_ts[channel.name] = reading.ts_ns
                readings.append(reading)
        return readings

    def _binding(self, channel: OpcUaChannel) -> Binding:
        return self._bindings.get(channel.name) or Binding(None, channel.unit, "not bound")

    # -- stream --------------------------------------------------------------------------------

    def streamed_channels(self) -> frozenset[str]:
        """The channels subscribed on the current connection."""
        return self._streamed

    async def stream(self) -> AsyncIterator[list[Reading]]:
        """Notifications as readings, as they arrive; a lost connection is reported as a gap."""
        subscription = self._subscription
        if subscription is None:
            raise NotConnected(self.config.name, "no subscription on this connection")
        if self._refused:
            refused, self._refused = self._refused, []
            yield refused
        name = self.config.name
        events = aiter(subscription)
        while True:
            # A StatusChangeEvent normally announces a lost connection; the timeout is for the
            # case where it could not be queued (a full queue): the loss callback still tells.
            try:
                async with asyncio.timeout(LOSS_CHECK_S):
                    event = await anext(events)
            except TimeoutError:
                if self._lost is None:
                    continue
                break
            except StopAsyncIteration:
                break
            if isinstance(event, DataChangeEvent):
                handle = event.data.monitored_item.ClientHandle
                channel = self._handles.get(handle)
                if channel is None:
                    continue
                reading = self._notified(channel, event.data.monitored_item.Value)
                if reading is not None:
                    yield [reading]
            elif isinstance(event, StatusChangeEvent):
                code = event.notification.Status
                reason = self._lost or f"subscription ended: {status_name(code)}"
                yield self.stream_gap(reason)
                raise NotConnected(name, reason)
        reason = self._lost or "subscription closed"
        yield self.stream_gap(reason)
        raise NotConnected(name, reason)

    def _notified(self, channel: OpcUaChannel, data_value: ua.DataValue) -> Reading | None:
        """A notification as a reading, or None when it repeats a value already delivered."""
        now = self.clock.now_ns()
        binding = self._binding(channel)
        reading = reading_of(self.config, channel, binding, data_value, now)
        source = utc_ns(data_value.SourceTimestamp)
        if source is not None:
            last = self._last_ts.get(channel.name)
            if last is not None and source <= last:
                return None  # re-sent after a reconnect, or the initial value of a new item
            self._last_ts[channel.name] = source
        return reading

    def stream_gap(self, reason: str) -> list[Reading]:
        """One BAD reading per subscribed channel where the data stops: the gap's start."""
        now = self.clock.now_ns()
        text = f"{reason}; no values until reconnected"
        return [
            Reading.bad(self.config.name, c.name, now, self._binding(c).unit, text)
            for c in self._handles.values()
        ]

    # -- close ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the session (the server drops its subscription with it); never raises."""
        client, self._client = self._client, None
        opened, self._session_open = self._session_open, False
        self._subscription = None
        self._streamed = frozenset()
        if client is None or not opened:
            return  # a connect that failed has already closed its socket
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await client.disconnect()
        except (TimeoutError, ConnectionError, OSError, ua.UaError) as exc:
            log.debug(
                "disconnect failed", extra={"instrument": self.config.name, "error": str(exc)}
            )
            client.disconnect_socket()

    def describe(self) -> dict[str, str]:
        """The server's build info (manufacturer, product, version), endpoint and security."""
        return dict(self._identity)

    async def identify(self) -> dict[str, str]:
        """The server's build info, read now."""
        client = self._live_client()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                self._identity = await self._identify(client)
        except (TimeoutError, ConnectionError, OSError, ua.UaError) as exc:
            raise driver_error(self.config, "identify", exc) from exc
        return dict(self._identity)

    def _live_client(self) -> Client:
        client = self._client
        if client is None:
            raise NotConnected(self.config.name, "not connected")
        if self._lost is not None:
            raise NotConnected(self.config.name, self._lost)
        return client

    # -- writes --------------------------------------------------------------------------------

    def write_targets(self) -> Mapping[str, WriteTarget]:
        """The targets the config declares writable, with their limits."""
        return dict(self._targets)

    def _write_step(self, target: WriteTarget, value: SetValue, config: OpcUaTarget) -> Step:
        async def apply(trace: WriteTrace) -> None:
            client = self._live_client()
            node_id, variant = variant_for(self.config, self._target_bindings, target, value)
            where = node_id.to_string()
            trace.sent.append(f"Write {where} {variant.VariantType.name} {variant.Value!r}")
            params = ua.WriteParameters()
            params.NodesToWrite.append(
                ua.WriteValue(
                    NodeId=node_id,
                    AttributeId=ua.AttributeIds.Value,
                    Value=ua.DataValue(variant),
                )
            )
            try:
                (code,) = await client.uaclient.write(params)
            except (TimeoutError, ConnectionError, OSError, ua.UaError) as exc:
                raise driver_error(self.config, f"write {where}", exc) from exc
            trace.confirmed.append(f"StatusCode {status_name(code)}")
            if not code.is_good():
                raise WriteRejected(
                    self.config.name,
                    f"write of {value_text(value, target.unit)} to {where} refused: "
                    f"{status_name(code)}",
                    target.name,
                    instrument_message=status_name(code),
                )
            if config.verify:
                await self._verify(client, target, node_id, variant, trace)

        return target.step(value, apply)

    async def _verify(
        self,
        client: Client,
        target: WriteTarget,
        node_id: ua.NodeId,
        variant: ua.Variant,
        trace: WriteTrace,
    ) -> None:
        try:
            (data_value,) = await self._read_values(client, [node_id])
        except (TimeoutError, ConnectionError, OSError, ua.UaError) as exc:
            raise driver_error(self.config, "read back", exc) from exc
        back = data_value.Value.Value if data_value.Value is not None else None
        trace.read_back = back if isinstance(back, bool | int | float | str) else None
        trace.confirmed.append(f"read back {back!r}")
        expected = variant.Value
        if variant.VariantType == ua.VariantType.Float and isinstance(expected, float):
            expected = struct.unpack("<f", struct.pack("<f", expected))[0]
        same = back == expected or (
            isinstance(back, float)
            and isinstance(expected, float)
            and math.isclose(back, expected, rel_tol=1e-15)
        )
        if not same:
            raise WriteRejected(
                self.config.name,
                f"read back {back!r} after writing {variant.Value!r}",
                target.name,
                instrument_message=repr(back),
            )

    async def write(self, setpoints: Mapping[str, SetValue]) -> list[WriteRecord]:
        """Check every value against its target and its node's type, then write them in
        order (see the module doc)."""
        # A refused value is said before a missing session, and the session before a value
        # its node's type cannot hold.
        check_setpoints(self.config.name, self._targets, setpoints)
        self._live_client()

        def step(target: WriteTarget, value: SetValue) -> Step:
            # refused here, before the first is sent
            variant_for(self.config, self._target_bindings, target, value)
            return self._write_step(target, value, self.config.target_named(target.name))

        return await write_setpoints(self.config, self._targets, setpoints, step, clock=self.clock)

    async def safe_state(self) -> list[WriteRecord]:
        """Write the declared safe values, every one even after a failed one; connects first
        when there is no live session."""
        config = self.config

        def steps() -> list[Step]:
            return [
                self._write_step(
                    self._targets[item.target],
                    self._targets[item.target].check(item.value),
                    config.target_named(item.target),
                )
                for item in config.safe_state
            ]

        connected = self._client is not None and self._lost is None
        return await run_safe_state(
            config, steps, connected=connected, connect=self.connect, clock=self.clock
        )
