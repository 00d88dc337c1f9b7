"""The OPC UA driver against the simulated server: polling, units, status codes, subscriptions."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from asyncua import ua

from core.errors import NotConnected
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.units import UNECE_NAMESPACE, unit_id
from drivers.reading import Quality, Reading
from drivers.sim.opcua_server import OpcUaSimulator
from edge_agent.wire import READING, encode_reading

pytestmark = pytest.mark.asyncio(loop_scope="session")

Config = Callable[..., OpcUaInstrument]
Build = Callable[[OpcUaInstrument], OpcUaDriver]

CHAMBER = [
    {"name": "temperature", "node": "ns=2;s=ClimateChamber.Temperature"},
    {"name": "humidity", "node": "nsu=urn:etalon:sim;s=ClimateChamber.Humidity"},
    {"name": "pressure", "browse_path": ["ClimateChamber", "Pressure"]},
    {"name": "zener", "browse_path": ["2:ReferenceStandards", "2:Zener10V", "2:Voltage"]},
]
TRUTH_TOLERANCE = {"temperature": 0.2, "humidity": 2.0, "pressure": 0.3, "zener": 2e-6}
PATHS = {
    "temperature": "ClimateChamber.Temperature",
    "humidity": "ClimateChamber.Humidity",
    "pressure": "ClimateChamber.Pressure",
    "zener": "ReferenceStandards.Zener10V.Voltage",
}


def _is_update_time(sim: OpcUaSimulator, ts_ns: int) -> bool:
    """Whether a timestamp is one the simulator stamped a value with (to the µs)."""
    return any(abs(ts_ns - t) <= 1_000 for t in sim.update_times)


async def test_polling_returns_values_units_and_source_timestamps(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    config = ua_config(ua_server.endpoint, CHAMBER)
    driver = ua_drivers(config)
    await driver.connect()
    readings = await driver.read(config.channels)
    assert [r.channel for r in readings] == [c["name"] for c in CHAMBER]
    assert [r.unit for r in readings] == ["°C", "%rh", "hPa", "V"]  # from EngineeringUnits
    for reading in readings:
        assert reading.quality is Quality.GOOD, reading.reason
        assert _is_update_time(ua_server, reading.ts_ns), "stamped with the source timestamp"
        truth = ua_server.true_value(PATHS[reading.channel], reading.ts_ns)
        assert reading.value == pytest.approx(truth, abs=TRUTH_TOLERANCE[reading.channel])


async def test_identification_of_the_server(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    driver = ua_drivers(ua_config(ua_server.endpoint, CHAMBER[:1]))
    await driver.connect()
    identity = driver.describe()
    assert identity["manufacturer"] == "FreeOpcUa"
    assert identity["application_uri"] == "urn:etalon:sim:server"
    assert identity["endpoint"] == ua_server.endpoint
    assert identity["security"] == "None"
    assert "firmware" in identity


async def test_agent_timestamps_are_request_midpoints(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    config = ua_config(ua_server.endpoint, CHAMBER[:1], timestamps="agent")
    driver = ua_drivers(config)
    await driver.connect()
    before = driver.clock.now_ns()
    (reading,) = await driver.read(config.channels)
    assert before <= reading.ts_ns <= driver.clock.now_ns()


async def test_a_unit_that_disagrees_with_the_node_is_kept_and_warned_about_once(
    ua_server: OpcUaSimulator,
    ua_config: Config,
    ua_drivers: Build,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = "ns=2;s=ClimateChamber.Temperature"
    config = ua_config(
        ua_server.endpoint,
        [
            {"name": "right", "node": node, "unit": "°C"},
            {"name": "wrong", "node": node, "unit": "K"},
            {"name": "converted", "node": node, "unit": "K", "offset": 273.15},
            {"name": "spelled", "node": node, "unit": "degC"},
        ],
    )
    driver = ua_drivers(config)
    caplog.set_level(logging.WARNING, logger="etalon.drivers.opcua")
    for _ in range(2):  # a reconnect does not repeat the warning, nor do reads
        await driver.connect()
        for _ in range(3):
            await _next_update(ua_server)  # a sample not read yet: a repeated one is left out
            readings = await driver.read(config.channels)
            assert [r.quality for r in readings] == [Quality.GOOD] * 4
            assert [r.unit for r in readings] == ["°C", "K", "K", "degC"]  # the config's
    warnings = [r for r in caplog.records if "EngineeringUnits" in r.getMessage()]
    assert len(warnings) == 1, [r.__dict__ for r in warnings]
    (warning,) = warnings
    assert warning.levelno == logging.WARNING
    assert (warning.channel, warning.unit, warning.node_unit) == ("wrong", "K", "°C")  # type: ignore[attr-defined]
    assert warning.unit_code == "CEL"  # type: ignore[attr-defined]
    assert driver.units() == {"right": "°C", "wrong": "K", "converted": "K", "spelled": "degC"}


@pytest.mark.parametrize(
    ("information", "unit"),
    [
        # A UNECE code whose display name is not a symbol: the table's symbol.
        (
            ua.EUInformation(
                NamespaceUri=UNECE_NAMESPACE,
                UnitId=unit_id("HTZ"),
                DisplayName=ua.LocalizedText("hertz"),
            ),
            "Hz",
        ),
        # A UNECE code without a display name, and no namespace given (as many servers send).
        (ua.EUInformation(UnitId=unit_id("CEL")), "°C"),
        # One of the code's spellings is kept as the server shows it.
        (
            ua.EUInformation(
                NamespaceUri=UNECE_NAMESPACE,
                UnitId=unit_id("P1"),
                DisplayName=ua.LocalizedText("%RH"),
            ),
            "%RH",
        ),
        # A vendor's own units: the display name.
        (
            ua.EUInformation(
                NamespaceUri="urn:vendor:units", UnitId=7, DisplayName=ua.LocalizedText("counts")
            ),
            "counts",
        ),
        # A UNECE code the table does not know: the display name.
        (
            ua.EUInformation(
                NamespaceUri=UNECE_NAMESPACE,
                UnitId=unit_id("D33"),
                DisplayName=ua.LocalizedText("T"),
            ),
            "T",
        ),
        # No EngineeringUnits property at all: no unit.
        (None, ""),
        # Free text that is no unit: control characters and backslashes go, a name too long to
        # be a unit is refused (the code's symbol if there is one, else none).
        (
            ua.EUInformation(
                NamespaceUri="urn:vendor:units", UnitId=7, DisplayName=ua.LocalizedText("µ\\s\x07")
            ),
            "µs",
        ),
        (
            ua.EUInformation(
                NamespaceUri="urn:vendor:units", UnitId=7, DisplayName=ua.LocalizedText("x" * 300)
            ),
            "",
        ),
        (
            ua.EUInformation(
                NamespaceUri=UNECE_NAMESPACE,
                UnitId=unit_id("KEL"),
                DisplayName=ua.LocalizedText("kelvin, as the sensor's data sheet gives it"),
            ),
            "K",
        ),
    ],
)
async def test_the_unit_comes_from_the_nodes_engineering_units(
    ua_server: OpcUaSimulator,
    ua_config: Config,
    ua_drivers: Build,
    information: ua.EUInformation | None,
    unit: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over a real asyncua connection, from nodes as other vendors' servers publish them."""
    caplog.set_level(logging.WARNING, logger="etalon.drivers.opcua")
    node = await ua_server.add_variable("Vendor.Item", information, 1.5)
    try:
        config = ua_config(ua_server.endpoint, [{"name": "item", "node": node}])
        driver = ua_drivers(config)
        await driver.connect()
        (reading,) = await driver.read(config.channels)
    finally:
        await ua_server.remove_node("Vendor.Item")
    assert (reading.quality, reading.value, reading.unit) == (Quality.GOOD, 1.5, unit)
    assert driver.units() == {"item": unit}
    # What the agent publishes is valid on the wire whatever the server said.
    READING.validate_python(json.loads(encode_reading(reading)))
    too_long = information is not None and len(information.DisplayName.Text or "") > 32
    warned = [r for r in caplog.records if "too long to be a unit" in r.getMessage()]
    assert len(warned) == too_long


