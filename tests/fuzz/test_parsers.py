"""A bounded-time fuzz harness (hypothesis) for every parser of outside input: the wire decoder,
the line-protocol builder (and its reader), the config loader, the SCPI command parser of the
simulators, the VISA driver's reply parser and the Modbus register decoder.

Each may only answer with its documented error (PayloadError, LineError, ConfigError, ScpiError,
DecodeError; the reply parser never raises) — never crash, recurse without bound or hang. The
default run tries a few hundred examples in all; ``-m slow`` gives each parser a time budget and
prints how many examples it ran.
"""

from __future__ import annotations

import contextlib
import math
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config_loader import MAX_DEPTH, load_config
from core.errors import ConfigError, PayloadError
from drivers.modbus.codec import DecodeError, decode
from drivers.sim.scpi_parser import ParsedCommand, ScpiError, channel_list, number, parse_message
from drivers.visa.profiles import Measurement, parse_reply
from edge_agent.config import AgentConfig
from edge_agent.wire import decode_instrument_state, decode_metrics, decode_status
from edge_agent.wire_batches import decode_batch
from gateway.config import GatewayConfig
from gateway.tsdb.line_protocol import LineError, parse_line
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import ReadingsBatch
from gateway.tsdb.writer import decode_entry
from tests.gateway.ingest.strategies import (
    any_case,
    control_text,
    deep,
    dumps,
    free_text,
    huge_ints,
)

SLOW_SECONDS = 40
DEFAULT_EXAMPLES = 60
RAN: dict[str, int] = {}


def outcome(call: Callable[[], Any], error: type[Exception]) -> tuple[Any, Exception | None]:
    """(result, None), or (None, the error) if ``call`` raised ``error`` (anything else fails)."""
    try:
        return call(), None
    except error as exc:
        return None, exc


