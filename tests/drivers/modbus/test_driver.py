"""The Modbus driver against the simulator over real sockets and pseudo-terminals."""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.clock import SystemClock
from core.errors import DriverTimeout, NotConnected, ProtocolError
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.registers import ModbusChannel
from drivers.reading import Quality, Reading
from drivers.sim.modbus_server import (
    MapDevice,
    ModbusSimServer,
    RegisterMap,
    SimDevice,
    load_register_map,
)

LAB_BUS = load_register_map("lab-bus")

# How far a reading may be from the model's noise-free value: noise (6 σ) plus quantisation.
TOLERANCE = {"°C": 0.2, "%rh": 2.0, "hPa": 0.4, "V": 3e-6, "L/min": 2.0}


def transport_of(server: ModbusSimServer) -> dict[str, Any]:
    """The instrument transport that reaches a running simulator."""
    if server.medium == "pty":
        return {"kind": "rtu", "port": server.pty_path, "parity": "N"}
    kind = "tcp" if server.framing == "mbap" else "rtu_over_tcp"
    return {"kind": kind, "host": server.host, "port": server.port}


def instrument(
    server: ModbusSimServer, device_id: int, channels: list[dict[str, Any]], **extra: Any
) -> ModbusInstrument:
    """An instrument config for some channels of a simulated device."""
    return ModbusInstrument.model_validate(
        {
            "name": f"dev{device_id}",
            "protocol": "modbus",
            "transport": transport_of(server),
            "device_id": device_id,
            "timeout_s": 2,
            "request_timeout_s": 0.5,
            "channels": channels,
            **extra,
        }
    )


