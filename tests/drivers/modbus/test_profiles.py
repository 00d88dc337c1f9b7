"""Modbus device profiles: every shipped profile reads its simulated device end to end; how an
instrument config and its profile combine; profiles and overrides that are refused, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.configs import check_main, load_any
from core.clock import SystemClock
from core.config_loader import load_config
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.profiles import (
    ProfileError,
    load_profile,
    merge_channels,
    shipped_profiles,
)
from drivers.registry import DRIVERS
from drivers.sim.modbus_server import ModbusSimServer, load_register_map, map_for_instrument
from edge_agent.config import AgentConfig
from tests.drivers.modbus.truth import check_modbus

REPO = Path(__file__).resolve().parents[3]


def instrument(**fields: Any) -> ModbusInstrument:
    """An instrument on a TCP gateway, with the fields given."""
    data: dict[str, Any] = {
        "name": "dev",
        "protocol": "modbus",
        "transport": {"kind": "tcp", "host": "127.0.0.1", "port": 5020},
        **fields,
    }
    return ModbusInstrument.model_validate(data)


# -- the meta-test -----------------------------------------------------------------------------


def test_the_shipped_profiles_are_the_simulated_devices() -> None:
    assert shipped_profiles() == [
        "all-types",
        "chiller-controller",
        "thp-transmitter",
        "voltage-transmitter",
        "zener-monitor",
    ]
    for name in shipped_profiles():
        assert load_profile(name).name == name


@pytest.mark.parametrize("name", shipped_profiles())
async def test_every_shipped_profile_reads_its_simulator(name: str) -> None:
    """Each shipped profile, used as is, identifies its simulated device and reads every one of
    its channels with the model's value, through the registry's simulate hook (a real TCP
    server serving a shipped register map, not one derived from the config)."""
    profile = load_profile(name)
    config = instrument(profile=name)
    assert [c.name for c in config.channels] == profile.channel_names()
    assert config.device_id == profile.device_id
    async with DRIVERS["modbus"].simulate(config) as simulated:
        driver = ModbusDriver(simulated, SystemClock())
        try:
            await driver.connect()
            identity = driver.describe()
            readings = await driver.read(simulated.channels)
        finally:
            await driver.close()
    check_modbus(simulated, readings)
    register_map = map_for_instrument(simulated)
    (device,) = [d for d in register_map.devices if d.device_id == simulated.device_id]
    # The profile's units are the device's (where its map says one), and so are the readings'.
    points = {(p.table, p.address, p.value_type, p.bit): p for p in device.points}
    for channel, reading in zip(simulated.channels, readings, strict=True):
        point = points[(channel.table, channel.address, channel.value_type, channel.bit)]
        assert reading.unit == channel.unit
        assert channel.unit == point.unit or not point.unit, (name, channel.name, point.unit)
    assert identity["profile"] == name
    if profile.identify:
        assert identity["manufacturer"] == device.identity.vendor
        assert identity["model"] == device.identity.product_code
        assert identity["firmware"] == device.identity.revision
    if "serial" in profile.identity_registers or profile.identity_serial_object is not None:
        assert identity["serial"] == device.identity.serial


async def test_a_profile_reads_over_rtu_on_a_pty_as_over_tcp() -> None:
    config = ModbusInstrument.model_validate(
        {
            "name": "room",
            "protocol": "modbus",
            "transport": {"kind": "rtu", "port": "/dev/null", "parity": "N"},
            "profile": "thp-transmitter",
        }
    )
    assert config.timeout_s == 1 and config.request_timeout_s == 0.3  # the profile's timeouts
    async with DRIVERS["modbus"].simulate(config) as simulated:
        driver = ModbusDriver(simulated, SystemClock())
        try:
            await driver.connect()
            assert driver.describe()["serial"] == "THP-000123"
            check_modbus(simulated, await driver.read(simulated.channels))
        finally:
            await driver.close()


async def test_an_identity_register_the_device_refuses_is_left_out() -> None:
    config = instrument(
        profile="zener-monitor",
        transport={"kind": "tcp", "host": "127.0.0.1", "port": 1},
        identity_registers={"hardware": {"table": "input", "address": 90, "type": "uint16"}},
    )
    lab_bus = load_register_map("lab-bus")
    async with ModbusSimServer(lab_bus) as server:
        pointed = config.model_copy(
            update={"transport": config.transport.model_copy(update={"port": server.port})}
        )
        server.faults.exception_at = [{"table": "input", "address": 90, "code": 2}]
        driver = ModbusDriver(pointed, SystemClock())
        try:
            await driver.connect()
            identity = driver.describe()
        finally:
            await driver.close()
    assert identity["serial"] == "Z10-01"  # the profile's register, still read
    assert "hardware" not in identity
    assert identity["model"] == "ZMON"  # FC 43 answered


# -- how a config and its profile combine ------------------------------------------------------


def test_device_settings_come_from_the_profile_unless_the_instrument_gives_them() -> None:
    chiller = load_profile("chiller-controller")
    inherited = instrument(profile="chiller-controller")
    assert (inherited.device_id, inherited.order, inherited.function_codes) == (
        2,
        "CDAB",
        [1, 3, 4],
    )
    assert inherited.max_registers_per_request == 64
    assert (inherited.timeout_s, inherited.request_timeout_s) == (2, 0.5)
    assert inherited.identify is True
    assert inherited.identity_registers == chiller.identity_registers
    own = instrument(
        profile="chiller-controller",
        device_id=12,
        max_registers_per_request=32,
        request_timeout_s=0.2,
        identity_registers={"model": {"table": "holding", "address": 110, "type": "uint16"}},
    )
    assert (own.device_id, own.max_registers_per_request, own.request_timeout_s) == (12, 32, 0.2)
    assert own.order == "CDAB"  # not given: still the profile's
    assert set(own.identity_registers) == {"serial", "model"}
    assert load_profile("chiller-controller") == chiller  # the shipped profile is untouched


def test_selection_adjustment_and_own_channels() -> None:
    config = instrument(
        profile="chiller-controller",
        only=["setpoint", "flow", "supply-temperature"],
        channels=[
            {"name": "flow", "interval_s": 2, "tags": {"loop": "A"}},
            {"name": "setpoint", "uncertainty": {"absolute": 0.05}},
            {"name": "valve", "table": "holding", "address": 30, "unit": "%"},
        ],
    )
    names = [c.name for c in config.channels]
    assert names == ["supply-temperature", "flow", "setpoint", "valve"]  # profile order, then own
    flow = config.channels[1]
    assert (flow.interval_s, flow.tags, flow.address, flow.unit) == (2, {"loop": "A"}, 4, "L/min")
    assert config.channels[2].uncertainty is not None
    assert config.channels[2].interval_s == 60  # the profile's default interval
    disabled = instrument(profile="zener-monitor", disable=["samples", "offset"])
    assert [c.name for c in disabled.channels] == ["voltage", "oven-temperature"]


def test_an_adjustment_may_repeat_the_profiles_fields_and_a_dump_validates_to_itself() -> None:
    repeated = instrument(
        profile="chiller-controller",
        channels=[{"name": "flow", "table": "holding", "address": 4, "type": "float32"}],
    )
    assert repeated == instrument(profile="chiller-controller")
    config = instrument(
        profile="thp-transmitter",
        only=["temperature", "sensor-ok"],
        channels=[
            {"name": "temperature", "tags": {"room": "A"}},
            {"name": "extra", "address": 7, "unit": "1"},
        ],
    )
    assert ModbusInstrument.model_validate(config.model_dump()) == config


def test_an_instrument_adjusts_how_a_profile_channel_is_decoded() -> None:
    """Scale, offset, unit and byte/word order of a profile channel are this device's (a
    transmitter ranged otherwise, a firmware that swaps words): the instrument may change them
    by the channel's name. Two instruments of one profile keep their own adjustments, and the
    profile is not changed by either."""
    chiller = load_profile("chiller-controller")
    flow = {"name": "flow", "scale": 0.06, "unit": "m3/h", "order": "ABCD"}
    converted = instrument(profile="chiller-controller", channels=[flow])
    plain = instrument(profile="chiller-controller", device_id=3)
    (adjusted,) = [c for c in converted.channels if c.name == "flow"]
    (kept,) = [c for c in plain.channels if c.name == "flow"]
    assert (adjusted.scale, adjusted.unit, adjusted.order, adjusted.address) == (
        0.06,
        "m3/h",
        "ABCD",
        4,
    )
    assert converted.order_of(adjusted) == "ABCD" and plain.order_of(kept) == "CDAB"
    assert (kept.scale, kept.unit, kept.order) == (1.0, "L/min", None)
    assert load_profile("chiller-controller") == chiller
    assert chiller.channels[[c.name for c in chiller.channels].index("flow")].unit == "L/min"
    assert ModbusInstrument.model_validate(converted.model_dump()) == converted
    kelvin = instrument(
        profile="thp-transmitter", channels=[{"name": "temperature", "offset": 273.15, "unit": "K"}]
    )
    assert (kelvin.channels[0].offset, kelvin.channels[0].unit) == (273.15, "K")


async def test_an_adjusted_profile_channel_reads_in_its_own_units_and_order(
    tmp_path: Path,
) -> None:
    """Against the simulated room transmitter (lab-bus device 1, big-endian): a lab's profile
    that has the float's word order wrong, put right by the instrument, and the int16
    temperature read in kelvin. Both give the room's temperature."""
    profile = tmp_path / "thp-swapped.yaml"
    profile.write_text(
        "name: thp-swapped\ndevice_id: 1\nfunction_codes: [4]\nchannels:\n"
        "  - {name: temperature, table: input, address: 0, type: int16, scale: 0.01, unit: °C}\n"
        "  - {name: t-float, table: input, address: 10, type: float32, order: CDAB, unit: °C}\n",
        encoding="utf-8",
    )
    config = instrument(
        profile=str(profile),
        channels=[
            {"name": "temperature", "offset": 273.15, "unit": "K"},
            {"name": "t-float", "order": "ABCD"},
        ],
    )
    async with ModbusSimServer(load_register_map("lab-bus")) as server:
        pointed = config.model_copy(
            update={"transport": config.transport.model_copy(update={"port": server.port})}
        )
        driver = ModbusDriver(pointed, SystemClock())
        try:
            await driver.connect()
            raw, floating = await driver.read(pointed.channels)
        finally:
            await driver.close()
    assert isinstance(raw.value, int) and isinstance(floating.value, float)
    kelvin = raw.value * 0.01 + 273.15  # as the agent's pipeline applies scale and offset
    assert 10 < floating.value < 40, floating  # the word order put right: a room's temperature
    assert abs(kelvin - 273.15 - floating.value) < 0.2
    assert (raw.unit, floating.unit) == ("K", "°C")


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        (
            {"channels": [{"name": "flow", "address": 6}]},
            "channels",
            "[0] 'flow': address 6 (profile: 4): a channel named like one of the profile may "
            "change only interval_s, offset, order, scale, tags, uncertainty, unit; to read "
            "another register give it another name",
        ),
        (
            {"channels": [{"name": "flow", "table": "input", "scale": 0.001}]},
            "channels",
            "[0] 'flow': table 'input' (profile: 'holding'): a channel named like one of the "
            "profile may change only",
        ),
        (
            {"channels": [{"name": "flow", "type": "int32"}]},
            "channels",
            "type 'int32' (profile: 'float32')",
        ),
        (
            {"disable": ["flow"], "channels": [{"name": "flow", "interval_s": 3}]},
            "channels",
            "[0] 'flow': the profile's channel is left out by disable",
        ),
        (
            {"only": ["setpoint"], "channels": [{"name": "flow", "interval_s": 3}]},
            "channels",
            "left out by only",
        ),
        (
            {"channels": [{"name": "flow", "interval_s": 3}, {"name": "flow", "interval_s": 4}]},
            "channels",
            "[1] 'flow': the profile's channel is adjusted twice",
        ),
        (
            {"channels": [{"name": "flow", "intervall": 3}]},
            "channels",
            "[0] 'flow'.intervall: Extra inputs are not permitted",
        ),
        ({"channels": [{"name": "x", "address": 3}]}, "channels", "[0].unit: Field required"),
        (
            {"channels": [{"name": "x", "table": "discrete_input", "address": 3, "unit": "1"}]},
            "",
            "channel 'x' is in table discrete_input (FC 2), which the device does not implement",
        ),
        ({"disable": ["nope"]}, "disable", "'nope': no such channel in profile"),
        ({"only": ["flow", "flow"]}, "only", "a channel is named twice"),
        ({"only": ["flow"], "disable": ["setpoint"]}, "disable", "give only or disable"),
        ({"profile": "nope"}, "profile", "no shipped profile 'nope' for Modbus (shipped: all-"),
        ({"profile": "/nonexistent/p.yaml"}, "profile", "cannot read profile /nonexistent/p"),
        ({"max_registers_per_request": 1}, "", "'supply-temperature' spans 2 addresses"),
        ({"function_codes": [3, 3]}, "function_codes", "a function code appears twice"),
        ({"function_codes": [5]}, "function_codes", "Input should be 1, 2, 3 or 4"),
        (
            {"identity_registers": {"Serial No": {"address": 1}}},
            "identity_registers",
            "identity key 'Serial No' must match",
        ),
    ],
)
def test_overrides_that_are_refused(fields: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        instrument(**{"profile": "chiller-controller", **fields})
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    assert ".".join(str(p) for p in errors[0]["loc"][:1]) == where
    assert message in errors[0]["msg"]


def test_only_and_disable_need_a_profile_and_something_is_read() -> None:
    with pytest.raises(ValidationError, match="choose among a profile's channels: set profile"):
        instrument(disable=["x"], channels=[{"name": "a", "address": 1, "unit": "V"}])
    with pytest.raises(ValidationError, match="at least one channel"):
        instrument()
    with pytest.raises(ValidationError, match="at least one channel"):
        instrument(profile="zener-monitor", only=[])


def test_merge_rules_as_a_function() -> None:
    profile = load_profile("zener-monitor")
    merged = merge_channels(profile, [{"name": "voltage", "interval_s": 5}], None, ["samples"])
    assert [(c.name, c.interval_s) for c in merged] == [
        ("voltage", 5),
        ("oven-temperature", 10),
        ("offset", 60),
    ]


# -- profile files -----------------------------------------------------------------------------

GOOD_PROFILE = """\
name: my-thp
device_id: 1
function_codes: [4]
channels:
  - {name: temperature, table: input, address: 10, type: float32, unit: °C}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nchannels: [\n", r"{file}:3: YAML syntax: expected the node content"),
        ("- a\n- b\n", r"{file}: the top level must be a mapping of keys, not list"),
        ("", r"{file}: the file is empty"),
        (GOOD_PROFILE + "colour: red\n", r"{file}:6: colour: Extra inputs are not permitted"),
        (GOOD_PROFILE.replace("my-thp", "My THP"), r"{file}:1: name: String should match"),
        (
            GOOD_PROFILE.replace("[4]", "[3]"),
            r"{file}:1: (top level): channel 'temperature' is in table input (FC 4)",
        ),
        (
            GOOD_PROFILE + "  - {name: temperature, table: input, address: 0, unit: °C}\n",
            r"{file}:1: (top level): channel name 'temperature' appears twice",
        ),
        (
            GOOD_PROFILE.replace("float32", "float128"),
            r"{file}:5: channels[0].type: Input should be 'bool'",
        ),
        ("name: x\nchannels: []\n", r"{file}:2: channels: List should have at least 1 item"),
        # A key given twice is refused as in a config file, not resolved to the last one.
        (
            GOOD_PROFILE.replace("address: 10,", "address: 10, address: 12,"),
            r"{file}:5: channels[0].address: key appears twice",
        ),
        (GOOD_PROFILE + "device_id: 2\n", r"{file}:6: device_id: key appears twice"),
    ],
)
def test_a_bad_profile_file_names_file_field_and_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    assert message.format(file=path) in str(caught.value)


def test_unreadable_profile_files(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(ProfileError, match=r"cannot read profile .*binary\.yaml: 'utf-8' codec"):
        load_profile(str(binary))
    with pytest.raises(ProfileError, match=r"cannot read profile .*folder\.yaml: is a directory"):
        load_profile(str(folder))
    with pytest.raises(ProfileError, match=r"cannot read profile /dev/null: not a regular file"):
        load_profile("/dev/null")


def test_a_missing_file_named_like_a_shipped_profile_says_how_to_name_it(tmp_path: Path) -> None:
    """``profile: thp-transmitter.yaml`` is a path (relative to the config file); when there is
    no such file, the error says the shipped profile of that name is named without .yaml."""
    with pytest.raises(ValidationError) as caught:
        instrument(profile=str(tmp_path / "thp-transmitter.yaml"))
    message = caught.value.errors()[0]["msg"]
    assert f"cannot read profile {tmp_path}/thp-transmitter.yaml: no such file" in message
    assert "the shipped profile is named without a path or .yaml: profile: thp-transmitter" in (
        message
    )
    with pytest.raises(ValidationError) as other:
        instrument(profile=str(tmp_path / "mine.yaml"))
    assert "shipped" not in other.value.errors()[0]["msg"]


def test_a_profile_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "profiles").mkdir(parents=True)
    (site / "profiles" / "my-thp.yaml").write_text(GOOD_PROFILE, encoding="utf-8")
    config_file = site / "agent.yaml"
    config_file.write_text(
        "site: s\nid: a\nspool: {path: /tmp/x.db}\ninstruments:\n"
        "  - name: thp\n    protocol: modbus\n"
        "    transport: {kind: tcp, host: 127.0.0.1}\n"
        "    profile: profiles/my-thp.yaml\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    agent = load_config(config_file, AgentConfig)
    (thp,) = agent.instruments
    assert isinstance(thp, ModbusInstrument)
    assert thp.profile == str(site / "profiles" / "my-thp.yaml")  # absolute from now on
    assert thp.profile_name() == "my-thp"
    assert [c.name for c in thp.channels] == ["temperature"]
    assert ModbusInstrument.model_validate(thp.model_dump()) == thp  # from any directory


def test_check_names_file_line_field_and_reason_of_a_bad_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "agent.yaml"
    config_file.write_text(
        "site: s\nid: a\nspool: {path: /tmp/x.db}\ninstruments:\n"
        "  - name: chiller\n    protocol: modbus\n"
        "    transport: {kind: tcp, host: 127.0.0.1}\n"
        "    profile: chiller-controller\n"
        "    disable: [setpoint, no-such]\n"
        "    channels:\n"
        "      - {name: flow, address: 40}\n",
        encoding="utf-8",
    )
    assert check_main([config_file], "en") == 1
    err = capsys.readouterr().err
    assert f"{config_file}:9: instruments[0].disable: 'no-such': no such channel" in err
    assert f"{config_file}:10: instruments[0].channels: [0] 'flow': address 40" in err


def test_the_modbus_examples_use_profiles_and_one_is_explicit() -> None:
    """The examples in config/ do not repeat a shipped register map; one shows a map written
    out, one a profile file of a lab's own."""
    explicit = []
    files = []
    for name in ("modbus-tcp.yaml", "modbus-rtu.yaml", "modbus-rtu-over-tcp.yaml", "demo.yaml"):
        _, loaded = load_any(REPO / "config" / name)
        for config in getattr(loaded, "instruments"):  # noqa: B009 - agent and demo configs
            if not isinstance(config, ModbusInstrument):
                continue
            if config.profile is None:
                explicit.append(config.name)
            elif "/" in config.profile:
                files.append(config.profile)
    assert explicit == ["chiller-1"]
    assert files == [str(REPO / "config" / "profiles" / "thp-floats.yaml")]
