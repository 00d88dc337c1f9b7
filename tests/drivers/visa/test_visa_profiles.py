"""Instrument profiles as data: loading, validation, reply parsing, instrument configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from drivers.sim.scpi_instruments import PERSONALITIES
from drivers.visa.config import VisaInstrument
from drivers.visa.profiles import (
    Measurement,
    ProfileError,
    load_profile,
    parse_reply,
    shipped_profiles,
)


def test_the_shipped_profiles_each_have_a_simulator() -> None:
    assert shipped_profiles() == [
        "bench-dmm",
        "frequency-counter",
        "generic-dmm",
        "longscale-dmm",
        "multifunction-calibrator",
        "thermometer-readout",
    ]
    for name in shipped_profiles():
        profile = load_profile(name)
        assert profile.name == name
        assert profile.identify == "*IDN?"
        assert profile.errors is not None
        assert profile.errors.query == "SYST:ERR?"
        assert name in PERSONALITIES


def test_longscale_profile_integrates_100_plc() -> None:
    assert "VOLT:DC:NPLC 100" in load_profile("longscale-dmm").init


def test_unknown_profile_names_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="shipped: bench-dmm, frequency-counter, generic-dmm"):
        load_profile("no-such-dmm")


def test_a_bad_profile_file_names_file_field_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nmeasurements:\n  t:\n    query: 'MEAS?'\n    parse: number_with_unit\n"
        "    unit: '°C'\n"
    )
    with pytest.raises(ProfileError, match=r"bad\.yaml:3: measurements\.t: .*needs reply_unit"):
        load_profile(str(path))


@pytest.mark.parametrize(
    ("reply", "parse", "index", "expected"),
    [
        ("+1.00000080E+01", "number", None, 10.0000080),
        ("  -0.5\r", "number", None, -0.5),
        ("23.000120 C", "number_with_unit", None, 23.000120),
        ("23.000120,C", "number_with_unit", None, 23.000120),
        ("1.5,2.5,3.5", "values", 2, 3.5),
        ("1.0,2.0,3.0", "mean", None, 2.0),
    ],
)
def test_replies_that_parse(reply: str, parse: str, index: int | None, expected: float) -> None:
    unit = {"reply_unit": "C"} if parse == "number_with_unit" else {}
    measurement = Measurement(query="X?", parse=parse, unit="x", **unit)  # type: ignore[arg-type]
    parsed = parse_reply(reply, measurement, index)
    assert parsed.problem is None
    assert parsed.value == pytest.approx(expected)


def test_mean_carries_the_standard_uncertainty_of_the_mean() -> None:
    parsed = parse_reply("1.0,2.0,3.0", Measurement(query="R?", parse="mean", unit="V"))
    assert parsed.u == pytest.approx(1.0 / math.sqrt(3))


@pytest.mark.parametrize(
    ("reply", "parse", "index", "problem"),
    [
        ("+1.000#0080E+01", "number", None, "unparseable reply '+1.000#0080E+01'"),
        ("", "number", None, "unparseable reply ''"),
        ("NaN", "number", None, "unparseable"),
        ("+9.90000000E+37", "number", None, "overload"),
        ("296.15 K", "number_with_unit", None, "reply in unit 'K', expected 'C'"),
        ("23.1", "number_with_unit", None, "unparseable"),
        ("1.0,2.0", "values", 2, "reply has 2 values, channel reads index 2"),
        ("1.0,x", "mean", None, "unparseable"),
    ],
)
def test_replies_that_do_not(reply: str, parse: str, index: int | None, problem: str) -> None:
    unit = {"reply_unit": "C"} if parse == "number_with_unit" else {}
    measurement = Measurement(query="X?", parse=parse, unit="x", **unit)  # type: ignore[arg-type]
    parsed = parse_reply(reply, measurement, index)
    assert parsed.value is None
    assert parsed.problem is not None
    assert problem in parsed.problem


def _instrument(**overrides: object) -> VisaInstrument:
    data: dict[str, object] = {
        "name": "dmm",
        "protocol": "visa",
        "resource": "TCPIP::192.0.2.10::INSTR",
        "profile": "generic-dmm",
        "channels": [{"name": "v", "measurement": "voltage_dc"}],
    }
    data.update(overrides)
    return VisaInstrument.model_validate(data)


def test_channel_unit_defaults_to_the_measurement_unit() -> None:
    assert _instrument().channels[0].unit == "V"
    explicit = _instrument(channels=[{"name": "v", "measurement": "voltage_dc", "unit": "mV"}])
    assert explicit.channels[0].unit == "mV"


def test_a_gpib_board_is_a_shared_bus_by_default() -> None:
    assert _instrument(resource="GPIB0::22::INSTR").bus == "gpib0"
    assert _instrument(resource="GPIB1::5::INSTR").bus == "gpib1"
    assert _instrument(resource="GPIB0::22::INSTR", bus="bench-a").bus == "bench-a"
    assert _instrument().bus is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"resource": "192.0.2.10:5025"}, "not a VISA resource name"),
        ({"profile": "no-such"}, "no shipped profile 'no-such'"),
        ({"channels": [{"name": "v", "measurement": "volts"}]}, "has no measurement 'volts'"),
        (
            {
                "profile": "thermometer-readout",
                "channels": [{"name": "t", "measurement": "temperatures"}],
            },
            "set index",
        ),
        ({"visa_timeout_s": 9, "timeout_s": 2}, "may not exceed timeout_s"),
        ({"query_delay_s": 2, "timeout_s": 2}, "query_delay_s must be shorter than timeout_s"),
        ({"serial": {"baud_rate": 9600}}, "ASRL resources only"),
        ({"resourse": "TCPIP::x::INSTR"}, "Extra inputs are not permitted"),
    ],
)
def test_config_errors_say_what_is_wrong(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _instrument(**overrides)


def test_config_overrides_init_and_adds_measurements() -> None:
    instrument = _instrument(
        init=["*RST", "CONF:VOLT:DC 1"],
        measurements={"volts_1v": {"query": "MEAS:VOLT:DC? 1", "unit": "V"}},
        channels=[{"name": "v1", "measurement": "volts_1v"}],
    )
    profile = instrument.resolved_profile()
    assert profile.init == ["*RST", "CONF:VOLT:DC 1"]
    assert set(profile.measurements) >= {"voltage_dc", "volts_1v"}
    assert load_profile("generic-dmm").init[0] == "*RST"  # the shipped profile is untouched


def test_a_profile_file_is_found_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.config_loader import load_config
    from edge_agent.config import AgentConfig

    (tmp_path / "bench" / "profiles").mkdir(parents=True)
    own = tmp_path / "bench" / "profiles" / "my-dmm.yaml"
    own.write_text("name: my-dmm\nmeasurements:\n  v: {query: 'MEAS?', unit: V}\n")
    config_file = tmp_path / "bench" / "agent.yaml"
    config_file.write_text(
        "site: s\nid: a\nspool: {path: /tmp/x.db}\ninstruments:\n"
        "  - {name: dmm, protocol: visa, resource: 'TCPIP::192.0.2.1::INSTR',\n"
        "     profile: profiles/my-dmm.yaml, channels: [{name: v, measurement: v}]}\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    (dmm,) = load_config(config_file, AgentConfig).instruments
    assert isinstance(dmm, VisaInstrument)
    assert dmm.profile == str(own)
    assert dmm.channels[0].unit == "V"
    assert dmm.resolved_profile().name == "my-dmm"