def point_channels(device: MapDevice, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Channel configs that read the device's points as the map defines them."""
    fields = ("name", "table", "address", "type", "bit", "length", "order", "encoding")
    fields += ("scale", "offset", "unit")
    out = []
    for point in device.points:
        if names is None or point.name in names:
            dumped = point.model_dump()
            channel = {k: dumped[k] for k in fields if dumped[k] is not None}
            out.append({"order": device.order} | channel)
    return out


def check_against_model(
    readings: list[Reading], device: SimDevice, channels: list[ModbusChannel]
) -> None:
    """Every reading is GOOD and equals the model's value at its timestamp."""
    points = {p.name: p for p in device.spec.points}
    for reading, channel in zip(readings, channels, strict=True):
        assert reading.quality is Quality.GOOD, reading
        point = points[channel.name]
        truth = device.true_value(point, reading.ts_ns)
        value = reading.value
        scaled = channel.scale != 1.0 or channel.offset != 0.0
        if scaled and isinstance(value, int | float) and not isinstance(value, bool):
            value = value * channel.scale + channel.offset  # what the agent's pipeline does
        if isinstance(truth, float) and not isinstance(value, bool):
            assert isinstance(value, int | float)
            rounding = 2**-23 if point.value_type == "float32" else 2**-52  # float's own
            tolerance = TOLERANCE.get(channel.unit, 0.0) + abs(truth) * rounding
            if point.value_type in ("bool", "bit"):
                assert value == (truth >= 0.5)
            else:
                assert abs(value - truth) <= tolerance, (channel.name, value, truth)
        elif point.value_type in ("bool", "bit") and isinstance(truth, float):
            assert value == (truth >= 0.5)
        else:
            assert value == truth, (channel.name, value, truth)


@pytest.fixture
async def tcp_server() -> AsyncIterator[ModbusSimServer]:
    async with ModbusSimServer(LAB_BUS) as server:
        yield server


@pytest.fixture
async def pty_server(tmp_path: Path) -> AsyncIterator[ModbusSimServer]:
    async with ModbusSimServer(
        LAB_BUS, medium="pty", framing="rtu", link=tmp_path / "ttyRS485"
    ) as server:
        yield server


@pytest.mark.parametrize("medium", ["tcp", "rtu_over_tcp", "rtu"])
async def test_every_lab_bus_point_reads_its_model_value(medium: str) -> None:
    kwargs: dict[str, Any] = {
        "tcp": {},
        "rtu_over_tcp": {"framing": "rtu"},
        "rtu": {"medium": "pty", "framing": "rtu"},
    }[medium]
    async with ModbusSimServer(LAB_BUS, **kwargs) as server:
        for spec in LAB_BUS.devices:
            config = instrument(server, spec.device_id, point_channels(spec), order=spec.order)
            driver = ModbusDriver(config, SystemClock())
            try:
                await driver.connect()
                readings = await driver.read(config.channels)
            finally:
                await driver.close()
            check_against_model(readings, server.devices[spec.device_id], config.channels)


ALL_TYPES_VALUES: dict[str, Any] = {
    "int16": -12345,
    "uint16": 54321,
    "int32": -123456789,
    "uint32": 3_000_000_000,
    "int64": -1_234_567_890_123_456_789,
    "uint64": 18_000_000_000_000_000_000,
    "float32": -273.15,
    "float64": 10.000_000_812_345,
}


def all_types_map() -> RegisterMap:
    """The shipped map with every type in every order (device 1)."""
    return load_register_map("all-types")


async def test_every_type_and_order_through_the_driver() -> None:
    register_map = all_types_map()
    async with ModbusSimServer(register_map) as server:
        config = instrument(server, 1, point_channels(register_map.devices[0]))
        driver = ModbusDriver(config, SystemClock())
        await driver.connect()
        listed = await driver.read(config.channels)
        readings = {r.channel: r for r in listed}
        await driver.close()
        check_against_model(listed, server.devices[1], config.channels)
    assert all(r.quality is Quality.GOOD for r in readings.values())
    for order in ("ABCD", "CDAB", "BADC", "DCBA"):
        for kind, value in ALL_TYPES_VALUES.items():
            got = readings[f"{kind}-{order}"].value
            assert type(got) is type(value)
            if kind == "float32":
                value = struct.unpack(">f", struct.pack(">f", value))[0]
            assert got == value, (kind, order, got)
        assert readings[f"string-{order}"].value == "Zener Z10-1"
    assert readings["bit-5"].value is True
    assert readings["bit-6"].value is False
    assert readings["bool-register"].value is True
    assert readings["coil-1"].value is True
    assert readings["coil-2"].value is False
    assert readings["input-bit"].value is True


async def test_one_poll_uses_the_planned_number_of_requests() -> None:
    register_map = all_types_map()
    async with ModbusSimServer(register_map) as server:
        config = instrument(server, 1, point_channels(register_map.devices[0]))
        driver = ModbusDriver(config, SystemClock())
        await driver.connect()
        await driver.read(config.channels)
        before = server.requests_received
        await driver.read(config.channels)
        await driver.close()
    # 170 holding registers: two requests (125 at most); one per bit table; 16 input registers.
    assert server.requests_received - before == 5
    assert len(config.channels) == 50


async def test_illegal_address_marks_only_its_channel_and_the_split_is_remembered(
    tcp_server: ModbusSimServer,
) -> None:
    # Device 2 answers ILLEGAL DATA ADDRESS for holding 40-49; the gap setting merges 38-52.
    config = instrument(
        tcp_server,
        2,
        [
            {"name": "before", "address": 38, "unit": "1"},
            {"name": "inside", "address": 44, "unit": "1"},
            {"name": "after", "address": 52, "unit": "1"},
        ],
        max_gap_registers=8,
    )
    driver = ModbusDriver(config, SystemClock())
    await driver.connect()
    counts = []
    for _ in range(3):
        before = tcp_server.requests_received
        readings = await driver.read(config.channels)
        counts.append(tcp_server.requests_received - before)
        assert [r.quality for r in readings] == [Quality.GOOD, Quality.BAD, Quality.GOOD]
        assert readings[1].reason is not None
        assert readings[1].reason.startswith("ILLEGAL DATA ADDRESS (Modbus exception 2)")
    await driver.close()
    assert counts[0] == 5  # the merged request, then the halves until the bad one is alone
    assert counts[1:] == [3, 3]  # remembered: no search again
    assert driver.splits == 2


async def test_exception_hook_and_unsupported_table(tcp_server: ModbusSimServer) -> None:
    spec = LAB_BUS.devices[0]
    channels = point_channels(spec, ["temperature-f32", "humidity-f32", "pressure-f32"])
    channels.append({"name": "no-such-table", "table": "coil", "address": 5, "unit": "1"})
    config = instrument(tcp_server, 1, channels)
    tcp_server.faults.exception_at = [{"table": "input", "address": 13, "code": 2}]
    driver = ModbusDriver(config, SystemClock())
    await driver.connect()
    readings = {r.channel: r for r in await driver.read(config.channels)}
    assert readings["temperature-f32"].quality is Quality.GOOD
    assert readings["pressure-f32"].quality is Quality.GOOD
    assert readings["humidity-f32"].quality is Quality.BAD
    assert "ILLEGAL DATA ADDRESS" in (readings["humidity-f32"].reason or "")
    # Device 1 implements coils, but the fault hook's device 2 table test: exception 4.
    tcp_server.faults.exception_at = [{"table": "input", "address": 10, "code": 4}]
    driver2 = ModbusDriver(config, SystemClock())
    await driver2.connect()
    readings = {r.channel: r for r in await driver2.read(config.channels)}
    assert all(
        "SERVER DEVICE FAILURE" in (readings[n].reason or "")
        for n in ("temperature-f32", "humidity-f32", "pressure-f32")
    )
    await driver.close()
    await driver2.close()

    chiller = instrument(
        tcp_server, 2, [{"name": "di", "table": "discrete_input", "address": 0, "unit": "1"}]
    )
    driver3 = ModbusDriver(chiller, SystemClock())
    await driver3.connect()
    (reading,) = await driver3.read(chiller.channels)
    await driver3.close()
    assert reading.quality is Quality.BAD
    assert (reading.reason or "").startswith("ILLEGAL FUNCTION (Modbus exception 1)")


async def test_device_limit_smaller_than_protocol_limit(tcp_server: ModbusSimServer) -> None:
    """Device 2 refuses reads longer than 64 registers; configured so, the plan respects it."""
    channels = [{"name": f"r{a}", "address": 100 + a, "unit": "1"} for a in range(100)]
    config = instrument(tcp_server, 2, channels, max_registers_per_request=64)
    driver = ModbusDriver(config, SystemClock())
    await driver.connect()
    readings = await driver.read(config.channels)
    await driver.close()
    assert all(r.quality is Quality.GOOD for r in readings)
    assert driver.requests_sent == 2


async def test_silent_device_costs_one_request_timeout(tcp_server: ModbusSimServer) -> None:
    config = instrument(tcp_server, 1, point_channels(LAB_BUS.devices[0]), request_timeout_s=0.2)
    driver = ModbusDriver(config, SystemClock())
    await driver.connect()
    tcp_server.faults.silent_device_ids = [1]
    before = tcp_server.requests_received
    started = time.monotonic()
    with pytest.raises(DriverTimeout, match=r"no reply within 0\.2 s"):
        await driver.read(config.channels)
    elapsed = time.monotonic() - started
    await driver.close()
    assert tcp_server.requests_received - before == 1  # the other requests were not sent
    assert 0.18 < elapsed < 1.0


async def test_gateway_and_unknown_device_id(tcp_server: ModbusSimServer) -> None:
    config = instrument(tcp_server, 42, [{"name": "x", "address": 0, "unit": "1"}])
    config = config.model_copy(update={"request_timeout_s": 0.2})
    driver = ModbusDriver(config, SystemClock())
    await driver.connect()
    with pytest.raises(DriverTimeout):
        await driver.read(config.channels)
    await driver.close()


async def test_bad_crc_and_garbage_are_protocol_errors(pty_server: ModbusSimServer) -> None:
    config = instrument(pty_server, 3, point_channels(LAB_BUS.devices[2], ["voltage"]))
    driver = ModbusDriver(config, SystemClock())
    await driver.connect()
    pty_server.faults.bad_crc = True
    with pytest.raises(ProtocolError, match="CRC"):
        await driver.read(config.channels)
    pty_server.faults.bad_crc = False
    pty_server.faults.garbage_rate = 1.0
    with pytest.raises(ProtocolError):
        await driver.read(config.channels)
    pty_server.faults.garbage_rate = 0.0
    readings = await driver.read(config.channels)
    await driver.close()
    assert readings[0].quality is Quality.GOOD
    assert readings[0].value == pytest.approx(10.0, abs=2e-5)


async def test_identification_and_describe(tcp_server: ModbusSimServer) -> None:
    config = instrument(
        tcp_server,
        3,
        [{"name": "v", "address": 0, "type": "float64", "table": "input", "unit": "V"}],
        identify=True,
    )
    driver = ModbusDriver(config, SystemClock())
    await driver.connect()
    identity = driver.describe()
    await driver.close()
    assert identity["manufacturer"] == "etalon"
    assert identity["model"] == "ZMON"
    assert identity["firmware"] == "3.0"
    assert identity["device_id"] == "3"
    assert identity["endpoint"] == f"tcp://127.0.0.1:{tcp_server.port}"


async def test_connect_failures_are_not_connected(tmp_path: Path) -> None:
    async with ModbusSimServer(LAB_BUS) as server:
        port = server.port
    refused = ModbusInstrument.model_validate(
        {
            "name": "gone",
            "protocol": "modbus",
            "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port},
            "channels": [{"name": "x", "address": 0, "unit": "1"}],
        }
    )
    driver = ModbusDriver(refused, SystemClock())
    with pytest.raises(NotConnected, match="connection refused"):
        await driver.connect()
    await driver.close()
    missing = ModbusInstrument.model_validate(
        {
            "name": "nowhere",
            "protocol": "modbus",
            "transport": {"kind": "rtu", "port": str(tmp_path / "ttyNONE")},
            "channels": [{"name": "x", "address": 0, "unit": "1"}],
        }
    )
    driver = ModbusDriver(missing, SystemClock())
    with pytest.raises(NotConnected, match="no such serial port"):
        await driver.connect()
    await driver.close()
    with pytest.raises(NotConnected, match="not connected"):
        await driver.read(missing.channels)


async def test_devices_on_one_line_share_one_connection(pty_server: ModbusSimServer) -> None:
    first = instrument(pty_server, 1, point_channels(LAB_BUS.devices[0], ["temperature"]))
    second = instrument(
        pty_server, 3, point_channels(LAB_BUS.devices[2], ["voltage"]), request_timeout_s=0.2
    )
    assert first.bus == second.bus == f"modbus:serial://{pty_server.pty_path}"
    one, two = ModbusDriver(first, SystemClock()), ModbusDriver(second, SystemClock())
    await one.connect()
    await two.connect()  # the port is opened exclusively: a second open would fail
    assert one._link is two._link
    assert (await one.read(first.channels))[0].quality is Quality.GOOD
    assert (await two.read(second.channels))[0].quality is Quality.GOOD
    pty_server.faults.silent_device_ids = [3]
    with pytest.raises(DriverTimeout) as failure:
        await two.read(second.channels)
    assert failure.value.instrument == second.name  # not the link's first user
    pty_server.faults.silent_device_ids = []
    await asyncio.sleep(2 * 0.2)  # the late-reply guard of two request timeouts
    await one.close()
    assert (await two.read(second.channels))[0].quality is Quality.GOOD  # still open for two
    await two.close()

    conflicting = first.model_copy(
        update={"transport": first.transport.model_copy(update={"baudrate": 9600})}
    )
    three = ModbusDriver(second, SystemClock())
    await three.connect()
    with pytest.raises(NotConnected, match="already open with other settings"):
        await ModbusDriver(conflicting, SystemClock()).connect()
    await three.close()


def test_nan_is_returned_for_the_pipeline_to_reject() -> None:
    # The pipeline turns non-finite values into BAD readings; the driver returns what it read.
    assert math.isnan(struct.unpack(">f", bytes.fromhex("7fc00000"))[0])


async def test_a_reading_is_stamped_at_its_own_exchange_not_its_wait_for_the_line(
    tcp_server: ModbusSimServer,
) -> None:
    """Devices sharing a line queue for it: a reading's timestamp is the mid-point of its own
    request and reply, not of the time it spent waiting behind the other devices."""
    devices = LAB_BUS.devices[:2]
    configs = [instrument(tcp_server, d.device_id, point_channels(d)[:1]) for d in devices]
    drivers = [ModbusDriver(c, SystemClock()) for c in configs]
    for driver in drivers:
        await driver.connect()
    tcp_server.faults.delay_s = 0.4  # every reply 400 ms late
    try:
        first, second = await asyncio.gather(
            *(d.read(c.channels) for d, c in zip(drivers, configs, strict=True))
        )
    finally:
        tcp_server.faults.delay_s = 0.0
        for driver in drivers:
            await driver.close()
    # The second request went out when the first's reply came: mid-points at least the 400 ms
    # delay apart, however busy the machine (a pause only lengthens the exchanges, and with them
    # the gap); stamped from the moment it asked for the line, half that plus the pauses. The
    # upper bound only catches the absurd (a reading stamped after a second exchange).
    gap_s = (second[0].ts_ns - first[0].ts_ns) / 1e9
    assert 0.39 <= gap_s <= 1.2, gap_s


async def test_a_channel_list_changed_in_place_is_read_as_its_new_channels() -> None:
    """The driver finds a due set's prepared requests by the list it is given; a list changed in
    place since is read as what it holds now, never with the requests of what it held."""
    register_map = all_types_map()
    async with ModbusSimServer(register_map) as server:
        config = instrument(server, 1, point_channels(register_map.devices[0]))
        named = {c.name: c for c in config.channels}
        driver = ModbusDriver(config, SystemClock())
        await driver.connect()
        try:
            due = [named["int16-ABCD"], named["uint32-CDAB"], named["string-BADC"]]
            first = await driver.read_rows(due)
            due[1] = named["float64-DCBA"]  # the same list object, another channel in it
            second = await driver.read_rows(due)
        finally:
            await driver.close()
    assert first[2] == [None] * 3 and second[2] == [None] * 3
    assert first[1] == [ALL_TYPES_VALUES["int16"], ALL_TYPES_VALUES["uint32"], "Zener Z10-1"]
    assert second[1] == [ALL_TYPES_VALUES["int16"], ALL_TYPES_VALUES["float64"], "Zener Z10-1"]
