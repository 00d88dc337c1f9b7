"""The register maps of the Modbus simulator: devices by id, each with a physical model and
points (where a value lives, its type and byte order, and a model quantity or a constant), loaded
from YAML (shipped in ``drivers/sim/maps/`` or a file)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import Field, model_validator

from core.models import FrozenModel
from drivers.modbus.registers import ByteWordOrder, ModbusChannel, Table
from drivers.sim.models import QUANTITIES, ModelParams

# -- register map ------------------------------------------------------------------------------


class MapPoint(ModbusChannel):
    """One value of a simulated device: a model quantity or a constant, encoded as a driver
    channel with the same fields decodes it (``value = raw · scale + offset``)."""

    unit: str = Field("", max_length=32)
    quantity: str | None = Field(None, description="Quantity of the device's model.")
    value: bool | int | float | str | None = Field(None, description="A constant value.")
    writable: bool = Field(False, description="Takes writes; 'value' is its initial value.")
    write_min: float | None = Field(None, description="Writes below this: ILLEGAL DATA VALUE.")
    write_max: float | None = Field(None, description="Writes above this: ILLEGAL DATA VALUE.")

    @model_validator(mode="after")
    def _one_source(self) -> MapPoint:
        if (self.quantity is None) == (self.value is None):
            raise ValueError("a point has either 'quantity' or 'value'")
        if self.writable and (
            self.value is None
            or self.table not in ("coil", "holding")
            or self.value_type in ("bit", "string")
        ):
            raise ValueError(
                "a writable point is a coil or holding register value (not a bit or a string) "
                "with an initial 'value'"
            )
        return self


class AddressRange(FrozenModel):
    """Addresses [start, end) of one table."""

    table: Table
    start: int = Field(..., ge=0, le=65535)
    end: int = Field(..., ge=1, le=65536)


class Identity(FrozenModel):
    """What FC 43/14 (read device identification) answers."""

    vendor: str = "etalon"
    product_code: str = "SIM"
    revision: str = "1.0"
    model_name: str = ""
    serial: str = ""


class MapDevice(FrozenModel):
    """One simulated device on the server."""

    device_id: int = Field(..., ge=1, le=255)
    order: ByteWordOrder = "ABCD"
    model: ModelParams | None = None
    identity: Identity = Field(default_factory=Identity)
    max_registers_per_request: int = Field(125, ge=1, le=125)
    max_bits_per_request: int = Field(2000, ge=1, le=2000)
    tables: list[Table] | None = Field(
        None, description="Tables the device implements; default: those its points use."
    )
    illegal: list[AddressRange] = Field(
        default_factory=list,
        description="Addresses that answer ILLEGAL DATA ADDRESS (holes in the device's map).",
    )
    points: list[MapPoint]

    @model_validator(mode="after")
    def _quantities_exist(self) -> MapDevice:
        known = QUANTITIES[self.model.kind] if self.model else {}
        for point in self.points:
            if point.quantity is not None and point.quantity not in known:
                kind = self.model.kind if self.model else "none"
                raise ValueError(f"point {point.name!r}: model {kind!r} has no {point.quantity!r}")
        return self


class RegisterMap(FrozenModel):
    """The devices a simulator serves."""

    description: str = ""
    devices: list[MapDevice]

    @model_validator(mode="after")
    def _unique_ids(self) -> RegisterMap:
        ids = [d.device_id for d in self.devices]
        if len(set(ids)) != len(ids):
            raise ValueError("device ids must be unique")
        return self


MAPS_PACKAGE = "drivers.sim.maps"


def shipped_maps() -> list[str]:
    """Names of the register maps shipped with the package."""
    folder = resources.files(MAPS_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_register_map(name_or_path: str | Path) -> RegisterMap:
    """A shipped map by name (``room-climate``) or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files(MAPS_PACKAGE) / f"{name_or_path}.yaml"
        if not resource.is_file():
            raise FileNotFoundError(
                f"no register map {name_or_path!r} (shipped: {', '.join(shipped_maps())})"
            )
        text = resource.read_text(encoding="utf-8")
    return RegisterMap.model_validate(yaml.safe_load(text))
