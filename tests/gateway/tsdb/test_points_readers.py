"""History readers read back what the stores wrote: raw when the range is small, downsampled
into equal buckets when it is not — the same answer from SQLite, influxd 1.x and VictoriaMetrics."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.tsdb.config import (
    HistoryQueryConfig,
    InfluxV1StoreConfig,
    InfluxV2StoreConfig,
    SqliteStoreConfig,
)
from gateway.tsdb.factory import build_points_reader, build_store
from gateway.tsdb.influx_v2 import AutoPoints
from gateway.tsdb.points import ReadingsBatch
from gateway.tsdb.reader import HistoryPoint, PointsReader, bucket_width_ns
from tests.support.services import Influxd, VictoriaMetrics

MS = 1_000_000
SITE, AGENT, INSTRUMENT, CHANNEL = "lab-1", "bench-1", "zener-10v", "voltage"
# Two hours ago (VictoriaMetrics' query API hides the last 30 s), on a whole second, so
# readings 100 ms past each 200 ms tick never sit on a bucket boundary in any store.
T0 = (1_795_000_000 - 7200) * 1_000_000_000
N = 3000  # ten minutes at 200 ms


def reading(i: int) -> dict[str, Any]:
    """Reading i: a slow ramp with a wiggle; every 97th is bad without a value, every 31st
    uncertain."""
    ts = T0 + 100 * MS + i * 200 * MS
    base = {"instrument": INSTRUMENT, "channel": CHANNEL, "ts": ts, "unit": "V"}
    if i % 97 == 5:
        return base | {"value": None, "quality": "bad", "reason": "garbage reply"}
    quality = "uncertain" if i % 31 == 7 else "good"
    return base | {"value": 10.0 + 1e-9 * i + 1e-7 * math.sin(i / 7), "quality": quality, "u": 5e-7}


READINGS = [reading(i) for i in range(N)]
QUALITY = {"good": 0, "uncertain": 1, "bad": 2}


def expected_raw(start: int, end: int) -> list[HistoryPoint]:
    out = []
    for r in READINGS:
        if start <= r["ts"] < end:
            v = r["value"]
            out.append(HistoryPoint(r["ts"], v, v, v, 1, QUALITY[r["quality"]], r.get("u")))
    return out


def expected_buckets(start: int, end: int, max_points: int) -> list[HistoryPoint]:
    width = bucket_width_ns(start, end, max_points)
    buckets: dict[int, list[dict[str, Any]]] = {}
    for r in READINGS:
        if start <= r["ts"] < end:
            buckets.setdefault((r["ts"] - start) // width, []).append(r)
    out = []
    for b, rows in sorted(buckets.items()):
        values = [r["value"] for r in rows if r["value"] is not None]
        out.append(
            HistoryPoint(
                start + b * width,
                sum(values) / len(values) if values else None,
                min(values) if values else None,
                max(values) if values else None,
                len(values),
                max(QUALITY[r["quality"]] for r in rows),
                None,
                span_ns=width,
            )
        )
    return out


def assert_same(got: list[HistoryPoint], want: list[HistoryPoint]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.ts_ns == w.ts_ns, (g, w)
        assert (g.count, g.quality, g.span_ns) == (w.count, w.quality, w.span_ns), (g, w)
        for field in ("value", "min", "max", "u"):
            a, b = getattr(g, field), getattr(w, field)
            assert (a is None) == (b is None), (field, g, w)
            if a is not None:
                assert a == pytest.approx(b, rel=1e-12, abs=1e-15), (field, g, w)


async def write_and_check(
    store_config: Any, reader: PointsReader, flush: Callable[[], object] = lambda: None
) -> None:
    store = build_store(store_config)
    await store.open()
    try:
        result = await store.write([ReadingsBatch(SITE, AGENT, READINGS)])
        assert result.written == N and not result.rejected
    finally:
        await store.close()
    flush()
    try:
        key = (SITE, AGENT, INSTRUMENT, CHANNEL)
        # Ten seconds: 50 readings, under max_points, so raw (with the bad one's quality).
        start, end = T0 + 20_000 * MS, T0 + 30_000 * MS
        raw = await reader.read(*key, start, end, 100)
        assert_same(raw, expected_raw(start, end))
        # The whole ten minutes into at most 100 buckets of 6 s.
        start, end = T0, T0 + 600_000 * MS
        buckets = await reader.read(*key, start, end, 100)
        assert_same(buckets, expected_buckets(start, end, 100))
        assert len(buckets) == 100 and all(p.span_ns == 6000 * MS for p in buckets)
        # Nothing for another channel, and nothing outside the data.
        assert await reader.read(SITE, AGENT, INSTRUMENT, "nope", start, end, 100) == []
        assert await reader.read(*key, T0 - 3_600_000 * MS, T0, 100) == []
        with pytest.raises(ValueError, match="after its start"):
            await reader.read(*key, end, start, 100)
    finally:
        await reader.close()


async def test_sqlite_history(tmp_path: Path) -> None:
    config = SqliteStoreConfig(path=tmp_path / "readings.db")
    reader = build_points_reader(config)
    assert await reader.read(SITE, AGENT, INSTRUMENT, CHANNEL, T0, T0 + 1, 10) == []  # no file yet
    await write_and_check(config, reader)


async def test_influxql_history_from_influxd(influxd: Influxd) -> None:
    config = InfluxV1StoreConfig(
        kind="influxdb_v1",
        url=influxd.url,  # type: ignore[arg-type]  # pydantic parses the URL
        database=f"history_{uuid.uuid4().hex[:8]}",
        create_database=True,
    )
    await write_and_check(config, build_points_reader(config))


async def test_prometheus_history_from_victoria_metrics(victoria_dedup: VictoriaMetrics) -> None:
    config = InfluxV2StoreConfig(
        kind="influxdb_v2",
        url=victoria_dedup.url,  # type: ignore[arg-type]  # pydantic parses the URL
        bucket="etalon",
    )
    reader = build_points_reader(config, HistoryQueryConfig())
    assert isinstance(reader, AutoPoints)
    # VictoriaMetrics keeps milliseconds: the readings are on whole milliseconds already.
    # Its export flushes what was written, as a second of waiting would.
    await write_and_check(config, reader, flush=victoria_dedup.export)
    assert reader.chosen == "prometheus"
