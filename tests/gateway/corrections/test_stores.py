"""Every store backend keeps a corrected reading's corrected value, its u and the certificate's
id beside the raw value, and its history reader gives them back: SQLite, influxd 1.x (v1 write
API, InfluxQL) and VictoriaMetrics (v2 write API, export)."""

from __future__ import annotations

import uuid
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
from gateway.tsdb.lines import reading_line
from gateway.tsdb.points import ReadingsBatch
from tests.support.services import Influxd, VictoriaMetrics

MS = 1_000_000
T0 = (1_795_000_000 - 7200) * 1_000_000_000
KEY = ("lab", "bath-1", "prt", "temperature")


def readings() -> list[dict[str, Any]]:
    base = {"instrument": "prt", "channel": "temperature", "unit": "°C", "quality": "good"}
    return [
        base | {"ts": T0, "value": 25.0212},  # before any link: raw only
        base | {"ts": T0 + MS, "value": 25.0212, "corrected": 25.000012345678901,
                "u_corrected": 0.0050001234, "certificate": 'PRT "A", 2026',
                "certificate_id": 3, "conformity": 0},
        base | {"ts": T0 + 2 * MS, "value": 120.0, "quality": "uncertain",
                "reason": "calibration_range: indication 120.0 outside …",
                "corrected": 119.99, "u_corrected": 0.02, "certificate": "PRT-B",
                "certificate_id": 4, "conformity": 3, "calibration": 1},
    ]  # fmt: skip


def test_line_protocol_carries_the_fields() -> None:
    line = reading_line("reading,channel=t", readings()[1])
    assert line == (
        "reading,channel=t value=25.0212,quality=0i,corrected=25.0000123457,"
        'u_corrected=0.005,certificate="PRT \\"A\\", 2026",certificate_id=3i,conformity=0i '
        f"{T0 + MS}"
    )


async def round_trip(config: Any, reader: Any, flush: Any = lambda: None) -> None:
    store = build_store(config)
    await store.open()
    try:
        result = await store.write([ReadingsBatch("lab", "bath-1", readings())])
        assert not result.rejected
    finally:
        await store.close()
    flush()
    try:
        points = await reader.read(*KEY, T0 - MS, T0 + 10 * MS, 100)
    finally:
        await reader.close()
    assert [p.ts_ns for p in points] == [T0, T0 + MS, T0 + 2 * MS]
    raw, corrected, outside = points
    assert (raw.value, raw.corrected, raw.u_corrected, raw.certificate_id) == (
        25.0212, None, None, None,
    )  # fmt: skip
    assert corrected.value == 25.0212
    assert corrected.corrected == pytest.approx(25.000012345678901, rel=1e-11)
    assert corrected.u_corrected == pytest.approx(0.005, rel=1e-3)
    assert corrected.certificate_id == 3
    assert (outside.quality, outside.certificate_id) == (1, 4)


async def test_sqlite(tmp_path: Path) -> None:
    config = SqliteStoreConfig(path=tmp_path / "readings.db")
    await round_trip(config, build_points_reader(config))


async def test_influxd(influxd: Influxd) -> None:
    config = InfluxV1StoreConfig(
        kind="influxdb_v1",
        url=influxd.url,  # type: ignore[arg-type]  # pydantic parses the URL
        database=f"corrections_{uuid.uuid4().hex[:8]}",
        create_database=True,
    )
    await round_trip(config, build_points_reader(config))


async def test_victoria_metrics(victoria_dedup: VictoriaMetrics) -> None:
    config = InfluxV2StoreConfig(
        kind="influxdb_v2",
        url=victoria_dedup.url,  # type: ignore[arg-type]  # pydantic parses the URL
        bucket="etalon",
    )
    reader = build_points_reader(config, HistoryQueryConfig())
    await round_trip(config, reader, flush=victoria_dedup.export)