def run(name: str, test: Callable[..., None], strategy: Any, slow: bool) -> None:
    """Run ``test`` on ``strategy``: a fixed number of examples, or for SLOW_SECONDS."""
    count = 0

    @settings(
        max_examples=DEFAULT_EXAMPLES if not slow else 100,  # then the clock is checked
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def example(value: Any) -> None:
        nonlocal count
        count += 1
        test(value)

    deadline = time.monotonic() + (SLOW_SECONDS if slow else 0)
    example()
    while time.monotonic() < deadline:
        example()
    RAN[name] = count
    if slow:
        print(f"\n{name}: {count} examples")
    assert count >= DEFAULT_EXAMPLES


PARSERS: dict[str, tuple[Callable[..., None], Any]] = {}


def parser(name: str, strategy: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(test: Callable[..., None]) -> Callable[..., None]:
        PARSERS[name] = (test, strategy)
        return test

    return register


# -- the wire decoder ---------------------------------------------------------------------------

wire_payloads = st.one_of(
    any_case(1_790_000_000_000_000_000).map(lambda case: case.payload),
    st.binary(max_size=3000),
    deep.map(lambda raw: dumps({"schema": 1, "readings": raw})),
)


@parser("wire decoder", wire_payloads)
def check_wire(payload: bytes) -> None:
    decoded, error = outcome(lambda: decode_batch(payload, "lab-1", "bench-1"), PayloadError)
    if isinstance(error, PayloadError):
        assert error.reason and error.cause
    else:
        good, rejected, seq = decoded
        assert isinstance(seq, int) and 0 <= seq < 2**63
        assert len(good) + len(rejected) >= 1
        if not rejected:  # spooled as received: the writer must read it back the same
            entry = decode_entry(payload)
            assert isinstance(entry, ReadingsBatch) and len(entry.readings) == len(good)
        lines = LineBuilder().lines(ReadingsBatch("lab-1", "bench-1", list(good)))  # type: ignore[arg-type]
        assert len(lines) == len(good)  # what the wire accepts, the builder can write
    for decoder in (decode_status, decode_metrics):
        _, error = outcome(lambda: decoder(payload, "lab-1", "bench-1"), PayloadError)  # noqa: B023
        assert error is None or (isinstance(error, PayloadError) and error.reason)
    _, error = outcome(lambda: decode_instrument_state(payload), PayloadError)
    assert error is None or (isinstance(error, PayloadError) and error.reason)


# -- the line-protocol builder and reader --------------------------------------------------------

hostile_scalars = st.one_of(
    st.floats(),
    st.integers(),
    huge_ints,
    st.booleans(),
    st.none(),
    free_text,
    control_text,
    st.lists(st.integers(), max_size=2),
)


@st.composite
def loose_readings(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Readings as a corrupt spool entry could hold them: any field, any type."""
    readings = []
    for _ in range(draw(st.integers(1, 8))):
        reading: dict[str, Any] = {
            "instrument": draw(st.one_of(st.just("dmm-1"), free_text, control_text)),
            "channel": draw(st.one_of(st.just("v"), free_text)),
            "ts": draw(st.one_of(st.integers(0, 2**63 - 1), hostile_scalars)),
            "value": draw(hostile_scalars),
            "unit": draw(st.one_of(st.just("V"), free_text, control_text)),
            "quality": draw(st.sampled_from(["good", "bad", "uncertain", "excellent"])),
        }
        for key in ("reason", "u"):
            if draw(st.booleans()):
                reading[key] = draw(hostile_scalars)
        if draw(st.booleans()):
            reading["tags"] = draw(st.dictionaries(free_text, free_text, max_size=3))
        if draw(st.booleans()):
            reading.pop(draw(st.sampled_from(sorted(reading))))
        readings.append(reading)
    return readings


@parser("line-protocol builder", loose_readings())
def check_builder(readings: list[dict[str, Any]]) -> None:
    rejected: list[tuple[str, str]] = []
    lines = LineBuilder().lines(ReadingsBatch("lab-1", "bench-1", readings), rejected)
    assert len(lines) + len(rejected) == len(readings)
    for text in lines:
        assert "\n" not in text and "\r" not in text
        measurement, _tags, fields, ts = parse_line(text)
        assert measurement == "reading" and isinstance(ts, int)
        assert all(not isinstance(v, float) or math.isfinite(v) for v in fields.values())


@parser("line-protocol reader", st.text(max_size=300) | control_text)
def check_reader(text: str) -> None:
    with contextlib.suppress(LineError):
        parse_line(text)


# -- the config loader ---------------------------------------------------------------------------

yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), free_text, control_text),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(free_text, children, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    """YAML: a real config with one key replaced, a random document, or plain text."""
    base: dict[str, Any] = {
        "site": "lab-1",
        "spool": {"path": "/tmp/etalon-fuzz/spool.db"},
        "store": {"kind": "sqlite", "path": "/tmp/etalon-fuzz/r.db"},
        "records": {"path": "/tmp/etalon-fuzz/rec.db"},
        "instruments": [{"name": "a", "protocol": "sim", "model": {"kind": "zener"}}],
    }
    choice = draw(st.integers(0, 3))
    if choice == 0:
        key = draw(st.sampled_from(["site", "spool", "store", "records", "instruments", "x"]))
        base[key] = draw(yaml_values)
        return yaml.safe_dump(base, allow_unicode=draw(st.booleans()))
    if choice == 1:
        return yaml.safe_dump(draw(yaml_values))
    if choice == 2:
        depth = draw(st.integers(50, 20_000))
        return draw(st.sampled_from(["[" * depth, "{a: " * depth, "- " * depth + "x"]))
    return draw(st.text(max_size=400))


@parser("config loader", config_texts())
def check_config(text: str) -> None:
    path = Path("/tmp/etalon-fuzz-config.yaml")
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for model in (AgentConfig, GatewayConfig):
        _, error = outcome(lambda: load_config(path, model), ConfigError)  # noqa: B023
        if isinstance(error, ConfigError):
            assert error.problems and all(str(path) in p for p in error.problems)


# -- the SCPI command parser of the simulators -----------------------------------------------------

scpi_text = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(["MEAS:VOLT:DC?", "*IDN?", ":SENS:", "(@1:3)", ",", ";", '"', "'", "?"])
        | st.text(max_size=8),
        max_size=20,
    ).map("".join),
    st.builds(lambda a, b: f"ROUT:SCAN (@{a}:{b})", st.integers(), st.integers()),
)


@parser("SCPI parser", scpi_text)
def check_scpi(text: str) -> None:
    for command in parse_message(text):
        assert isinstance(command, ParsedCommand | ScpiError)
        if isinstance(command, ScpiError):
            continue
        for param in command.params:
            for parse in (number, channel_list):
                with contextlib.suppress(ScpiError):
                    parse(param)


# -- the VISA driver's reply parser --------------------------------------------------------------

MEASUREMENTS = [
    Measurement(query="READ?", unit="V"),
    Measurement(query="READ?", unit="°C", parse="number_with_unit", reply_unit="C"),
    Measurement(query="READ?", unit="V", parse="values"),
    Measurement(query="READ?", unit="V", parse="mean"),
]
replies = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.floats().map(repr) | st.sampled_from(["9.9E37", "nan", "inf", "-", "1e999", " C"]),
        max_size=12,
    ).map(",".join),
)


@parser("VISA reply parser", st.tuples(replies, st.sampled_from(MEASUREMENTS), st.integers(0, 20)))
def check_reply(args: tuple[str, Measurement, int]) -> None:
    reply, measurement, index = args
    parsed = parse_reply(reply, measurement, index)
    assert (parsed.value is None) != (parsed.problem is None)
    if parsed.value is not None:
        assert math.isfinite(parsed.value)
    if parsed.problem is not None:
        assert len(parsed.problem) < 400


# -- the Modbus register decoder -----------------------------------------------------------------

KINDS = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]


@st.composite
def register_cases(draw: st.DrawFn) -> tuple[list[int], str, str, int | None, int | None]:
    kind = draw(st.sampled_from([*KINDS, "bool", "bit", "string"]))
    order = draw(st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]))
    needed = (
        struct.calcsize(
            {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I"}.get(
                kind, {"int64": "q", "uint64": "Q", "float32": "f", "float64": "d"}.get(kind, "H")
            )
        )
        // 2
    )
    count = draw(st.integers(0, 8) if draw(st.booleans()) else st.just(needed))
    registers = draw(st.lists(st.integers(0, 0xFFFF), min_size=count, max_size=count))
    bit = draw(st.integers(0, 15)) if kind == "bit" else None
    length = draw(st.integers(1, 16)) if kind == "string" else None
    return registers, kind, order, bit, length


@parser("Modbus decoder", register_cases())
def check_modbus(case: tuple[list[int], str, str, int | None, int | None]) -> None:
    registers, kind, order, bit, length = case
    value, error = outcome(
        lambda: decode(registers, kind, order, bit, "ascii", length),  # type: ignore[arg-type]
        DecodeError,
    )
    assert error is not None or isinstance(value, bool | int | float | str)


# -- the runs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parser_survives_hostile_input(name: str) -> None:
    test, strategy = PARSERS[name]
    run(name, test, strategy, slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parser_survives_hostile_input_for_a_while(name: str) -> None:
    test, strategy = PARSERS[name]
    run(name, test, strategy, slow=True)


FLOW_TOO_DEEP = f": YAML nested too deeply ([ or {{ 50000 levels deep, at most {MAX_DEPTH})"
BLOCK_TOO_DEEP = f"YAML nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 50_000, FLOW_TOO_DEEP),
        ("{a: " * 50_000, FLOW_TOO_DEEP),
        ("- " * 50_000 + "x", f":1: {BLOCK_TOO_DEEP}"),
        ("".join(" " * i + "k:\n" for i in range(3000)), f":{MAX_DEPTH + 1}: {BLOCK_TOO_DEEP}"),
    ],
    ids=["flow-sequences", "flow-mappings", "block-sequences", "indentation"],
)
def test_deep_yaml_is_a_config_error_in_bounded_time(
    tmp_path: Path, text: str, reason: str
) -> None:
    """Refused by its depth, before PyYAML recurses on it (see tests/core/test_config_loader)."""
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as error:
        load_config(path, AgentConfig)
    assert error.value.problems == [f"{path}{reason}"]
    assert time.monotonic() - started < 10  # PyYAML alone: minutes for the flow sequences


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, AgentConfig)
    assert "its aliases expand it to" in str(error.value)


def test_a_huge_channel_list_is_refused_not_allocated() -> None:
    started = time.monotonic()
    with pytest.raises(ScpiError):
        channel_list("(@1:2000000000)")
    # Refused by its size before a number is made: making 2e9 of them would take minutes and
    # tens of GB (50 million took 2.7 s here), so 10 s tells the two apart with room for a
    # loaded machine's pauses.
    assert time.monotonic() - started < 10


def test_orjson_reads_what_the_wire_accepts() -> None:
    """The writer reads spool entries with orjson, ingest validated them with pydantic-core:
    2**63 and beyond are floats to both, as a value."""
    payload = dumps(
        {
            "schema": 1,
            "site": "lab-1",
            "agent": "bench-1",
            "seq": 0,
            "readings": [
                {
                    "instrument": "a",
                    "channel": "b",
                    "ts": 1_790_000_000_000_000_000,
                    "value": 2**64,
                    "unit": "V",
                    "quality": "good",
                }
            ],
        }
    )
    (good,), _, _ = decode_batch(payload, "lab-1", "bench-1")
    entry = decode_entry(payload)
    assert isinstance(entry, ReadingsBatch)
    assert float(entry.readings[0]["value"]) == good["value"] == float(2**64)
    assert orjson.loads(payload)["readings"][0]["value"] == float(2**64)
