"""Writes through the OPC UA driver to the simulated server: values sent as the node's own data
type, StatusCodes checked, limits and types refused before anything is sent, read-back, a frozen
server, the safe state."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from core.errors import (
    DriverTimeout,
    LimitExceeded,
    WriteInterrupted,
    WriteRefused,
    WriteRejected,
)
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver
from drivers.setpoints import records_of
from drivers.sim.opcua_server import OpcUaSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

Config = Callable[..., OpcUaInstrument]
Build = Callable[[OpcUaInstrument], OpcUaDriver]

CHANNELS = [{"name": "setpoint-read", "node": "ns=2;s=Source.Setpoint"}]
TARGETS: list[dict[str, Any]] = [
    {
        "name": "setpoint",
        "node": "ns=2;s=Source.Setpoint",
        "unit": "V",
        "min": -20,
        "max": 20,
        "verify": True,
    },
    {"name": "output", "browse_path": ["Source", "Output"], "verify": True},
    {"name": "range", "node": "ns=2;s=Source.Range", "allowed": [1, 10, 100]},
    {"name": "mode", "node": "ns=2;s=Source.Mode", "allowed": ["VOLT:DC", "RES"]},
    {
        "name": "gain",
        "node": "ns=2;s=Source.Gain",
        "data_type": "Float",
        "min": 0.5,
        "max": 2,
        "verify": True,
    },
]


def source(ua_config: Config, endpoint: str, **overrides: Any) -> OpcUaInstrument:
    return ua_config(
        endpoint,
        CHANNELS,
        name="source",
        targets=overrides.pop("targets", TARGETS),
        safe_state=overrides.pop("safe_state", [{"target": "output", "value": False}]),
        **overrides,
    )


async def value_of(ua_server: OpcUaSimulator, path: str) -> Any:
    return await ua_server.nodes[path].read_value()


async def test_values_go_as_the_nodes_own_data_types(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    driver = ua_drivers(source(ua_config, ua_server.endpoint))
    await driver.connect()
    records = await driver.write(
        {"setpoint": 10, "output": True, "range": 10, "mode": "res", "gain": 1.1}
    )
    assert [r.sent for r in records] == [
        ("Write ns=2;s=Source.Setpoint Double 10.0",),
        ("Write ns=2;s=Source.Output Boolean True",),
        ("Write ns=2;s=Source.Range UInt16 10",),
        ("Write ns=2;s=Source.Mode String 'RES'",),
        ("Write ns=2;s=Source.Gain Float 1.1",),
    ]
    assert all(r.confirmed[0] == "StatusCode Good" for r in records)
    assert records[0].read_back == 10.0 and records[1].read_back is True
    assert records[4].read_back == pytest.approx(1.1, rel=1e-7)  # as a float32 holds it
    assert await value_of(ua_server, "Source.Setpoint") == 10.0
    assert await value_of(ua_server, "Source.Range") == 10
    assert await value_of(ua_server, "Source.Mode") == "RES"
    (reading,) = await driver.read(driver.config.channels)
    assert reading.value == 10.0 and reading.unit == "V"


async def test_out_of_limit_and_unfitting_writes_never_reach_the_server(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    wide = [{"name": "range", "node": "ns=2;s=Source.Range", "min": 0, "max": 100_000}]
    driver = ua_drivers(
        source(ua_config, ua_server.endpoint, targets=TARGETS[:1] + wide, safe_state=[])
    )
    await driver.connect()
    writes = len(ua_server.writes)
    with pytest.raises(LimitExceeded, match="above the limit of 20 V"):
        await driver.write({"setpoint": 1000})
    with pytest.raises(WriteRefused, match="does not fit the node's UInt16") as unfit:
        await driver.write({"setpoint": 1.0, "range": 70_000})
    assert unfit.value.code == "unusable"
    with pytest.raises(WriteRefused, match="not a whole number") as fraction:
        await driver.write({"range": 2.5})
    assert fraction.value.code == "not_integer"
    assert len(ua_server.writes) == writes


async def test_a_bad_status_code_is_a_rejection_naming_it(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    targets = [
        {"name": "setpoint", "node": "ns=2;s=Source.Setpoint", "min": -30, "max": 30},
        {
            "name": "zener",
            "node": "ns=2;s=ReferenceStandards.Zener10V.Voltage",
            "min": 0,
            "max": 20,
        },
    ]
    driver = ua_drivers(source(ua_config, ua_server.endpoint, targets=targets, safe_state=[]))
    await driver.connect()
    await driver.write({"setpoint": 5})
    with pytest.raises(WriteRejected) as beyond:
        await driver.write({"setpoint": 25})  # the bench allows 30, the device's range is 20
    assert beyond.value.instrument_message == "BadOutOfRange"
    assert records_of(beyond.value)[0].confirmed == ("StatusCode BadOutOfRange",)
    assert await value_of(ua_server, "Source.Setpoint") == 5.0
    assert ua_server.writes[-1] == ("Source.Setpoint", 25.0, "BadOutOfRange")
    with pytest.raises(WriteRejected, match="BadUserAccessDenied"):
        await driver.write({"zener": 10})  # a measured value, not writable


async def test_targets_that_do_not_fit_their_node_are_refused_before_sending(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    targets = [
        {
            "name": "typed",
            "node": "ns=2;s=Source.Setpoint",
            "data_type": "Float",
            "min": 0,
            "max": 1,
        },
        {"name": "words", "node": "ns=2;s=Source.Setpoint", "allowed": ["A", "B"]},
        {"name": "missing", "node": "ns=2;s=Source.Nothing", "min": 0, "max": 1},
        {"name": "lost", "browse_path": ["Source", "Nowhere"], "min": 0, "max": 1},
    ]
    driver = ua_drivers(source(ua_config, ua_server.endpoint, targets=targets, safe_state=[]))
    await driver.connect()
    writes = len(ua_server.writes)
    expected = {
        "typed": "the node's DataType is Double, the config says Float",
        "words": "the node's DataType is Double, which takes no choice value",
        "missing": "node not readable (BadNodeIdUnknown)",
        "lost": "browse path Source/Nowhere not found",
    }
    values = {"typed": 0.5, "words": "A", "missing": 0.5, "lost": 0.5}
    for name, message in expected.items():
        with pytest.raises(WriteRefused, match=re.escape(message)):
            await driver.write({name: values[name]})
    assert len(ua_server.writes) == writes


async def test_a_frozen_server_interrupts_the_write(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    driver = ua_drivers(source(ua_config, ua_server.endpoint, timeout_s=0.5))
    await driver.connect()
    ua_server.freeze()
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(WriteInterrupted) as interrupted:
            await driver.write({"setpoint": 1.5})
        assert loop.time() - start < 2.0
    finally:
        ua_server.thaw()
    assert isinstance(interrupted.value.__cause__, DriverTimeout)


async def test_safe_state_and_identify(
    ua_server: OpcUaSimulator, ua_config: Config, ua_drivers: Build
) -> None:
    driver = ua_drivers(source(ua_config, ua_server.endpoint))
    await driver.connect()
    await driver.write({"output": True})
    (record,) = await driver.safe_state()
    assert record.purpose == "safe_state" and record.read_back is False
    assert await value_of(ua_server, "Source.Output") is False
    assert (await driver.identify())["model"] == driver.describe()["model"]
    await driver.close()
    (again,) = await driver.safe_state()  # reconnects first
    assert again.ok
    assert ua_server.writes[-1] == ("Source.Output", False, "Good")
