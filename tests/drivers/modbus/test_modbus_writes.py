"""Writes through the Modbus driver to the simulated transmitter, over TCP and RTU on a pty:
FC 5/6/15/16 with the read codec's types and orders, read-back, limits refused before anything
is sent, exception responses, silence, the safe state, and FC 43 identification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.clock import SystemClock
from core.errors import (
    DriverTimeout,
    LimitExceeded,
    WriteInterrupted,
    WriteRejected,
)
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.setpoints import records_of
from drivers.sim.modbus_server import ModbusSimServer, SimDevice, load_register_map
from tests.drivers.modbus.test_driver import transport_of

MAP = load_register_map("bench-transmitter")

TARGETS: list[dict[str, Any]] = [
    {"name": "damping", "address": 200, "type": "float32", "unit": "s", "min": 0, "max": 30},
    {"name": "range_code", "address": 202, "min": 0, "max": 3},
    {
        "name": "user_offset",
        "address": 204,
        "type": "float32",
        "order": "CDAB",
        "unit": "V",
        "min": -0.5,
        "max": 0.5,
        "verify": True,
    },
    {"name": "averaging", "address": 206, "type": "uint32", "min": 1, "max": 100},
    {"name": "trim", "table": "coil", "address": 0},
    {"name": "relay", "table": "coil", "address": 1, "function": 15, "verify": True},
    {"name": "range_fc16", "address": 202, "function": 16, "min": 0, "max": 9},
    {"name": "status", "address": 4, "min": 0, "max": 1},  # an input register's address
]


def transmitter(server: ModbusSimServer, **extra: Any) -> ModbusInstrument:
    return ModbusInstrument.model_validate(
        {
            "name": "xmtr",
            "protocol": "modbus",
            "transport": transport_of(server),
            "device_id": 1,
            "timeout_s": 2,
            "request_timeout_s": 0.4,
            "identify": True,
            "identity_serial_object": 0x80,
            "channels": [
                {"name": "v", "table": "input", "address": 0, "type": "float32", "unit": "V"},
                {"name": "damping-read", "address": 200, "type": "float32", "unit": "s"},
                {
                    "name": "offset-read",
                    "address": 204,
                    "type": "float32",
                    "order": "CDAB",
                    "unit": "V",
                },
                {"name": "averaging-read", "address": 206, "type": "uint32", "unit": "1"},
            ],
            "targets": TARGETS,
            "safe_state": [
                {"target": "trim", "value": False},
                {"target": "range_code", "value": 0},
            ],
        }
        | extra
    )


@pytest.fixture(params=["tcp", "rtu"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[ModbusSimServer]:
    if request.param == "tcp":
        simulator = ModbusSimServer(MAP)
    else:
        simulator = ModbusSimServer(MAP, medium="pty", framing="rtu")
    async with simulator:
        yield simulator


@pytest.fixture
async def driver(server: ModbusSimServer) -> AsyncIterator[ModbusDriver]:
    built = ModbusDriver(transmitter(server), SystemClock())
    await built.connect()
    yield built
    await built.close()


def device(server: ModbusSimServer) -> SimDevice:
    return server.devices[1]


async def test_each_function_code_with_the_read_codec(
    server: ModbusSimServer, driver: ModbusDriver
) -> None:
    records = await driver.write(
        {
            "damping": 2.5,
            "range_code": 3,
            "user_offset": -0.125,
            "averaging": 70000 // 1000,
            "trim": True,
            "relay": True,
        }
    )
    assert [r.sent[0].split(" ")[0] for r in records] == [
        "FC16",
        "FC6",
        "FC16",
        "FC16",
        "FC5",
        "FC15",
    ]
    assert records[0].sent == ("FC16 device 1 holding 200+2 = 0x4020 0x0000 (float32 2.5, ABCD)",)
    assert records[2].sent == (
        "FC16 device 1 holding 204+2 = 0x0000 0xBE00 (float32 -0.125, CDAB)",
    )
    assert records[2].read_back == -0.125 and records[5].read_back is True
    assert [f for f, _, _ in device(server).writes] == [16, 6, 16, 16, 5, 15]
    stored = device(server).stored
    assert (stored["damping-s"], stored["range-code"], stored["user-offset"]) == (2.5, 3, -0.125)
    assert (stored["averaging"], stored["trim-enable"], stored["alarm-relay"]) == (70, True, True)
    # Read back through channels of the same types and orders.
    readings = await driver.read(driver.config.channels[1:])
    assert [r.value for r in readings] == [2.5, -0.125, 70]


async def test_fc16_for_a_single_register_when_a_device_asks_for_it(
    server: ModbusSimServer, driver: ModbusDriver
) -> None:
    (record,) = await driver.write({"range_fc16": 1})
    assert record.sent == ("FC16 device 1 holding 202 = 0x0001 (uint16 1, ABCD)",)
    assert device(server).writes == [(16, 202, [1])]


async def test_scaled_targets_write_the_register_value(server: ModbusSimServer) -> None:
    scaled = [
        {"name": "avg_k", "address": 206, "type": "uint32", "scale": 1000, "min": 0, "max": 100_000}
    ]
    driver = ModbusDriver(transmitter(server, targets=scaled, safe_state=[]), SystemClock())
    await driver.connect()
    try:
        (record,) = await driver.write({"avg_k": 42_000})
    finally:
        await driver.close()
    assert "uint32 42" in record.sent[0]
    assert device(server).stored["averaging"] == 42


async def test_out_of_limit_writes_never_reach_the_device(
    server: ModbusSimServer, driver: ModbusDriver
) -> None:
    received = server.requests_received
    with pytest.raises(LimitExceeded) as refused:
        await driver.write({"damping": 31})
    assert refused.value.limit == "max 30 s"
    with pytest.raises(LimitExceeded):
        await driver.write({"trim": True, "range_code": 4})
    assert server.requests_received == received
    assert device(server).writes == []


async def test_exception_responses_are_rejections_naming_the_exception(
    server: ModbusSimServer, driver: ModbusDriver
) -> None:
    # The device itself takes averaging ≤ 1000 … the bench allows 100; a status register is
    # read-only; a wider bench limit than the device's shows the device's refusal.
    with pytest.raises(WriteRejected) as address:
        await driver.write({"status": 1})
    assert address.value.instrument_message == "ILLEGAL DATA ADDRESS"
    assert "FC 6 at holding 4 refused: ILLEGAL DATA ADDRESS (Modbus exception 2)" in str(
        address.value
    )
    wide = [{"name": "range_code", "address": 202, "min": 0, "max": 9}]
    lenient = ModbusDriver(transmitter(server, targets=wide, safe_state=[]), SystemClock())
    await lenient.connect()
    try:
        with pytest.raises(WriteRejected) as value:
            await lenient.write({"range_code": 7})
    finally:
        await lenient.close()
    assert value.value.instrument_message == "ILLEGAL DATA VALUE"
    (record,) = records_of(value.value)
    assert record.confirmed == ("exception response: ILLEGAL DATA VALUE (Modbus exception 3)",)
    assert device(server).stored["range-code"] == 2


async def test_a_silent_device_interrupts_the_write(
    server: ModbusSimServer, driver: ModbusDriver
) -> None:
    server.faults.silent_device_ids = [1]
    with pytest.raises(WriteInterrupted) as interrupted:
        await driver.write({"range_code": 1})
    assert isinstance(interrupted.value.__cause__, DriverTimeout)
    assert records_of(interrupted.value)[0].sent  # it went out; whether it took is unknown
    assert device(server).writes == []


async def test_safe_state_writes_every_declared_value(
    server: ModbusSimServer, driver: ModbusDriver
) -> None:
    await driver.write({"trim": True, "range_code": 3})
    records = await driver.safe_state()
    assert [r.target for r in records] == ["trim", "range_code"]
    assert device(server).stored["trim-enable"] is False
    assert device(server).stored["range-code"] == 0


async def test_identify_reads_fc43_and_the_serial_object_now(
    server: ModbusSimServer, driver: ModbusDriver
) -> None:
    identity = driver.describe()
    assert (identity["manufacturer"], identity["model"], identity["serial"]) == (
        "etalon",
        "VTX-10",
        "VTX-000042",
    )
    device(server).set_serial("VTX-000099")
    assert (await driver.identify())["serial"] == "VTX-000099"
    server.faults.silent_device_ids = [1]
    with pytest.raises(DriverTimeout):
        await driver.identify()


async def test_fc43_categories_and_individual_objects(server: ModbusSimServer) -> None:
    pdu = device(server).handle
    faults = server.faults
    basic = pdu(bytes((0x2B, 0x0E, 1, 0)), faults)
    assert basic[6] == 3  # objects 0-2
    regular = pdu(bytes((0x2B, 0x0E, 2, 0)), faults)
    assert regular[6] == 4 and b"VTX-10 DC voltage transmitter" in regular
    extended = pdu(bytes((0x2B, 0x0E, 3, 0)), faults)
    assert extended[6] == 5 and extended.endswith(b"\x80\x0aVTX-000042")
    single = pdu(bytes((0x2B, 0x0E, 4, 0x80)), faults)
    assert single[6] == 1 and single.endswith(b"VTX-000042")
    assert pdu(bytes((0x2B, 0x0E, 4, 0x81)), faults) == bytes((0xAB, 2))
    assert pdu(bytes((0x2B, 0x0E, 9, 0)), faults) == bytes((0xAB, 3))


def test_the_simulator_takes_only_whole_writable_points() -> None:
    sim = SimDevice(MAP.devices[0], SystemClock())
    faults = ModbusSimServer(MAP).faults
    half = sim.handle(bytes((6,)) + (200).to_bytes(2, "big") + (1).to_bytes(2, "big"), faults)
    assert half == bytes((0x86, 2))  # one word of a float32
    coil_bad = sim.handle(bytes((5, 0, 0, 0x12, 0x34)), faults)
    assert coil_bad == bytes((0x85, 3))
    short = sim.handle(bytes((16, 0, 200, 0, 2, 3, 0, 0, 0)), faults)
    assert short == bytes((0x90, 3))  # byte count does not match
    assert sim.writes == []
