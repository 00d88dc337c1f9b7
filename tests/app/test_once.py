"""``etalon agent -c FILE --once``: the command as a technician runs it, against the Modbus
simulator over a real socket, with no broker running and a spool path that must stay untouched."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from drivers.sim.modbus_server import ModbusSimServer, load_register_map
from tests.app.test_vietnamese import english_vocabulary, english_words
from tests.support.processes import child_env, etalon_command, write_yaml
from tests.support.services import free_port


@pytest.fixture
async def lab_bus() -> AsyncIterator[ModbusSimServer]:
    async with ModbusSimServer(load_register_map("lab-bus")) as server:
        yield server


def zener(port: int) -> dict[str, Any]:
    """The Zener monitor of config/modbus-tcp.yaml (device 3 of the lab bus)."""
    return {
        "name": "zener-monitor",
        "protocol": "modbus",
        "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port},
        "device_id": 3,
        "order": "DCBA",
        "channels": [
            {"name": "voltage", "table": "input", "address": 0, "type": "float64", "unit": "V"},
            {
                "name": "oven-temperature",
                "table": "input",
                "address": 4,
                "type": "float32",
                "unit": "°C",
            },
        ],
    }


def agent_config(tmp_path: Path, instruments: list[dict[str, Any]]) -> Path:
    """An agent config whose broker port has nothing behind it."""
    return write_yaml(
        tmp_path / "agent.yaml",
        {
            "site": "lab",
            "id": "commissioning",
            "mqtt": {"host": "127.0.0.1", "port": free_port()},
            "spool": {"path": str(tmp_path / "spool" / "agent.db")},
            "instruments": instruments,
        },
    )


async def once(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run ``etalon ARGS`` while the test's event loop keeps serving the simulator."""
    process = await asyncio.create_subprocess_exec(
        *etalon_command(*args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def rows(table: str) -> dict[tuple[str, str], list[str]]:
    """The table's rows by (instrument, channel), each split on runs of two spaces."""
    out = {}
    for line in table.splitlines()[1:]:
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        if len(cells) >= 4:
            out[(cells[0], cells[1])] = cells
    return out


async def test_a_good_instrument_reads_every_channel_once(
    lab_bus: ModbusSimServer, tmp_path: Path
) -> None:
    config = agent_config(tmp_path, [zener(lab_bus.port)])
    served = lab_bus.requests_served
    code, out, err = await once("agent", "-c", str(config), "--once", cwd=tmp_path)
    assert code == 0, err
    assert out.splitlines()[0].split()[:4] == ["instrument", "channel", "value", "unit"]
    table = rows(out)
    assert set(table) == {("zener-monitor", "voltage"), ("zener-monitor", "oven-temperature")}
    voltage = table[("zener-monitor", "voltage")]
    assert abs(float(voltage[2]) - 10.0) < 1e-3  # the simulated 10 V standard
    assert voltage[3] == "V" and voltage[4] == "good"
    assert voltage[-1].endswith(" ms")  # how long the request took
    assert "2 of 2 reading(s) good" in out
    assert "Traceback" not in err
    assert lab_bus.requests_served > served  # it did talk to the simulator
    # Nothing published (no broker was there to take it) and no spool touched.
    assert not (tmp_path / "spool").exists()


async def test_one_dead_instrument_is_named_and_the_others_still_read(
    lab_bus: ModbusSimServer, tmp_path: Path
) -> None:
    dead = zener(free_port()) | {"name": "dead-meter", "connect_timeout_s": 2}
    config = agent_config(tmp_path, [dead, zener(lab_bus.port)])
    code, out, err = await once("agent", "-c", str(config), "--once", cwd=tmp_path)
    assert code == 1
    table = rows(out)
    assert table[("zener-monitor", "voltage")][4] == "good"
    assert table[("dead-meter", "voltage")][4] == "bad"
    assert "not connected" in table[("dead-meter", "voltage")][5]
    assert "2 of 4 reading(s) not good" in err
    assert "dead-meter/voltage (bad: not connected" in err
    assert "dead-meter/oven-temperature" in err
    assert "zener-monitor" not in err
    assert not (tmp_path / "spool").exists()


async def test_a_modbus_exception_is_the_reason_of_that_channel_only(
    lab_bus: ModbusSimServer, tmp_path: Path
) -> None:
    instrument = zener(lab_bus.port)
    instrument["channels"].append(
        {"name": "not-mapped", "table": "input", "address": 13, "type": "uint16", "unit": "1"}
    )
    lab_bus.faults.exception_at = [{"table": "input", "address": 13, "code": 2}]
    config = agent_config(tmp_path, [instrument])
    code, out, err = await once("agent", "-c", str(config), "--once", cwd=tmp_path)
    assert code == 1
    table = rows(out)
    assert table[("zener-monitor", "voltage")][4] == "good"
    assert table[("zener-monitor", "not-mapped")][4] == "bad"
    assert "ILLEGAL DATA ADDRESS" in table[("zener-monitor", "not-mapped")][5]
    assert "1 of 3 reading(s) not good" in err
    assert "zener-monitor/not-mapped (bad: " in err and "ILLEGAL DATA ADDRESS" in err


async def test_json_for_scripts_with_ticks_and_one_instrument(
    lab_bus: ModbusSimServer, tmp_path: Path
) -> None:
    dead = zener(free_port()) | {"name": "dead-meter", "connect_timeout_s": 2}
    good = zener(lab_bus.port)
    good["channels"][0]["interval_s"] = 0.2
    config = agent_config(tmp_path, [dead, good])
    args = ("agent", "-c", str(config), "--once", "--json", "--count", "3")
    code, out, err = await once(*args, "--instrument", "zener-monitor", cwd=tmp_path)
    assert code == 0, err
    document = json.loads(out)
    assert document["ok"] is True and document["failing"] == []
    readings = document["readings"]
    assert [(r["channel"], r["tick"]) for r in readings] == [
        (channel, tick) for tick in (1, 2, 3) for channel in ("voltage", "oven-temperature")
    ]
    first = readings[0]
    assert set(first) == {
        "instrument",
        "channel",
        "tick",
        "value",
        "unit",
        "u",
        "quality",
        "reason",
        "connected",
        "ts",
        "ts_ns",
        "request_ms",
    }
    assert first["quality"] == "good" and first["reason"] is None
    assert isinstance(first["value"], float) and first["unit"] == "V"
    assert first["ts"].endswith("Z") and first["request_ms"] >= 0
    # Ticks follow one another, each starting one smallest interval (0.2 s) after the one
    # before at least, however late a busy machine ran it; a reading is stamped inside its
    # request, so a tick's stamp is that far after the one before less the earlier request's
    # time (and a millisecond for the rounding of request times and the two clocks).
    voltage = [r for r in readings if r["channel"] == "voltage"]
    for a, b in itertools.pairwise(voltage):
        assert b["ts_ns"] - a["ts_ns"] >= 0.2e9 - (a["request_ms"] + 1) * 1e6, (a, b)

    code, out, _ = await once("agent", "-c", str(config), "--once", "--json", cwd=tmp_path)
    assert code == 1
    document = json.loads(out)
    assert document["ok"] is False
    assert document["failing"] == ["dead-meter/oven-temperature", "dead-meter/voltage"]
    dead_readings = [r for r in document["readings"] if r["instrument"] == "dead-meter"]
    assert all(r["connected"] is False and r["request_ms"] is None for r in dead_readings)
    assert all("connection refused" in r["reason"] for r in dead_readings)


@pytest.mark.parametrize(
    ("extra", "status", "says"),
    [
        (["--once", "--count", "0"], 2, "a whole number from 1 to 100000"),
        (["--once", "--count", "many"], 2, "a whole number from 1 to 100000"),
        (["--once", "--instrument", "nope"], 1, "no instrument 'nope'"),
        (["--json"], 1, "--json goes with --once"),
        (["--count", "2"], 1, "--count goes with --once"),
    ],
)
def test_bad_options_are_refused_with_the_reason(
    tmp_path: Path, extra: list[str], status: int, says: str
) -> None:
    config = agent_config(tmp_path, [zener(free_port())])
    result = subprocess.run(
        etalon_command("agent", "-c", str(config), *extra),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == status
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert "zener-monitor" in result.stderr or says != "no instrument 'nope'"


def test_a_bad_config_names_the_field(tmp_path: Path) -> None:
    config = agent_config(tmp_path, [zener(free_port()) | {"device_id": 999}])
    result = subprocess.run(
        etalon_command("agent", "-c", str(config), "--once"),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert "device_id" in result.stderr and "invalid config" in result.stderr


async def test_a_dead_instrument_has_a_reading_at_every_tick(
    lab_bus: ModbusSimServer, tmp_path: Path
) -> None:
    """With ``--count``, every channel of every tick gets a reading, a dead instrument's too:
    it is tried again at each tick (as the running agent reconnects), and a script finds each
    tick of each channel in the JSON."""
    dead = zener(free_port()) | {"name": "dead-meter", "connect_timeout_s": 2}
    good = zener(lab_bus.port)
    for instrument in (dead, good):
        instrument["channels"][0]["interval_s"] = 0.2
    config = agent_config(tmp_path, [dead, good])
    args = ("agent", "-c", str(config), "--once", "--json", "--count", "3")
    code, out, err = await once(*args, cwd=tmp_path)
    assert code == 1
    ticks = {(r["instrument"], r["channel"], r["tick"]): r for r in json.loads(out)["readings"]}
    for instrument in ("dead-meter", "zener-monitor"):
        for channel in ("voltage", "oven-temperature"):
            assert [t for (i, c, t) in ticks if (i, c) == (instrument, channel)] == [1, 2, 3]
    assert all(
        r["connected"] is False and "connection refused" in r["reason"]
        for (instrument, _, _), r in ticks.items()
        if instrument == "dead-meter"
    )
    # The failing lines name the tick of each failing reading.
    assert "dead-meter/voltage (tick 3) (bad: not connected" in err, err
    assert err.count("dead-meter/voltage (tick") == 3


async def test_an_instrument_that_drops_its_connection_is_reconnected(
    lab_bus: ModbusSimServer, tmp_path: Path
) -> None:
    """The device drops the connection between two ticks (its network stack restarted): the
    next tick re-opens it and reads, as the running agent would, instead of reporting every
    later tick as not connected."""
    good = zener(lab_bus.port)
    good["channels"][0]["interval_s"] = 0.3
    config = agent_config(tmp_path, [good])
    served = lab_bus.requests_served
    args = ("agent", "-c", str(config), "--once", "--json", "--count", "4")
    run = asyncio.create_task(once(*args, cwd=tmp_path))
    while lab_bus.requests_served == served and not run.done():  # noqa: ASYNC110 - a counter
        await asyncio.sleep(0.005)
    lab_bus.drop_connections()  # after the first tick's request
    dropped_at = lab_bus.requests_served
    code, out, err = await run
    readings = json.loads(out)["readings"]
    assert lab_bus.requests_served > dropped_at  # read again after the drop
    assert [r["tick"] for r in readings] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert code == 0, (err, [r["reason"] for r in readings])


async def test_a_reason_of_several_lines_stays_on_its_row(tmp_path: Path) -> None:
    """A library's error of several lines (pyvisa-py without a GPIB library says what to
    install on two lines) is one row of the table and one failing line on stderr."""
    gpib = {
        "name": "dmm-gpib",
        "protocol": "visa",
        "resource": "GPIB0::22::INSTR",
        "backend": "@py",
        "profile": "generic-dmm",
        "channels": [{"name": "r10k", "measurement": "resistance_4w"}],
    }
    config = agent_config(tmp_path, [gpib])
    code, out, err = await once("agent", "-c", str(config), "--once", cwd=tmp_path)
    assert code == 1
    lines = out.splitlines()
    assert lines[1].startswith("dmm-gpib  ") and lines[1].rstrip().endswith("—"), out
    assert len(lines) == 2, out
    failing = err.splitlines()[2:]
    assert len(failing) == 1 and failing[0].startswith("  dmm-gpib/r10k (bad: "), err
    code, out, _ = await once("agent", "-c", str(config), "--once", "--json", cwd=tmp_path)
    assert "\n" in json.loads(out)["readings"][0]["reason"]  # the JSON keeps the words as they are


async def test_the_table_shows_every_digit_the_instrument_gave(tmp_path: Path) -> None:
    """A float64 register holds 10.000000812345 (a 10 V standard 0.81 µV high, to the pV): the
    table shows that value, as the JSON and the published reading carry it, not ten
    significant digits of it (a rubidium counter's 9999999.99990414 Hz is not 10000000); a
    float32 register's value as the float32 it is."""
    async with ModbusSimServer(load_register_map("all-types")) as server:
        types = {
            "name": "all-types",
            "protocol": "modbus",
            "transport": {"kind": "tcp", "host": "127.0.0.1", "port": server.port},
            "profile": "all-types",
            "only": ["float64-ABCD", "float32-CDAB", "uint64-ABCD", "int16-ABCD"],
        }
        config = agent_config(tmp_path, [types])
        code, out, err = await once("agent", "-c", str(config), "--once", cwd=tmp_path)
        _, out_json, _ = await once("agent", "-c", str(config), "--once", "--json", cwd=tmp_path)
    assert code == 0, err
    table = rows(out)
    assert table[("all-types", "float64-ABCD")][2] == "10.000000812345"
    # A float32 register's -273.15, not the float64 -273.1499938964844 it converts to.
    assert table[("all-types", "float32-CDAB")][2] == "-273.15"
    assert table[("all-types", "uint64-ABCD")][2] == "18000000000000000000"
    assert table[("all-types", "int16-ABCD")][2] == "-12345"
    values = {r["channel"]: r["value"] for r in json.loads(out_json)["readings"]}
    assert values["float64-ABCD"] == 10.000000812345


async def test_a_slow_device_is_reported_slow_not_garbled(
    lab_bus: ModbusSimServer, tmp_path: Path
) -> None:
    """The device answers every request 0.6 s late, its requests time out after 0.5 s: the
    late replies come in while a later request waits. Over Modbus TCP they carry the
    transaction ids of requests given up, so they are late replies (no reply in time), not an
    'unusable reply' that sends a technician looking for line noise."""
    slow = zener(lab_bus.port) | {"timeout_s": 2, "request_timeout_s": 0.5}
    slow["channels"][0]["interval_s"] = 0.2
    config = agent_config(tmp_path, [slow])
    lab_bus.faults.delay_s = 0.6
    args = ("agent", "-c", str(config), "--once", "--json", "--count", "3")
    code, out, _ = await once(*args, cwd=tmp_path)
    assert code == 1
    reasons = {r["reason"] for r in json.loads(out)["readings"]}
    assert all(reason.startswith("no reply within 0.5 s") for reason in reasons), reasons
    assert any("late replies" in reason for reason in reasons), reasons


def test_a_config_with_nothing_enabled_reads_nothing_and_says_so(tmp_path: Path) -> None:
    """Every instrument disabled: nothing is read, so nothing was shown to read `good` — not
    '0 of 0 reading(s) good' and status 0, which a script takes for a commissioned bench."""
    spare = zener(free_port()) | {"name": "spare-meter", "enabled": False}
    config = agent_config(tmp_path, [spare])
    for lang, says in (("en", "no enabled instrument"), ("vi", "không có thiết bị nào")):
        result = subprocess.run(
            etalon_command("--lang", lang, "agent", "-c", str(config), "--once", "--json"),
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
        assert result.returncode == 1, result
        assert says in result.stderr and "spare-meter" in result.stderr, result.stderr
        assert result.stdout == ""


async def test_the_table_and_its_reasons_in_vietnamese(
    lab_bus: ModbusSimServer, tmp_path: Path
) -> None:
    """``--lang vi``: a bit reads đúng/sai (not True/False), a dead instrument's and a Modbus
    exception's reasons are Vietnamese; only names, units and the protocol's own exception name
    stay as they are."""
    instrument = zener(lab_bus.port)
    instrument["channels"].append(
        {"name": "not-mapped", "table": "input", "address": 13, "type": "uint16", "unit": "1"}
    )
    lab_bus.faults.exception_at = [{"table": "input", "address": 13, "code": 2}]
    chiller: dict[str, Any] = {
        "name": "chiller-1",
        "protocol": "modbus",
        "transport": {"kind": "tcp", "host": "127.0.0.1", "port": lab_bus.port},
        "device_id": 2,
        "channels": [
            {"name": "on", "table": "holding", "address": 20, "type": "bit", "bit": 0, "unit": "1"}
        ],
    }
    dead = zener(free_port()) | {"name": "dead-meter", "connect_timeout_s": 2}
    config = agent_config(tmp_path, [instrument, chiller, dead])
    code, out, err = await once("--lang", "vi", "agent", "-c", str(config), "--once", cwd=tmp_path)
    assert code == 1
    table = rows(out)
    assert table[("chiller-1", "on")][2] in ("đúng", "sai")
    assert "ngoại lệ Modbus 2" in table[("zener-monitor", "not-mapped")][5]
    assert "bị từ chối kết nối" in table[("dead-meter", "voltage")][5]
    names = {  # the words of the instruments' and channels' names: the lab's data
        word
        for each in (instrument, chiller, dead)
        for name in [each["name"], *(channel["name"] for channel in each["channels"])]
        for word in name.split("-")
    }
    found = english_words(out + err, english_vocabulary() - names)
    assert found == [], out + err
