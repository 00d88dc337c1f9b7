"""Line protocol built by etalon: escaping, field types, refusals, and what a real influxd reads."""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.tsdb.config import InfluxV1StoreConfig
from gateway.tsdb.influx_v1 import InfluxV1Store
from gateway.tsdb.line_protocol import LineError, format_field, line, parse_line, series_key
from gateway.tsdb.points import MetricsSample, ReadingsBatch
from tests.support.services import Influxd

GOLDEN = [
    # (measurement, tags, fields, expected line)
    (
        "reading",
        {"site": "hanoi", "unit": "V"},
        {"value": 10.5},
        "reading,site=hanoi,unit=V value=10.5 1",
    ),
    (
        "my reading",
        {"a b": "c,d", "e=f": "g h"},
        {"x y": 1},
        r"my\ reading,a\ b=c\,d,e\=f=g\ h x\ y=1i 1",
    ),
    (
        "m,1",
        {"unit": "°C", "empty": ""},
        {"ok": True, "bad": False},
        r"m\,1,unit=°C ok=true,bad=false 1",
    ),
    ("m", {}, {"reason": 'say "hi" \\ bye'}, r'm reason="say \"hi\" \\ bye" 1'),
    (
        "m",
        {},
        {"big": 2**63 - 1, "neg": -(2**63)},
        "m big=9223372036854775807i,neg=-9223372036854775808i 1",
    ),
    ("m", {}, {"tiny": 5e-07, "third": 1 / 3}, "m tiny=5e-07,third=0.3333333333333333 1"),
]


@pytest.mark.parametrize(("measurement", "tags", "fields", "expected"), GOLDEN)
def test_golden_lines(
    measurement: str, tags: dict[str, str], fields: dict[str, object], expected: str
) -> None:
    built = line(series_key(measurement, tags), fields, 1)  # type: ignore[arg-type]
    assert built == expected
    m, t, f, ts = parse_line(built)
    assert (m, t, f, ts) == (measurement, {k: v for k, v in tags.items() if v}, fields, 1)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: format_field(math.nan), "not finite"),
        (lambda: format_field(math.inf), "not finite"),
        (lambda: format_field(2**63), "does not fit 64 bits"),
        (lambda: format_field("two\nlines"), "newline"),
        (lambda: series_key("m", {"t": "a\nb"}), "newline"),
        (lambda: series_key("", {}), "empty"),
        (lambda: series_key("m", {"unit": "a\\b"}), "backslash"),
        (lambda: line("m", {}, 1), "at least one field"),
        (lambda: line("m", {"v": 1.0}, 1.5), "integer of nanoseconds"),
        (lambda: format_field(None), "unsupported field type"),
    ],
)
def test_what_cannot_be_written_is_refused(build: object, message: str) -> None:
    with pytest.raises(LineError, match=message):
        build()  # type: ignore[operator]


names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\"),
    min_size=1,
    max_size=20,
)
field_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(
    measurement=names,
    tags=st.dictionaries(names, names, max_size=4),
    fields=st.dictionaries(names, field_values, min_size=1, max_size=4),
    ts=st.integers(min_value=0, max_value=2**62),
)
def test_any_point_round_trips(
    measurement: str, tags: dict[str, str], fields: dict[str, object], ts: int
) -> None:
    text = line(series_key(measurement, tags), fields, ts)  # type: ignore[arg-type]
    assert "\n" not in text
    assert parse_line(text) == (measurement, tags, fields, ts)


def test_nasty_strings_survive_a_real_influxd(influxd: Influxd) -> None:
    db = f"lp{uuid.uuid4().hex[:8]}"
    nasty_unit = "m s,=°C µΩ %rh"
    reason = 'quote " backslash \\ comma , equals = space  tiếng Việt'
    readings = [
        {
            "instrument": "dmm 1",
            "channel": "v,x=1",
            "ts": 1_790_000_000_000_000_000 + i,
            "value": v,
            "unit": nasty_unit,
            "quality": q,
            "reason": reason,
            "u": 1e-7,
            "tags": {"standard": "Z 10,01=a"},
        }
        for i, (v, q) in enumerate(
            [(10.000001, "good"), (True, "uncertain"), (None, "bad"), ("OVLD", "bad")]
        )
    ]

    async def write() -> None:
        store = InfluxV1Store(
            InfluxV1StoreConfig(
                kind="influxdb_v1", url=influxd.url, database=db, create_database=True
            )
        )
        await store.open()
        result = await store.write(
            [
                ReadingsBatch("site-1", "agent-1", readings),
                MetricsSample(
                    "etalon_agent",
                    {"site": "site-1", "agent": "agent-1"},
                    1_790_000_000_000_000_000,
                    {"readings_read": 4, "lag_ms": 1.5},
                ),
            ]
        )
        await store.close()
        assert result.written == 5 and not result.rejected

    asyncio.run(write())
    answer = influxd.query("SELECT * FROM reading GROUP BY *", db)
    series = answer["results"][0]["series"]
    assert len(series) == 1
    assert series[0]["tags"] == {
        "agent": "agent-1",
        "channel": "v,x=1",
        "instrument": "dmm 1",
        "site": "site-1",
        "standard": "Z 10,01=a",
        "unit": nasty_unit,
    }
    columns = series[0]["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in series[0]["values"]]
    assert [r["value"] for r in rows] == [10.000001, 1.0, None, None]
    assert [r["text"] for r in rows] == [None, None, None, "OVLD"]
    assert [r["quality"] for r in rows] == [0, 1, 2, 2]
    assert {r["reason"] for r in rows} == {reason}
    metrics = influxd.query("SELECT readings_read, lag_ms FROM etalon_agent", db)
    assert metrics["results"][0]["series"][0]["values"][0][1:] == [4, 1.5]


def test_a_point_the_store_refuses_is_isolated_and_the_rest_written(influxd: Influxd) -> None:
    """influxd refuses a field whose type conflicts with the shard's; bisection finds it."""
    db = f"lp{uuid.uuid4().hex[:8]}"

    async def write() -> tuple[int, list[tuple[str, str]]]:
        store = InfluxV1Store(
            InfluxV1StoreConfig(
                kind="influxdb_v1", url=influxd.url, database=db, create_database=True
            )
        )
        await store.open()
        first = MetricsSample("m", {"s": "a"}, 1_790_000_000_000_000_000, {"x": 1.5})
        await store.write([first])
        conflicting = [
            MetricsSample(
                "m",
                {"s": "a"},
                1_790_000_000_000_000_000 + i,
                {"x": "text" if i == 7 else float(i)},
            )
            for i in range(1, 20)
        ]
        result = await store.write(conflicting)
        await store.close()
        return result.written, result.rejected

    written, rejected = asyncio.run(write())
    assert written == 18
    assert len(rejected) == 1
    assert 'x="text"' in rejected[0][0] and "field type conflict" in rejected[0][1]
    count = influxd.query("SELECT COUNT(x) FROM m", db)["results"][0]["series"][0]["values"][0][1]
    assert count == 19