async def test_a_channel_left_without_a_unit_is_warned_about_once(
    ua_server: OpcUaSimulator,
    ua_config: Config,
    ua_drivers: Build,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A node without EngineeringUnits, one whose EngineeringUnits cannot be read (a Bad
    status), one whose property is not an EUInformation and one whose EUInformation names no
    unit: where the config gives no unit
    either, the readings carry none — said once per channel, not at every read or reconnect.
    A channel that gives its unit is not warned about."""
    celsius = ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE, UnitId=unit_id("CEL"), DisplayName=ua.LocalizedText("°C")
    )
    nameless = ua.EUInformation(  # only a description, no display name, no UNECE code
        NamespaceUri="urn:vendor:units", UnitId=-1, Description=ua.LocalizedText("degree")
    )
    paths = ["Vendor.NoUnits", "Vendor.Unreadable", "Vendor.Text", "Vendor.Nameless"]
    nodes = [
        await ua_server.add_variable(paths[0], None, 1.0),
        await ua_server.add_variable(paths[1], celsius, 2.0),
        await ua_server.add_variable(paths[2], None, 3.0),
        await ua_server.add_variable(paths[3], nameless, 4.0),
    ]
    unreadable = await ua_server.nodes[paths[1]].get_child("0:EngineeringUnits")
    await unreadable.write_value(
        ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadNotReadable))
    )
    await ua_server.nodes[paths[2]].add_property(
        ua.NodeId(f"{paths[2]}.EngineeringUnits", ua_server.namespace_index),
        ua.QualifiedName("EngineeringUnits", 0),
        "°C",
    )
    try:
        channels = [{"name": f"c{i}", "node": node} for i, node in enumerate(nodes)]
        channels.append({"name": "given", "node": nodes[0], "unit": "1"})
        # The agent's clock: a constant node polled again is otherwise its one sample again.
        config = ua_config(ua_server.endpoint, channels, timestamps="agent")
        driver = ua_drivers(config)
        caplog.set_level(logging.WARNING, logger="etalon.drivers.opcua")
        for _ in range(2):
            await driver.connect()
            for _ in range(2):
                readings = await driver.read(config.channels)
                assert [(r.quality, r.value, r.unit) for r in readings] == [
                    (Quality.GOOD, 1.0, ""),
                    (Quality.GOOD, 2.0, ""),
                    (Quality.GOOD, 3.0, ""),
                    (Quality.GOOD, 4.0, ""),
                    (Quality.GOOD, 1.0, "1"),
                ]
    finally:
        for path in paths:
            await ua_server.remove_node(path)
    warned = [r for r in caplog.records if "no unit" in r.getMessage()]
    assert sorted(r.channel for r in warned) == ["c0", "c1", "c2", "c3"], [
        r.__dict__ for r in warned
    ]  # type: ignore[attr-defined]


async def test_a_node_whose_engineering_units_change_is_read_in_the_new_unit_and_said_once(
    ua_server: OpcUaSimulator,
    ua_config: Config,
    ua_drivers: Build,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's program changes a node's unit (°C to K) while the agent is connected: at
    the next connect the readings carry the new unit, and the change is logged once (the
    series' unit changes with it)."""
    path = "Vendor.Changing"
    node = await ua_server.add_variable(
        path, ua.EUInformation(NamespaceUri=UNECE_NAMESPACE, UnitId=unit_id("CEL")), 20.0
    )
    try:
        # The agent's clock: a constant node polled again is otherwise its one sample again.
        config = ua_config(ua_server.endpoint, [{"name": "t", "node": node}], timestamps="agent")
        driver = ua_drivers(config)
        caplog.set_level(logging.WARNING, logger="etalon.drivers.opcua")
        await driver.connect()
        assert [r.unit for r in await driver.read(config.channels)] == ["°C"]
        units = await ua_server.nodes[path].get_child("0:EngineeringUnits")
        await units.write_value(
            ua.EUInformation(NamespaceUri=UNECE_NAMESPACE, UnitId=unit_id("KEL"))
        )
        for _ in range(2):
            await driver.connect()
            assert [r.unit for r in await driver.read(config.channels)] == ["K"]
    finally:
        await ua_server.remove_node(path)
    (changed,) = [r for r in caplog.records if "EngineeringUnits changed" in r.getMessage()]
    assert (changed.channel, changed.unit, changed.previous_unit) == ("t", "K", "°C")  # type: ignore[attr-defined]


async def test_a_server_that_cannot_look_up_engineering_units_is_still_read(
    ua_server: OpcUaSimulator,
    ua_config: Config,
    ua_drivers: Build,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small server without the TranslateBrowsePathsToNodeIds service (BadServiceUnsupported):
    channels named by NodeId are read all the same, with the config's units; a channel without
    one is said to have none. The units are looked up again at the next connect."""
    from asyncua.server.internal_session import InternalSession

    async def unsupported(self: InternalSession, params: list[ua.BrowsePath]) -> list[object]:
        raise ua.UaStatusCodeError(ua.StatusCodes.BadServiceUnsupported)

    monkeypatch.setattr(InternalSession, "translate_browsepaths_to_nodeids", unsupported)
    config = ua_config(
        ua_server.endpoint,
        [
            {"name": "temperature", "node": "ns=2;s=ClimateChamber.Temperature", "unit": "°C"},
            {"name": "humidity", "node": "ns=2;s=ClimateChamber.Humidity"},
        ],
    )
    driver = ua_drivers(config)
    caplog.set_level(logging.WARNING, logger="etalon.drivers.opcua")
    await driver.connect()
    readings = await driver.read(config.channels)
    assert [(r.quality, r.unit) for r in readings] == [(Quality.GOOD, "°C"), (Quality.GOOD, "")]
    (warned,) = [r for r in caplog.records if "no unit" in r.getMessage()]
    assert warned.channel == "humidity"  # type: ignore[attr-defined]
    assert "BadServiceUnsupported" in warned.reason  # type: ignore[attr-defined]
    monkeypatch.undo()
    await driver.connect()
    await _next_update(ua_server)  # a sample not read yet: a repeated one is left out
    assert [r.unit for r in await driver.read(config.channels)] == ["°C", "%rh"]


async def test_lookups_at_connect_keep_to_max_nodes_per_read(
    ua_server: OpcUaSimulator,
    ua_config: Config,
    ua_drivers: Build,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that refuses more than a few operations per call (BadTooManyOperations, as its
    OperationLimits say): the browse paths and the EngineeringUnits of 12 channels are looked
    up in calls of max_nodes_per_read, as the reads are, and every channel gets its unit."""
    from asyncua.server.internal_session import InternalSession

    limit = 5
    original = InternalSession.translate_browsepaths_to_nodeids
    calls: list[int] = []

    async def limited(self: InternalSession, params: list[ua.BrowsePath]) -> Any:
        calls.append(len(params))
        if len(params) > limit:
            raise ua.UaStatusCodeError(ua.StatusCodes.BadTooManyOperations)
        return await original(self, params)

    monkeypatch.setattr(InternalSession, "translate_browsepaths_to_nodeids", limited)
    channels = [{"name": f"item{i}", "browse_path": ["Bulk", f"Item{i:04d}"]} for i in range(12)]
    config = ua_config(ua_server.endpoint, channels, max_nodes_per_read=limit)
    driver = ua_drivers(config)
    await driver.connect()
    readings = await driver.read(config.channels)
    assert [(r.quality, r.unit) for r in readings] == [(Quality.GOOD, "V")] * 12
    assert calls and max(calls) <= limit, calls


async def _next_update(sim: OpcUaSimulator) -> None:
    """Until the simulator has written its variables once more (every 0.1 s, later when busy)."""
    seen = len(sim.update_times)
    async with asyncio.timeout(10):
        while len(sim.update_times) == seen:  # noqa: ASYNC110 - a list has no event
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("timestamps", ["source", "server", "agent"])
async def test_a_polled_node_that_has_not_changed_is_not_read_twice(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build, timestamps: str
) -> None:
    """Polled again before it changes, a node answers with the sample already read (its time
    stamp too): sent twice, a store that keys by series and time would keep one of two readings
    the agent counted. With the agent's clock each poll is a reading of its own."""
    node = await ua_server.add_variable("Vendor.Constant", None, 2.5)
    try:
        channels = [{"name": "constant", "node": node, "unit": "V"}, CHAMBER[0]]
        config = ua_config(ua_server.endpoint, channels, timestamps=timestamps)
        driver = ua_drivers(config)
        await driver.connect()
        first = await driver.read(config.channels)
        await _next_update(ua_server)
        second = await driver.read(config.channels)
        await driver.connect()  # a new session does not make the old sample new
        await _next_update(ua_server)
        third = await driver.read(config.channels)
    finally:
        await ua_server.remove_node("Vendor.Constant")
    assert (first[0].channel, first[0].quality, first[0].value) == ("constant", Quality.GOOD, 2.5)
    both = ["constant", "temperature"]
    assert [r.channel for r in first] == both
    later = both if timestamps == "agent" else ["temperature"]
    assert [r.channel for r in second] == [r.channel for r in third] == later
    stamps = [(r.channel, r.ts_ns) for r in first + second + third]
    assert len(set(stamps)) == len(stamps), "no two readings of a channel at one time"


async def test_status_codes_become_quality(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    path = "ReferenceStandards.Resistor10k.Resistance"
    config = ua_config(ua_server.endpoint, [{"name": "r", "node": f"ns=2;s={path}"}])
    driver = ua_drivers(config)
    await driver.connect()
    try:
        ua_server.set_status(path, ua.StatusCodes.BadSensorFailure)
        await asyncio.sleep(0.25)
        (bad,) = await driver.read(config.channels)
        assert bad.quality is Quality.BAD
        assert bad.reason == "BadSensorFailure"
        assert bad.value is None

        ua_server.set_status(path, ua.StatusCodes.UncertainLastUsableValue)
        await asyncio.sleep(0.25)
        (doubtful,) = await driver.read(config.channels)
        assert doubtful.quality is Quality.UNCERTAIN
        assert doubtful.reason == "UncertainLastUsableValue"
        assert doubtful.value == pytest.approx(10_000, rel=1e-5)
    finally:
        ua_server.set_status(path, None)
    await asyncio.sleep(0.25)
    (good,) = await driver.read(config.channels)
    assert good.quality is Quality.GOOD


async def test_a_node_that_disappears_spoils_only_its_channel(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    path = "ReferenceStandards.Rubidium10M.Frequency"
    config = ua_config(
        ua_server.endpoint,
        [CHAMBER[0], {"name": "rb", "node": f"ns=2;s={path}"}],
    )
    driver = ua_drivers(config)
    await driver.connect()
    await ua_server.remove_node(path)
    try:
        temperature, frequency = await driver.read(config.channels)
        assert temperature.quality is Quality.GOOD
        assert frequency.quality is Quality.BAD
        assert frequency.reason == "BadNodeIdUnknown"
    finally:
        await ua_server.restore_node(path)
    await asyncio.sleep(0.25)
    _, frequency = await driver.read(config.channels)
    assert frequency.quality is Quality.GOOD
    assert frequency.value == pytest.approx(10e6, rel=1e-9)


async def test_a_browse_path_that_leads_nowhere_is_reported(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    config = ua_config(
        ua_server.endpoint,
        [CHAMBER[0], {"name": "ghost", "browse_path": ["ClimateChamber", "Ghost"]}],
    )
    driver = ua_drivers(config)
    await driver.connect()
    temperature, ghost = await driver.read(config.channels)
    assert temperature.quality is Quality.GOOD
    assert ghost.quality is Quality.BAD
    assert ghost.reason == "browse path ClimateChamber/Ghost not found (BadNoMatch)"


async def test_batched_reads_of_many_nodes_in_chunks(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    channels = [{"name": f"item{i}", "node": f"ns=2;s=Bulk.Item{i:04d}"} for i in range(50)]
    config = ua_config(ua_server.endpoint, channels, max_nodes_per_read=16)
    driver = ua_drivers(config)
    await driver.connect()
    readings = await driver.read(config.channels)
    assert [r.channel for r in readings] == [c["name"] for c in channels]
    assert all(r.quality is Quality.GOOD and r.unit == "V" for r in readings)
    assert all(r.value == pytest.approx(10, abs=2e-3) for r in readings)


# -- subscriptions ---------------------------------------------------------------------------


async def _collect(
    driver: OpcUaDriver, until: Callable[[list[Reading]], bool], timeout_s: float = 30.0
) -> list[Reading]:
    """What the driver streams until ``until`` holds for it: a count of the server's updates,
    never a time, so a loaded machine's late updates cannot fail a test (its deadline is for a
    driver that streams nothing)."""
    readings: list[Reading] = []
    done = asyncio.Event()

    async def consume() -> None:
        async for batch in driver.stream():
            readings.extend(batch)
            if until(readings):
                done.set()

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return readings


def _count(channel: str, at_least: int, quality: Quality = Quality.GOOD) -> Callable[..., bool]:
    """``until`` for :func:`_collect`: that many readings of ``channel`` of that quality."""
    return lambda readings: (
        sum(r.channel == channel and r.quality is quality for r in readings) >= at_least
    )


def _subscribed(name: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "node": f"ns=2;s={path}", "mode": "subscribe", "interval_s": 0.1, **extra}


async def test_subscription_delivers_each_value_once_with_its_source_timestamp(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    config = ua_config(
        ua_server.endpoint,
        [_subscribed("zener", PATHS["zener"]), CHAMBER[0]],
    )
    driver = ua_drivers(config)
    await driver.connect()
    assert driver.streamed_channels() == frozenset({"zener"})
    loop = asyncio.get_running_loop()
    start = loop.time()
    readings = await _collect(driver, _count("zener", 7))
    updates = (loop.time() - start) / 0.1
    assert 7 <= len(readings) <= updates + 3  # one per 0.1 s update of the server, at most
    stamps = [r.ts_ns for r in readings]
    assert stamps == sorted(set(stamps)), "no value twice, in order"
    for reading in readings:
        assert reading.channel == "zener"
        assert reading.unit == "V"
        assert reading.quality is Quality.GOOD
        assert _is_update_time(ua_server, reading.ts_ns)
        truth = ua_server.true_value(PATHS["zener"], reading.ts_ns)
        assert reading.value == pytest.approx(truth, abs=2e-6)


async def test_absolute_deadband_filters_small_changes(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    config = ua_config(
        ua_server.endpoint,
        [
            # The Zener's 0.2 µV noise never moves it by 1 mV: only the first value comes.
            _subscribed("coarse", PATHS["zener"], deadband={"kind": "absolute", "value": 1e-3}),
            _subscribed("fine", PATHS["zener"], deadband={"kind": "absolute", "value": 1e-9}),
        ],
    )
    driver = ua_drivers(config)
    await driver.connect()
    readings = await _collect(driver, _count("fine", 7))  # seven updates of the Zener
    coarse = [r for r in readings if r.channel == "coarse"]
    fine = [r for r in readings if r.channel == "fine"]
    assert len(coarse) == 1
    assert len(fine) >= 7


async def test_percent_deadband_is_a_share_of_the_eu_range(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    # Chamber temperature: EURange -40…180 °C; 1 % is 2.2 K, far above its 20 mK noise.
    config = ua_config(
        ua_server.endpoint,
        [
            _subscribed("wide", PATHS["temperature"], deadband={"kind": "percent", "value": 1}),
            _subscribed("none", PATHS["temperature"], deadband={"kind": "percent", "value": 0}),
        ],
    )
    driver = ua_drivers(config)
    await driver.connect()
    readings = await _collect(driver, _count("none", 7))  # seven updates of the chamber
    assert len([r for r in readings if r.channel == "wide"]) == 1
    assert len([r for r in readings if r.channel == "none"]) >= 7


async def test_a_monitored_item_the_server_refuses_is_reported_once(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    config = ua_config(
        ua_server.endpoint,
        [_subscribed("ghost", "No.Such.Node"), _subscribed("zener", PATHS["zener"])],
    )
    driver = ua_drivers(config)
    await driver.connect()
    # Three updates of the Zener after the refusal came: it is not reported again.
    readings = await _collect(
        driver, lambda rs: _count("ghost", 1, Quality.BAD)(rs) and _count("zener", 3)(rs)
    )
    ghosts = [r for r in readings if r.channel == "ghost"]
    assert len(ghosts) == 1
    assert ghosts[0].quality is Quality.BAD
    assert ghosts[0].reason == "monitored item refused: BadNodeIdUnknown"
    assert any(r.channel == "zener" and r.quality is Quality.GOOD for r in readings)


async def test_status_change_reaches_subscribers(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    path = "ReferenceStandards.Zener10V.Temperature"
    config = ua_config(ua_server.endpoint, [_subscribed("t", path)])
    driver = ua_drivers(config)
    await driver.connect()
    ua_server.set_status(path, ua.StatusCodes.BadOutOfService)
    try:
        readings = await _collect(driver, _count("t", 1, Quality.BAD))
    finally:
        ua_server.set_status(path, None)
    assert any(r.quality is Quality.BAD and r.reason == "BadOutOfService" for r in readings)


async def test_network_loss_is_a_gap_then_an_error(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    config = ua_config(
        ua_server.endpoint, [_subscribed("zener", PATHS["zener"]), CHAMBER[0]], timeout_s=1.0
    )
    driver = ua_drivers(config)
    await driver.connect()
    readings: list[Reading] = []
    ended: list[BaseException] = []

    async def consume() -> None:
        try:
            async for batch in driver.stream():
                readings.extend(batch)
        except NotConnected as exc:
            ended.append(exc)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.5)
    ua_server.freeze()  # sockets stay open, nothing answers: a cut cable
    frozen_at = driver.clock.now_ns()
    try:
        await asyncio.wait_for(task, 6.0)
    finally:
        ua_server.thaw()
    assert ended, "the stream ends with NotConnected"
    gap = [r for r in readings if r.quality is Quality.BAD]
    assert len(gap) == 1
    assert gap[0].reason is not None
    assert "no values until reconnected" in gap[0].reason
    good = [r for r in readings if r.quality is Quality.GOOD]
    assert good
    assert all(r.ts_ns <= frozen_at for r in good), "nothing invented for the outage"
    assert all(_is_update_time(ua_server, r.ts_ns) for r in good)
    assert gap[0].ts_ns >= max(r.ts_ns for r in good)
    with pytest.raises(NotConnected):
        await driver.read(config.channels)
    await driver.close()
    await driver.connect()  # the agent's reconnect
    (temperature,) = await driver.read([config.channels[1]])
    assert temperature.quality is Quality.GOOD
