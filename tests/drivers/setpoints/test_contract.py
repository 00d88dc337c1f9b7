"""The write contract shared by every driver: limits, refusals, records, the step loop, and the
target configs of each protocol (hostile input refused with the field and the reason)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from pydantic import ValidationError

from core.clock import ManualClock, SystemClock
from core.errors import (
    DriverTimeout,
    LimitExceeded,
    NotConnected,
    SafeStateError,
    WriteInterrupted,
    WriteRefused,
    WriteRejected,
)
from drivers.base import IdentifyingDriver, SettableDriver
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver
from drivers.setpoints import (
    Step,
    TargetLimits,
    WriteTarget,
    WriteTrace,
    check_setpoints,
    make_target,
    records_of,
    run_safe_state,
    run_steps,
)
from drivers.sim.inprocess import SimDriver
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from drivers.visa.profiles import Profile, Setpoint

VOLTS = WriteTarget("cal", "voltage_dc", "number", "V", -20.0, 20.0)
RANGE = WriteTarget("cal", "range", "number", "V", None, None, (0.1, 1.0, 10.0))
OUTPUT = WriteTarget("cal", "output", "bool")
FUNCTION = WriteTarget("cal", "function", "choice", allowed=("VOLT:DC", "RES"))
COUNT = WriteTarget("x", "averaging", "integer", "", 1.0, 1000.0)


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "value", "expected"),
    [
        (VOLTS, 10, 10.0),
        (VOLTS, -20.0, -20.0),
        (VOLTS, 20, 20.0),
        (RANGE, 10, 10.0),
        (RANGE, 0.1, 0.1),
        (OUTPUT, True, True),
        (FUNCTION, "res", "RES"),
        (COUNT, 10.0, 10),
    ],
)
def test_values_within_the_limits_pass_as_they_will_be_written(
    target: WriteTarget, value: object, expected: object
) -> None:
    checked = target.check(value)
    assert checked == expected
    assert type(checked) is type(expected)


@pytest.mark.parametrize(
    ("target", "value", "kind", "code", "limit"),
    [
        (VOLTS, 1000, LimitExceeded, "above_max", "max 20 V"),
        (VOLTS, 20.000001, LimitExceeded, "above_max", "max 20 V"),
        (VOLTS, -21, LimitExceeded, "below_min", "min -20 V"),
        (VOLTS, math.nan, WriteRefused, "not_finite", "-20 V … 20 V"),
        (VOLTS, math.inf, WriteRefused, "not_finite", "-20 V … 20 V"),
        (VOLTS, True, WriteRefused, "wrong_type", "-20 V … 20 V"),
        (VOLTS, "10", WriteRefused, "wrong_type", "-20 V … 20 V"),
        (RANGE, 100, LimitExceeded, "not_allowed", "one of 0.1, 1, 10 V"),
        (OUTPUT, 1, WriteRefused, "wrong_type", "on or off"),
        (FUNCTION, "VOLT:AC", LimitExceeded, "not_allowed", "one of VOLT:DC, RES"),
        (FUNCTION, "RES;*RST", LimitExceeded, "not_allowed", "one of VOLT:DC, RES"),
        (COUNT, 2.5, WriteRefused, "not_integer", "1 … 1000"),
        (COUNT, 0, LimitExceeded, "below_min", "min 1"),
    ],
)
def test_values_outside_are_refused_with_instrument_target_value_and_limit(
    target: WriteTarget, value: object, kind: type[WriteRefused], code: str, limit: str
) -> None:
    with pytest.raises(WriteRefused) as refused:
        target.check(value)
    error = refused.value
    assert type(error) is kind
    assert (error.instrument, error.target, error.code, error.limit) == (
        target.instrument,
        target.name,
        code,
        limit,
    )
    assert error.value is value
    assert error.records == ()
    assert str(error).startswith(f"{target.instrument}/{target.name}: ")
    assert "nothing was sent" in str(error)


def test_the_typo_that_would_ask_a_calibrator_for_1000_v_says_so() -> None:
    with pytest.raises(LimitExceeded) as refused:
        VOLTS.check(1000.0)
    assert str(refused.value) == (
        "cal/voltage_dc: 1000 V refused: above the limit of 20 V (limits -20 V … 20 V); "
        "nothing was sent"
    )


def test_every_setpoint_is_checked_before_the_first_is_sent() -> None:
    targets = {t.name: t for t in (VOLTS, OUTPUT)}
    with pytest.raises(LimitExceeded):
        check_setpoints("cal", targets, {"output": True, "voltage_dc": 50})
    with pytest.raises(WriteRefused) as unknown:
        check_setpoints("cal", targets, {"voltage": 1.0})
    assert unknown.value.code == "unknown_target"
    assert "output, voltage_dc" in str(unknown.value)
    checked = check_setpoints("cal", targets, {"voltage_dc": 1, "output": True})
    assert [(t.name, v) for t, v in checked] == [("voltage_dc", 1.0), ("output", True)]


def test_a_target_is_narrowed_to_what_the_instrument_can_do() -> None:
    capability = TargetLimits(name="r", unit="V", allowed=[0.1, 1, 10, 100, 1000])
    narrowed = make_target("cal", TargetLimits(name="r", min=0, max=20), "number", "V", capability)
    assert narrowed.allowed == (0.1, 1.0, 10.0)
    with pytest.raises(ValueError, match="offers no 3"):
        make_target("cal", TargetLimits(name="r", allowed=[3.0]), "number", "V", capability)
    volts = TargetLimits(name="v", unit="V", min=-1020, max=1020)
    with pytest.raises(ValueError, match="beyond what the instrument can set"):
        make_target("cal", TargetLimits(name="v", min=-2000, max=20), "number", "V", volts)
    with pytest.raises(ValueError, match="allowed value 2000 V is beyond"):
        make_target("cal", TargetLimits(name="v", allowed=[1, 2000]), "number", "V", volts)


@pytest.mark.parametrize(
    ("kind", "limits", "message"),
    [
        ("number", {}, "needs both min and max"),
        ("number", {"min": 0}, "needs both min and max"),
        ("integer", {"allowed": [1.5]}, "whole numbers"),
        ("bool", {"max": 1}, "takes no min, max or allowed"),
        ("choice", {"min": 0, "max": 1}, "allowed words, not min/max"),
        ("number", {"allowed": ["A"]}, "allowed values are numbers"),
    ],
)
def test_declared_limits_must_fit_the_kind(kind: Any, limits: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_target("cal", TargetLimits(name="t", **limits), kind)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"min": 5, "max": 1}, "min \\(5\\) is above max"),
        ({"min": math.inf, "max": 1}, "finite"),
        ({"allowed": ["ON;*RST"]}, "one token"),
        ({"allowed": ["A", "a"]}, "repeat"),
        ({"allowed": []}, "at least 1"),
        ({"name": "bad name"}, "String should match"),
    ],
)
def test_hostile_limits_are_refused(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TargetLimits.model_validate({"name": "t"} | limits)


# -- the step loop -----------------------------------------------------------------------------


def _step(label: str, behaviour: Any, sent: str = "CMD") -> Step:
    async def apply(trace: WriteTrace) -> None:
        trace.sent.append(sent)
        if isinstance(behaviour, BaseException):
            raise behaviour
        if behaviour == "hang":
            await asyncio.sleep(10)
        trace.confirmed.append("ok")

    return Step(label, apply, label, 1.0, "V")


async def test_a_write_stops_at_the_first_failure_and_carries_what_was_sent() -> None:
    clock = ManualClock()
    rejected = WriteRejected("cal", "refused", "b", instrument_message='-221,"Settings conflict"')
    steps = [_step("a", None, "A 1"), _step("b", rejected, "B 2"), _step("c", None, "C 3")]
    with pytest.raises(WriteRejected) as failure:
        await run_steps("cal", steps, timeout_s=1, clock=clock)
    records = records_of(failure.value)
    assert [(r.target, r.sent, r.ok) for r in records] == [
        ("a", ("A 1",), True),
        ("b", ("B 2",), False),
    ]
    assert records[1].error == "refused"
    assert failure.value.instrument_message == '-221,"Settings conflict"'


async def test_a_broken_exchange_becomes_write_interrupted_with_its_cause() -> None:
    clock = SystemClock()
    steps = [_step("a", NotConnected("cal", "connection lost"))]
    with pytest.raises(WriteInterrupted) as failure:
        await run_steps("cal", steps, timeout_s=1, clock=clock)
    assert isinstance(failure.value.__cause__, NotConnected)
    assert records_of(failure.value)[0].sent == ("CMD",)
    with pytest.raises(WriteInterrupted) as timed_out:
        await run_steps("cal", [_step("slow", "hang")], timeout_s=0.05, clock=clock)
    assert isinstance(timed_out.value.__cause__, DriverTimeout)
    assert "no reply within 0.05 s" in str(timed_out.value)
    assert timed_out.value.reason == "slow: no reply within 0.05 s"  # the label once
    assert records_of(timed_out.value)[0].sent == ("CMD",)  # it may have reached the device


async def test_a_safe_state_tries_every_step_and_reports_all_failures() -> None:
    clock = ManualClock()
    recovered: list[str] = []

    async def recover() -> None:
        recovered.append("reconnected")

    steps = [
        _step("first", DriverTimeout("cal", "no reply")),
        _step("second", None),
        _step("third", WriteRejected("cal", "-113")),
    ]
    with pytest.raises(SafeStateError) as failure:
        await run_steps(
            "cal", steps, timeout_s=1, clock=clock, purpose="safe_state", recover=recover
        )
    records = records_of(failure.value)
    # A broken exchange is tried once more after a reconnect; a refusal is not.
    assert [(r.target, r.ok) for r in records] == [
        ("first", False),
        ("first", False),
        ("second", True),
        ("third", False),
    ]
    assert recovered == ["reconnected"]
    assert all(r.purpose == "safe_state" for r in records)
    assert failure.value.failures == ["first: no reply", "third: -113"]


async def test_cancellation_is_never_swallowed() -> None:
    task = asyncio.create_task(
        run_steps("cal", [_step("slow", "hang")], timeout_s=5, clock=SystemClock())
    )
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_records_are_plain_data_for_the_audit() -> None:
    async def run() -> dict[str, Any]:
        (record,) = await run_steps("cal", [_step("a", None)], timeout_s=1, clock=ManualClock())
        return record.as_dict()

    data = asyncio.run(run())
    assert data["sent"] == ["CMD"] and data["confirmed"] == ["ok"] and data["ok"] is True
    assert set(data) >= {"instrument", "target", "value", "unit", "started_ns", "finished_ns"}


# -- the protocols' target configs --------------------------------------------------------------


def _visa(**extra: Any) -> dict[str, Any]:
    return {
        "name": "calibrator",
        "protocol": "visa",
        "resource": "TCPIP::127.0.0.1::5030::SOCKET",
        "profile": "multifunction-calibrator",
        "channels": [{"name": "out", "measurement": "output_state"}],
    } | extra


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"targets": [{"name": "volts", "min": 0, "max": 1}]}, "no such set-point"),
        ({"targets": [{"name": "voltage_dc"}]}, "needs both min and max"),
        ({"targets": [{"name": "voltage_dc", "min": 0, "max": 2000}]}, "beyond what"),
        ({"targets": [{"name": "voltage_dc", "unit": "mV", "min": 0, "max": 1}]}, "unit 'mV'"),
        ({"targets": [{"name": "output"}, {"name": "output"}]}, "appears twice"),
        ({"targets": [{"name": "function", "allowed": ["DCV"]}]}, "offers no DCV"),
        ({"safe_state": [{"target": "output", "value": False}]}, "no target 'output'"),
        (
            {
                "targets": [{"name": "voltage_dc", "min": -1, "max": 1}],
                "safe_state": [{"target": "voltage_dc", "value": 5}],
            },
            "safe_state\\[0\\]: 5 V refused",
        ),
        ({"safe_state": ["OUTP OFF\n*RST"]}, "not one command"),
        ({"safe_state": [""]}, "not one command"),
    ],
)
def test_visa_targets_hostile_input(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        VisaInstrument.model_validate(_visa(**extra))


def test_visa_safe_state_defaults_to_the_profile() -> None:
    config = VisaInstrument.model_validate(_visa())
    assert config.resolved_safe_state() == ["OUTP OFF"]
    assert config.write_targets() == {}


@pytest.mark.parametrize(
    ("setpoint", "message"),
    [
        ({"command": "SOUR:VOLT"}, "exactly once"),
        ({"command": "SOUR:VOLT {value};*RST {value}"}, "exactly once"),
        ({"command": "SOUR:VOLT {value}\n*RST"}, "String should match"),
        ({"command": "OUTP {value}", "kind": "bool", "max": 1}, "takes no min"),
        ({"command": "FUNC {value}", "kind": "choice"}, "needs its allowed words"),
        ({"command": "X {value}", "on": "ON;*RST", "kind": "bool"}, "String should match"),
    ],
)
def test_profile_setpoints_hostile_input(setpoint: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Setpoint.model_validate(setpoint)


def test_profile_safe_state_is_one_command_per_entry() -> None:
    base = {"name": "p", "measurements": {"m": {"query": "READ?", "unit": "V"}}}
    with pytest.raises(ValidationError, match="one command per entry"):
        Profile.model_validate(base | {"safe_state": ["OUTP OFF\r\n*RST"]})


def test_setpoint_commands_render_numbers_words_and_states() -> None:
    volts = Setpoint(command="SOUR:VOLT {value}", unit="V")
    assert volts.render(10.0) == "SOUR:VOLT 10"
    assert volts.render(1e-5) == "SOUR:VOLT 1E-05"
    assert volts.render(0.1 + 0.2) == "SOUR:VOLT 0.3"
    assert volts.render(-19.999999) == "SOUR:VOLT -19.999999"
    output = Setpoint(command="OUTP {value}", kind="bool")
    assert (output.render(True), output.render(False)) == ("OUTP ON", "OUTP OFF")
    assert output.parse_read_back(" 1\n") is True and output.parse_read_back("OFF") is False
    assert volts.matches(10.0, 10.000005) and not volts.matches(10.0, 10.0001)


def _modbus(**target: Any) -> dict[str, Any]:
    return {
        "name": "xmtr",
        "protocol": "modbus",
        "transport": {"kind": "tcp", "host": "127.0.0.1", "port": 502},
        "channels": [{"name": "v", "table": "input", "address": 0, "unit": "V"}],
        "targets": [{"name": "t", "address": 10} | target],
    }


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"type": "string"}, "cannot be a write target"),
        ({"type": "bit"}, "cannot be a write target"),
        ({"table": "input"}, "Input should be 'coil' or 'holding'"),
        ({"table": "coil", "type": "uint16", "min": 0, "max": 1}, "a coil holds a bool"),
        ({"type": "float32", "function": 6, "min": 0, "max": 1}, "FC 6 writes one register"),
        ({"table": "coil", "function": 16}, "FC 5 or 15"),
        ({"type": "int16", "min": 0, "max": 40000}, "beyond int16"),
        ({"type": "uint16", "scale": 0.001, "min": 0, "max": 100}, "beyond uint16"),
        ({"type": "float32", "min": 0, "max": 1e39}, "does not fit a float32"),
        ({"scale": 0, "min": 0, "max": 1}, "scale may not be 0"),
        ({"address": 65535, "type": "float32", "min": 0, "max": 1}, "runs past 65535"),
        ({"type": "uint16"}, "needs both min and max"),
    ],
)
def test_modbus_targets_hostile_input(target: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModbusInstrument.model_validate(_modbus(**target))


def test_modbus_target_kinds_and_function_codes() -> None:
    config = ModbusInstrument.model_validate(
        _modbus(type="float32", min=0, max=1)
        | {
            "targets": [
                {"name": "f", "address": 0, "type": "float32", "min": 0, "max": 1},
                {"name": "n", "address": 2, "type": "uint32", "min": 0, "max": 9},
                {"name": "s", "address": 4, "scale": 0.1, "min": 0, "max": 9},
                {"name": "c", "table": "coil", "address": 0},
                {"name": "m", "table": "coil", "address": 1, "function": 15},
                {"name": "r", "address": 6, "function": 16, "min": 0, "max": 1},
            ]
        }
    )
    kinds = {t.name: (t.kind, t.function_code) for t in config.targets}
    assert kinds == {
        "f": ("number", 16),
        "n": ("integer", 16),
        "s": ("number", 6),
        "c": ("bool", 5),
        "m": ("bool", 15),
        "r": ("integer", 16),
    }


def test_opcua_targets_hostile_input() -> None:
    base = {
        "name": "chamber",
        "protocol": "opcua",
        "endpoint": "opc.tcp://127.0.0.1:4840",
        "channels": [{"name": "t", "node": "ns=2;s=X"}],
    }
    both = [{"name": "t", "node": "ns=2;s=A", "browse_path": ["A"], "min": 0, "max": 1}]
    with pytest.raises(ValidationError, match="exactly one of node and browse_path"):
        OpcUaInstrument.model_validate(base | {"targets": both})
    with pytest.raises(ValidationError, match="not a NodeId"):
        OpcUaInstrument.model_validate(base | {"targets": [{"name": "t", "node": "X;Y"}]})
    bare = [{"name": "t", "browse_path": ["Source", "Output"]}]
    with pytest.raises(ValidationError, match="bare browse names"):
        OpcUaInstrument.model_validate(base | {"targets": bare})
    typed = [{"name": "t", "node": "ns=2;s=A", "data_type": "Double"}]
    with pytest.raises(ValidationError, match="needs both min and max"):
        OpcUaInstrument.model_validate(base | {"targets": typed})
    words = [{"name": "t", "node": "ns=2;s=A", "data_type": "Boolean", "allowed": ["A"]}]
    with pytest.raises(ValidationError, match="takes no min, max or allowed"):
        OpcUaInstrument.model_validate(base | {"targets": words})


def test_which_drivers_are_settable_and_identifying() -> None:
    visa = VisaDriver(VisaInstrument.model_validate(_visa()), SystemClock())
    modbus = ModbusDriver(ModbusInstrument.model_validate(_modbus(min=0, max=1)), SystemClock())
    opcua = OpcUaDriver(
        OpcUaInstrument.model_validate(
            {
                "name": "c",
                "protocol": "opcua",
                "endpoint": "opc.tcp://127.0.0.1:4840",
                "channels": [{"name": "t", "node": "ns=2;s=X"}],
            }
        ),
        SystemClock(),
    )
    for driver in (visa, modbus, opcua):
        assert isinstance(driver, SettableDriver)
        assert isinstance(driver, IdentifyingDriver)
    sim = SimDriver.__new__(SimDriver)
    assert not isinstance(sim, SettableDriver)


async def test_a_safe_state_step_that_fails_on_a_dead_link_succeeds_after_a_reconnect() -> None:
    links = {"alive": False}

    async def apply(trace: WriteTrace) -> None:
        trace.sent.append("OUTP OFF")
        if not links["alive"]:
            raise NotConnected("cal", "connection lost")

    async def recover() -> None:
        links["alive"] = True

    records = await run_steps(
        "cal",
        [Step("output = off", apply, "output", False)],
        timeout_s=1,
        clock=ManualClock(),
        purpose="safe_state",
        recover=recover,
    )
    assert [r.ok for r in records] == [False, True]
    assert records[0].error == "connection lost"


async def test_a_safe_state_connects_first_and_says_why_when_it_cannot() -> None:
    config = VisaInstrument.model_validate(
        {
            "name": "cal",
            "protocol": "visa",
            "resource": "TCPIP::127.0.0.1::5025::SOCKET",
            "profile": "multifunction-calibrator",
            "timeout_s": 0.5,
            "connect_timeout_s": 0.05,
            "channels": [{"name": "out", "measurement": "output_state"}],
        }
    )
    done: list[str] = []

    async def refused() -> None:
        done.append("connect")
        raise NotConnected("cal", "connection refused")

    async def hangs() -> None:
        await asyncio.sleep(10)

    async def close() -> None:
        done.append("close")

    def steps() -> list[Step]:
        done.append("steps")  # built only once connected
        return [_step("output", None)]

    clock = ManualClock()
    with pytest.raises(SafeStateError) as failure:
        await run_safe_state(config, steps, connected=False, connect=refused, clock=clock)
    assert failure.value.failures == ["connect: connection refused"]
    assert done == ["connect"]
    with pytest.raises(SafeStateError) as timed_out:
        await run_safe_state(
            config, steps, connected=False, connect=hangs, clock=clock, close=close
        )
    assert timed_out.value.failures == ["connect: connect timed out"]
    assert done == ["connect", "close"]  # closed before the error, steps never built
    records = await run_safe_state(config, steps, connected=True, connect=refused, clock=clock)
    assert [(r.target, r.ok, r.purpose) for r in records] == [("output", True, "safe_state")]
    assert done == ["connect", "close", "steps"]


async def test_a_safe_state_step_gets_the_instruments_timeout_unless_told_otherwise() -> None:
    config = VisaInstrument.model_validate(
        {
            "name": "cal",
            "protocol": "visa",
            "resource": "TCPIP::127.0.0.1::5025::SOCKET",
            "profile": "multifunction-calibrator",
            "timeout_s": 0.05,
            "channels": [{"name": "out", "measurement": "output_state"}],
        }
    )
    reconnects: list[str] = []

    async def connect() -> None:
        reconnects.append("connect")

    def steps() -> list[Step]:
        return [_step("slow", "hang")]

    clock = SystemClock()
    with pytest.raises(SafeStateError) as failure:
        await run_safe_state(config, steps, connected=True, connect=connect, clock=clock)
    # Timed out, reconnected, timed out again: within the instrument's 0.05 s each time.
    (reason,) = failure.value.failures
    assert reason.endswith("no reply within 0.05 s")
    assert reason == "slow: no reply within 0.05 s"  # the step's label once
    assert reconnects == ["connect"]
    with pytest.raises(SafeStateError) as longer:
        await run_safe_state(
            config, steps, connected=True, connect=connect, clock=clock, timeout_s=0.08
        )
    (reason,) = longer.value.failures
    assert reason.endswith("no reply within 0.08 s")
