"""What a simulated calibration bench is made of (see :mod:`drivers.sim.bench`): its
instruments, ports and error models as a config file or ``etalon sim bench``'s flags give them,
and the addresses it reports."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from core.errors import ConfigError
from core.models import FrozenModel, Name, repeated
from drivers.sim.bench_physics import (
    CalibratorModel,
    ErrorModel,
    FunctionName,
)

_IDN_FIELD = r"^[A-Za-z0-9_.\-]{1,32}$"
DEFAULT_PORT_BASE = 5030
"""``etalon sim bench`` listens on 5030 (calibrator), 5031… (DMMs), then the transmitters, and
the control channel on 5039, unless told otherwise."""


class CalibratorSim(FrozenModel):
    """The bench's calibrator."""

    name: Name = "calibrator"
    model: str = Field("MFC5500-SIM", pattern=_IDN_FIELD, description="Model in *IDN?.")
    serial: str = Field("CAL-0001", pattern=_IDN_FIELD)
    port: int = Field(0, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    pty: bool = Field(False, description="Also serve SCPI on a pseudo-terminal.")
    physics: CalibratorModel = Field(default_factory=CalibratorModel)


def _reference_errors() -> dict[FunctionName, ErrorModel]:
    return {
        "VOLT:DC": ErrorModel(offset=5e-8, gain_ppm=0.3, noise=5e-8),
        "VOLT:AC": ErrorModel(gain_ppm=20.0, noise=1e-6),
        "CURR:DC": ErrorModel(offset=1e-10, gain_ppm=3.0, noise=1e-10),
        "RES": ErrorModel(offset=1e-5, gain_ppm=0.8, noise=1e-5),
    }


def _uut_errors() -> dict[FunctionName, ErrorModel]:
    return {
        "VOLT:DC": ErrorModel(
            offset=15e-6, gain_ppm=20.0, quadratic=1e-7, noise=3e-6, drift_per_hour=2e-6
        ),
        "VOLT:AC": ErrorModel(offset=20e-6, gain_ppm=150.0, noise=1e-5),
        "CURR:DC": ErrorModel(offset=5e-9, gain_ppm=60.0, noise=2e-9),
        "RES": ErrorModel(offset=2e-3, gain_ppm=30.0, noise=1e-3),
    }


class DmmSim(FrozenModel):
    """A DMM on the bench: the reference meter or a unit under test."""

    name: Name
    role: Literal["reference", "uut"] = Field(
        "uut", description="reference: the bench's reference meter; uut: a unit under test."
    )
    model: str = Field("DMM6500-SIM", pattern=_IDN_FIELD)
    serial: str = Field(..., pattern=_IDN_FIELD)
    digits: int = Field(6, ge=3, le=9, description="Resolution: range / 10^digits (6 = 6½).")
    errors: dict[FunctionName, ErrorModel] = Field(
        default_factory=dict, description="Error model per function; missing: a perfect meter."
    )
    port: int = Field(0, ge=0, le=65535)
    pty: bool = False


def _default_dmms() -> list[DmmSim]:
    return [
        DmmSim(
            name="reference",
            role="reference",
            model="REF8508-SIM",
            serial="REF-0001",
            digits=8,
            errors=_reference_errors(),
        ),
        DmmSim(name="uut-dmm", model="DMM6500-SIM", serial="MY12345", errors=_uut_errors()),
    ]


class TransmitterSim(FrozenModel):
    """A Modbus transmitter on the bench (a unit under test), its input the calibrator's DC
    voltage output."""

    name: Name = "uut-xmtr"
    serial: str = Field("VTX-000042", pattern=_IDN_FIELD)
    map: str = Field("bench-transmitter", description="Register map: a shipped name or a file.")
    device_id: int = Field(1, ge=1, le=247, description="The map's device that is wired in.")
    port: int = Field(0, ge=0, le=65535)
    medium: Literal["tcp", "rtu"] = Field(
        "tcp", description="tcp: Modbus TCP on the port. rtu: Modbus RTU on a pseudo-terminal."
    )
    error: ErrorModel = Field(
        default_factory=lambda: ErrorModel(
            offset=0.5e-3, gain_ppm=300.0, quadratic=2e-5, noise=0.1e-3
        ),
        description="Error model of its voltage input.",
    )


class BenchConfig(FrozenModel):
    """A simulated bench: what ``etalon sim bench --config FILE`` reads (YAML or JSON)."""

    host: str = Field("127.0.0.1", min_length=1, description="Address every instrument listens on.")
    seed: int = 1
    calibrator: CalibratorSim = Field(default_factory=CalibratorSim)
    dmms: list[DmmSim] = Field(default_factory=_default_dmms)
    transmitters: list[TransmitterSim] = Field(default_factory=lambda: [TransmitterSim()])
    control_port: int = Field(0, ge=0, le=65535, description="Port of the control channel.")

    @model_validator(mode="after")
    def _unique_names(self) -> BenchConfig:
        names = [self.calibrator.name, *(d.name for d in self.dmms)]
        names += [t.name for t in self.transmitters]
        taken = repeated(["control", *names])  # the control channel's name is taken
        if taken:
            raise ValueError(f"instrument name {taken[0]!r} is used twice (or is 'control')")
        return self


def load_bench_config(path: Path) -> BenchConfig:
    """A bench description from a YAML or JSON file; raises ConfigError naming file, field and
    reason."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML or JSON: {exc}"]) from None
    if data is None:
        data = {}
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"{path}: {where}: {error['msg']}")
        raise ConfigError(problems) from None


# -- standalone: ``etalon sim bench`` --------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="bench description (YAML or JSON)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port-base",
        type=int,
        default=None,
        help=f"first TCP port (default {DEFAULT_PORT_BASE}; 0: free ports); the config's "
        "ports win where it gives them",
    )
    parser.add_argument("--pty", action="store_true", help="also serve SCPI on pseudo-terminals")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--tau", type=float, help="calibrator settling time constant, s")
    for flag, help_text in (
        ("--uut-offset", "UUT zero error, V (DC volts of every UUT)"),
        ("--uut-gain-ppm", "UUT gain error, ppm"),
        ("--uut-quadratic", "UUT non-linearity: k of k·x², 1/V"),
        ("--uut-noise", "UUT noise, V rms"),
        ("--uut-drift-per-hour", "UUT zero drift, V per hour"),
    ):
        parser.add_argument(flag, type=float, help=help_text)
    parser.add_argument("--addresses", type=Path, help="also write the addresses here (JSON)")


_UUT_FLAGS = {
    "uut_offset": "offset",
    "uut_gain_ppm": "gain_ppm",
    "uut_quadratic": "quadratic",
    "uut_noise": "noise",
    "uut_drift_per_hour": "drift_per_hour",
}


def config_from_arguments(args: argparse.Namespace) -> BenchConfig:
    """The bench a command line describes: the file (if any), then the flags over it; raises
    ConfigError naming the flag or the file's field."""
    config = load_bench_config(args.config) if args.config else BenchConfig()
    data = config.model_dump(mode="json")
    if args.host is not None:
        data["host"] = args.host
    if args.seed is not None:
        data["seed"] = args.seed
    # Without a file the bench has fixed ports (the example agent config's); with one, its
    # own (0: free); --port-base fills the ports a file leaves at 0.
    base = args.port_base
    if base is None:
        base = 0 if args.config is not None else DEFAULT_PORT_BASE
    if not 0 <= base <= 65535 - 10:
        raise ConfigError([f"--port-base {base}: must be 0 or a port ≤ 65525"])
    if base:
        data["calibrator"]["port"] = data["calibrator"]["port"] or base
        for i, dmm in enumerate(data["dmms"]):
            dmm["port"] = dmm["port"] or base + 1 + i
        for i, transmitter in enumerate(data["transmitters"]):
            transmitter["port"] = transmitter["port"] or base + 1 + len(data["dmms"]) + i
        data["control_port"] = data["control_port"] or base + 9
    if args.pty:
        data["calibrator"]["pty"] = True
        for dmm in data["dmms"]:
            dmm["pty"] = True
    if args.tau is not None:
        data["calibrator"]["physics"]["tau_s"] = args.tau
    for flag, field in _UUT_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if not math.isfinite(value):
            raise ConfigError([f"--{flag.replace('_', '-')}: {value} is not a finite number"])
        for dmm in data["dmms"]:
            if dmm["role"] == "uut":
                dmm["errors"].setdefault("VOLT:DC", {})[field] = value
        for transmitter in data["transmitters"]:
            transmitter["error"][field] = value
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"command line: {where}: {error['msg']}")
        raise ConfigError(problems) from None


def describe_addresses(addresses: dict[str, dict[str, Any]]) -> list[str]:
    """One line per address, as ``etalon sim bench`` prints them."""
    lines = []
    for name, where in addresses.items():
        if where["protocol"] == "visa":
            lines.append(f"{name} ({where['role']}): {where['resource']}")
            if where.get("asrl_resource"):
                lines.append(f"{name} ({where['role']}): {where['asrl_resource']}")
        elif where["kind"] == "tcp":
            lines.append(
                f"{name} ({where['role']}): modbus tcp {where['host']}:{where['port']} "
                f"device {where['device_id']}"
            )
        else:
            lines.append(
                f"{name} ({where['role']}): modbus rtu {where['pty']} device {where['device_id']}"
            )
    return lines
