"""What a Modbus reading must be: the simulated device's noise-free value at the reading's
timestamp, within the model's noise and the register's quantisation."""

from __future__ import annotations

from typing import Any

from core.clock import SystemClock
from drivers.modbus.config import ModbusInstrument
from drivers.reading import Quality, Reading
from drivers.sim.modbus_server import SimDevice, map_for_instrument

TOLERANCE = {"°C": 0.2, "%rh": 2.0, "hPa": 0.4, "V": 3e-6, "L/min": 2.0}
"""How far a live reading may be from the model's value (noise plus quantisation), by unit."""


def scaled(reading: Reading, channel: Any) -> Any:
    """The reading's value after the channel's scale and offset, as the agent's pipeline does."""
    value = reading.value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and (channel.scale != 1.0 or channel.offset != 0.0):
        return value * channel.scale + channel.offset  # type: ignore[operator]
    return value


def check_modbus(config: ModbusInstrument, readings: list[Reading]) -> None:
    """Every reading is GOOD and equals the value of the shipped map's point it reads."""
    register_map = map_for_instrument(config)
    assert register_map.description != f"derived from {config.name}", "must read a shipped map"
    (spec,) = [d for d in register_map.devices if d.device_id == config.device_id]
    device = SimDevice(spec, SystemClock())
    points = {(p.table, p.address, p.value_type, p.bit): p for p in spec.points}
    for channel, reading in zip(config.channels, readings, strict=True):
        assert reading.quality is Quality.GOOD, reading
        point = points[(channel.table, channel.address, channel.value_type, channel.bit)]
        truth = device.true_value(point, reading.ts_ns)
        value = scaled(reading, channel)
        if point.value_type in ("bool", "bit"):
            assert value == (truth >= 0.5 if isinstance(truth, float) else truth)
        elif isinstance(truth, float):
            rounding = 2**-23 if point.value_type == "float32" else 2**-52  # the float's own
            tolerance = TOLERANCE.get(channel.unit, 0.0) + abs(truth) * rounding
            if point.value_type not in ("float32", "float64"):
                tolerance += abs(channel.scale) / 2  # an integer register's quantum
            if channel.unit == "V":  # 6 σ of the voltage model's own noise
                tolerance += 6e-6 * getattr(spec.model, "noise_uv", 0.0)
            assert abs(value - truth) <= tolerance, (channel.name, value, truth)
        else:
            assert value == truth, (channel.name, value, truth)
