"""The history readers against the real stores: what the gateway's own store classes wrote is
read back -- good readings only, of the right series and unit, in the asked time range."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import StoreError
from gateway.standards.config import HistoryConfig
from gateway.tsdb.config import InfluxV1StoreConfig, InfluxV2StoreConfig, SqliteStoreConfig
from gateway.tsdb.factory import build_periods_reader, build_store
from gateway.tsdb.influx_v2 import AutoV2Periods
from gateway.tsdb.points import ReadingsBatch
from gateway.tsdb.reader import FAR_FUTURE_NS, PeriodsReader, RawReadings, SeriesRef
from tests.support.services import Influxd, VictoriaMetrics, free_port

T0 = 1_767_225_600_000_000_000
SERIES = SeriesRef("lab-1", "bench-1", "zener-10v", "voltage", "V")


def readings() -> list[ReadingsBatch]:
    good = [
        {
            "instrument": "zener-10v",
            "channel": "voltage",
            "unit": "V",
            "ts": T0 + i * 1_000_000_123,
            "value": 10.0 + i * 1e-7,
            "u": 5e-7,
            "quality": "good",
            "tags": {"standard": "Z10-01"},
        }
        for i in range(10)
    ]
    others = [
        # no u: NaN; uncertain and bad readings are left out; other channel, other unit, other
        # agent are other series.
        {"instrument": "zener-10v", "channel": "voltage", "unit": "V", "ts": T0 + 30 * 10**9,
         "value": 10.000003, "quality": "good"},
        {"instrument": "zener-10v", "channel": "voltage", "unit": "V", "ts": T0 + 20 * 10**9,
         "value": 11.0, "quality": "uncertain", "reason": "overload"},
        {"instrument": "zener-10v", "channel": "voltage", "unit": "V", "ts": T0 + 21 * 10**9,
         "value": None, "quality": "bad", "reason": "timeout"},
        {"instrument": "zener-10v", "channel": "temperature", "unit": "°C", "ts": T0 + 22 * 10**9,
         "value": 23.0, "quality": "good"},
        {"instrument": "zener-10v", "channel": "voltage", "unit": "mV", "ts": T0 + 23 * 10**9,
         "value": 10000.0, "quality": "good"},
    ]  # fmt: skip
    other_agent = [dict(good[0], value=99.0)]
    return [
        ReadingsBatch("lab-1", "bench-1", good + others),
        ReadingsBatch("lab-1", "bench-2", other_agent),
    ]


@pytest.fixture
async def executor() -> AsyncIterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="standards-test")
    yield pool
    pool.shutdown(wait=True)


async def write_and_read(
    store_config: Any,
    history: HistoryConfig,
    executor: ThreadPoolExecutor,
    write_config: Any = None,
) -> tuple[PeriodsReader, Callable[[int, int], Any]]:
    store = build_store(write_config or store_config)
    await store.open()
    try:
        result = await store.write(readings())
        assert result.rejected == []
    finally:
        await store.close()
    reader = build_periods_reader(store_config, history, executor)

    async def read(start: int, end: int) -> RawReadings:
        return await reader.read(SERIES, start, end)

    return reader, read


def check_full(raw: RawReadings, ms_only: bool) -> None:
    step = 1_000_000_000 if ms_only else 1_000_000_123
    assert (raw.ts - T0).tolist() == [i * step for i in range(10)] + [30 * 10**9]
    assert raw.values.tolist() == pytest.approx([10.0 + i * 1e-7 for i in range(10)] + [10.000003])
    assert raw.u[:10].tolist() == [5e-7] * 10
    assert np.isnan(raw.u[10])


async def test_sqlite(tmp_path: Path, executor: ThreadPoolExecutor) -> None:
    config = SqliteStoreConfig(path=tmp_path / "readings.db")
    reader, read = await write_and_read(config, HistoryConfig(), executor)
    try:
        assert reader.name == "sqlite"
        check_full(await read(T0, FAR_FUTURE_NS), ms_only=False)
        window = await read(T0 + 2_000_000_246, T0 + 5_000_000_615)
        assert (window.ts - T0).tolist() == [2_000_000_246, 3_000_000_369, 4_000_000_492]
    finally:
        await reader.close()


async def test_sqlite_before_anything_was_written(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    store = build_store(SqliteStoreConfig(path=tmp_path / "empty.db"))
    await store.open()
    await store.close()
    reader = build_periods_reader(
        SqliteStoreConfig(path=tmp_path / "empty.db"), HistoryConfig(), executor
    )
    assert (await reader.read(SERIES, 0, FAR_FUTURE_NS)).ts.size == 0
    await reader.close()


async def test_influxdb_1x_influxql(influxd: Influxd, executor: ThreadPoolExecutor) -> None:
    database = f"history_{uuid.uuid4().hex[:8]}"
    config = InfluxV1StoreConfig(
        kind="influxdb_v1", url=influxd.url, database=database, create_database=True
    )
    reader, read = await write_and_read(config, HistoryConfig(), executor)
    try:
        assert reader.name == "influxql"
        check_full(await read(T0, FAR_FUTURE_NS), ms_only=False)
        window = await read(T0 + 2_000_000_246, T0 + 5_000_000_615)
        assert (window.ts - T0).tolist() == [2_000_000_246, 3_000_000_369, 4_000_000_492]
    finally:
        await reader.close()


async def test_v2_store_without_victoria_export_falls_back_to_influxql(
    influxd: Influxd, executor: ThreadPoolExecutor
) -> None:
    """An InfluxDB v2 API store whose server has no /api/v1/export (influxd here, standing in
    for InfluxDB 2.x with a DBRP mapping) is read through /query with the bucket as database."""
    database = f"history_{uuid.uuid4().hex[:8]}"
    writer = InfluxV1StoreConfig(
        kind="influxdb_v1", url=influxd.url, database=database, create_database=True
    )
    config = InfluxV2StoreConfig(kind="influxdb_v2", url=influxd.url, bucket=database)
    reader, read = await write_and_read(config, HistoryConfig(), executor, writer)
    try:
        assert isinstance(reader, AutoV2Periods)
        check_full(await read(T0, FAR_FUTURE_NS), ms_only=False)
        assert reader.name == "influxql"
    finally:
        await reader.close()


async def test_victoria_metrics_export(
    victoria_dedup: VictoriaMetrics, executor: ThreadPoolExecutor
) -> None:
    config = InfluxV2StoreConfig(kind="influxdb_v2", url=victoria_dedup.url, bucket="etalon")
    reader, read = await write_and_read(config, HistoryConfig(), executor)
    try:
        victoria_dedup.export()  # flushes VictoriaMetrics' buffers
        check_full(await read(T0, FAR_FUTURE_NS), ms_only=True)
        assert reader.name == "victoriametrics"
        window = await read(T0 + 2_000_000_000, T0 + 5_000_000_000)
        assert (window.ts - T0).tolist() == [2_000_000_000, 3_000_000_000, 4_000_000_000]
    finally:
        await reader.close()


async def test_a_store_that_does_not_answer_is_a_store_error(
    executor: ThreadPoolExecutor,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for config in (
        InfluxV2StoreConfig(kind="influxdb_v2", url=url, bucket="b", timeout_s=2),
        InfluxV1StoreConfig(kind="influxdb_v1", url=url, database="d", timeout_s=2),
    ):
        reader = build_periods_reader(config, HistoryConfig(), executor)
        try:
            with pytest.raises(StoreError, match="ConnectError"):
                await reader.read(SERIES, 0, FAR_FUTURE_NS)
        finally:
            await reader.close()


async def test_influxql_errors_are_store_errors(
    influxd: Influxd, executor: ThreadPoolExecutor
) -> None:
    config = InfluxV1StoreConfig(kind="influxdb_v1", url=influxd.url, database="does_not_exist")
    reader = build_periods_reader(config, HistoryConfig(), executor)
    try:
        with pytest.raises(StoreError, match="database not found"):
            await reader.read(SERIES, 0, FAR_FUTURE_NS)
    finally:
        await reader.close()


def test_history_api_must_fit_the_store() -> None:
    from gateway.config import GatewayConfig

    base = {
        "site": "s",
        "spool": {"path": "/tmp/s"},
        "records": {"path": "/tmp/r"},
        "store": {"kind": "sqlite", "path": "/tmp/x"},
    }
    with pytest.raises(ValueError, match="cannot read a sqlite store"):
        GatewayConfig.model_validate(base | {"standards": {"history": {"api": "influxql"}}})
    GatewayConfig.model_validate(base | {"standards": {"history": {"api": "sqlite"}}})
