"""Modbus instrument configs: what is refused, with which reason, and what is derived."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drivers.modbus.config import ModbusInstrument


def config(channel: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": "dev",
        "protocol": "modbus",
        "transport": {"kind": "tcp", "host": "127.0.0.1"},
        "channels": [channel or {"name": "x", "address": 0, "unit": "1"}],
        **extra,
    }


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ({"table": "coil", "type": "float32"}, "type must be bool"),
        ({"type": "bit"}, "type: bit needs 'bit'"),
        ({"type": "uint16", "bit": 3}, "type: bit needs 'bit'"),
        ({"type": "string"}, "type: string needs 'length'"),
        ({"type": "string", "length": 4, "encoding": "klingon"}, "unknown encoding"),
        ({"address": 65535, "type": "float32"}, "runs past 65535"),
        ({"address": 70000}, "less than or equal to 65535"),
        ({"type": "float128"}, "Input should be"),
        ({"order": "BACD"}, "Input should be"),
        ({"table": "holdings"}, "Input should be"),
        ({"adress": 3}, "Extra inputs are not permitted"),
    ],
)
def test_channel_errors(channel: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModbusInstrument.model_validate(config({"name": "x", "address": 0, "unit": "1"} | channel))


def test_request_limits_and_device_ids() -> None:
    long_string = {"name": "s", "address": 0, "type": "string", "length": 200, "unit": ""}
    with pytest.raises(ValidationError, match="more than one request may read"):
        ModbusInstrument.model_validate(config(long_string, max_registers_per_request=64))
    with pytest.raises(ValidationError, match="less than or equal to 125"):
        ModbusInstrument.model_validate(config(max_registers_per_request=126))
    rtu = {"kind": "rtu", "port": "/dev/ttyUSB0"}
    with pytest.raises(ValidationError, match="RTU device id is 1-247"):
        ModbusInstrument.model_validate(config(transport=rtu, device_id=0))
    assert ModbusInstrument.model_validate(config(device_id=0)).device_id == 0  # TCP: any unit


def test_defaults_and_derived_bus() -> None:
    tcp = ModbusInstrument.model_validate(config())
    assert tcp.bus is None
    assert tcp.channels[0].value_type == "uint16"
    assert tcp.timeout_of_request() == tcp.timeout_s
    rtu = ModbusInstrument.model_validate(
        config(transport={"kind": "rtu", "port": "/dev/ttyUSB0", "baudrate": 9600})
    )
    assert rtu.bus == "modbus:serial:///dev/ttyUSB0"
    assert rtu.transport.parity == "E"  # the Modbus serial default, 8E1
    assert rtu.transport.frame_gap_s() == pytest.approx(3.5 * 11 / 9600)
    fast = ModbusInstrument.model_validate(
        config(transport={"kind": "rtu", "port": "/dev/ttyUSB0", "baudrate": 115200})
    )
    assert fast.transport.frame_gap_s() == pytest.approx(0.00175)
    named = ModbusInstrument.model_validate(
        config(transport={"kind": "rtu", "port": "/dev/ttyUSB0"}, bus="line-1")
    )
    assert named.bus == "line-1"
    over_tcp = ModbusInstrument.model_validate(
        config(transport={"kind": "rtu_over_tcp", "host": "10.0.0.5", "port": 4001})
    )
    assert over_tcp.bus == "modbus:rtu+tcp://10.0.0.5:4001"
    coil = ModbusInstrument.model_validate(
        config({"name": "c", "table": "coil", "address": 3, "unit": "1"})
    )
    assert coil.channels[0].value_type == "bool"


def test_channel_order_overrides_the_device() -> None:
    instrument = ModbusInstrument.model_validate(
        config(
            {"name": "f", "address": 0, "type": "float32", "order": "DCBA", "unit": "V"},
            order="CDAB",
        )
    )
    assert instrument.order_of(instrument.channels[0]) == "DCBA"
