"""The gateway's scheduled analytics: what one pass reads, computes, records, writes and publishes;
incremental reading; a store that fails; skipped ticks; the CPU work off the event loop."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.clock import ManualClock
from core.errors import StoreError
from core.spool import Spool
from gateway.analytics.aggregate import PeriodStat
from gateway.config import GatewayConfig
from gateway.ingest.events import EventHub, StandardEvaluated
from gateway.metrics import GatewayMetrics
from gateway.records.chain import LedgerSettings
from gateway.records.store import RecordStore
from gateway.standards import service as service_module
from gateway.standards.models import CertificateSpec, StandardSpec
from gateway.standards.service import StandardsService
from gateway.tsdb.line_protocol import parse_line
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import MetricsSample, ReadingsBatch
from gateway.tsdb.reader import RawReadings, SeriesRef
from gateway.tsdb.sqlite import SqliteStore
from gateway.tsdb.writer import decode_entry

T0 = 1_767_225_600_000_000_000  # 2026-01-01
DAY = 86_400_000_000_000


@dataclass
class Parts:
    config: GatewayConfig
    records: RecordStore
    spool: Spool
    store: SqliteStore
    hub: EventHub
    metrics: GatewayMetrics
    clock: ManualClock
    service: StandardsService
    events: list[StandardEvaluated]


def zener_readings(first_day: int, days: int, per_day: int = 6) -> ReadingsBatch:
    rng = np.random.default_rng(first_day)
    readings = []
    for day in range(first_day, first_day + days):
        for k in range(per_day):
            ts = T0 + day * DAY + k * (DAY // per_day) + 3_600_000_000_000
            value = 10.0 * (1 + (0.8 + 1.0 * day / 365.25) * 1e-6) + rng.normal(0, 2e-7)
            readings.append(
                {"instrument": "zener-10v", "channel": "voltage", "unit": "V", "ts": ts,
                 "value": float(value), "u": 5e-7, "quality": "good"}
            )  # fmt: skip
    return ReadingsBatch("lab-1", "bench-1", readings)


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    config = GatewayConfig.model_validate(
        {
            "site": "lab-1",
            "spool": {"path": str(tmp_path / "spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {"path": str(tmp_path / "records.db")},
            "standards": {
                "analytics_interval_s": 1,
                "baseline_periods": 5,
                "window_days": 400,
                "history": {"chunk_days": 10},
                "worker": "thread",
            },
        }
    )
    records = RecordStore(
        config.records.path, LedgerSettings.of(config.records, config.site, config.id)
    )
    spool = Spool(config.spool, "gateway")
    store = SqliteStore(config.store)  # type: ignore[arg-type]
    await records.open()
    await spool.open()
    await store.open()
    hub, metrics, clock = EventHub(), GatewayMetrics(), ManualClock(T0 + 60 * DAY)
    service = StandardsService(config, records, spool, hub, metrics, clock=clock)
    events: list[StandardEvaluated] = []
    hub.subscribe(StandardEvaluated, events.append)
    await service.registry.add_standard(
        StandardSpec.model_validate(
            {"id": "Z10-01", "kind": "dc_voltage", "nominal": 10, "unit": "V",
             "owner_lab": "VMI Electrical", "tolerance": "±5 ppm",
             "channels": [{"agent": "bench-1", "instrument": "zener-10v", "channel": "voltage",
                           "unit": "V"}]}
        ),
        "test",
    )  # fmt: skip
    for year, value in ((2023, 10.0000051), (2024, 10.0000062), (2025, 10.0000070)):
        await service.registry.add_certificate(
            "Z10-01",
            CertificateSpec.model_validate(
                {"number": f"VMI-{year}", "issuer": "VMI", "calibration_date": f"{year}-01-10",
                 "due_date": f"{year + 1}-01-10", "value": value, "expanded_uncertainty": 4e-7,
                 "coverage_factor": 2}
            ),
            "test",
        )  # fmt: skip
    yield Parts(config, records, spool, store, hub, metrics, clock, service, events)
    await service.close()
    await store.close()
    await spool.close()
    await records.close()


async def spooled(spool: Spool) -> list[MetricsSample]:
    entries = await spool.read(0, 100_000)
    samples = [decode_entry(entry.data) for entry in entries]
    assert all(isinstance(s, MetricsSample) for s in samples)
    return samples  # type: ignore[return-value]


async def test_one_pass_records_writes_and_publishes(parts: Parts) -> None:
    await parts.store.write([zener_readings(0, 50)])
    results = await parts.service.evaluate_all()
    assert [r.standard_id for r in results] == ["Z10-01"]
    result = results[0]
    channel = result.channels[0]
    assert channel.periods_used == 50
    assert channel.drift is not None
    assert channel.drift.slope_ppm_per_year == pytest.approx(1.0, abs=0.5)
    # The alert engine's event: every field the evaluation knows.
    (event,) = parts.events
    assert event == result.event()
    assert (event.site, event.standard_id, event.unit, event.ts_ns) == (
        "lab-1", "Z10-01", "V", T0 + 60 * DAY)  # fmt: skip
    assert event.measured == channel.measured and event.measured_u is not None
    assert event.reference is not None and event.reference_expanded_u is not None
    assert event.k is not None and event.tolerance_low == pytest.approx(9.99995)
    assert event.calibration_due_ns == result.calibration_due_ns is not None
    # The record store: latest in full, a summary per evaluation.
    latest = await parts.records.query("SELECT result FROM standard_latest")
    assert json.loads(latest[0]["result"])["format"] == "etalon.standards.evaluation/1"
    history = await parts.records.query("SELECT summary FROM standard_results")
    assert json.loads(history[0]["summary"])["measured"] == result.measured
    # The TSDB: through the spool, as points the stores write.
    samples = await spooled(parts.spool)
    by_measurement: dict[str, list[MetricsSample]] = {}
    for sample in samples:
        by_measurement.setdefault(sample.measurement, []).append(sample)
    assert len(by_measurement["standard_period"]) == 50
    fits = {s.tags["source"]: s for s in by_measurement["drift_fit"]}
    assert set(fits) == {"certificates", "channel"}
    assert fits["channel"].tags["channel"] == "voltage"
    assert fits["channel"].values["pi_low"] < fits["channel"].values["value"]
    (evaluation,) = by_measurement["standard_evaluation"]
    assert evaluation.values["reference"] == event.reference
    predicted = result.predicted_out_of_tolerance_ns
    assert predicted is not None  # a Zener drifting towards its limit
    assert evaluation.values["days_to_out_of_tolerance"] == pytest.approx(
        (predicted - result.ts_ns) / 86_400e9
    )
    builder = LineBuilder()
    for sample in samples:
        (line,) = builder.lines(sample)
        assert parse_line(line)[0] == sample.measurement
    assert (await parts.store.write(samples)).written > 0
    assert parts.metrics.standards_evaluations == 1


async def test_history_is_read_incrementally(parts: Parts) -> None:
    calls: list[tuple[int, int]] = []
    real = parts.service.reader

    class Recording:
        name = "recording"

        async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
            raise AssertionError("the service reads period statistics")

        async def read_periods(
            self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
        ) -> list[PeriodStat]:
            calls.append((start_ns, end_ns))
            return await real.read_periods(series, start_ns, end_ns, period_ns)

        async def close(self) -> None:
            await real.close()

    parts.service.reader = Recording()
    await parts.store.write([zener_readings(0, 30)])
    await parts.service.evaluate_all()
    first = list(calls)
    assert first[0][0] == T0 + 60 * DAY - 400 * DAY  # the whole window, in 10-day chunks
    assert all(b - a == 10 * DAY for a, b in first[:-1])
    calls.clear()
    await parts.store.write([zener_readings(30, 5)])
    parts.clock.advance(5 * 86_400)
    (result,) = await parts.service.evaluate_all()
    # Only from the period before the latest one seen (reread_periods = 2).
    assert calls[0][0] == T0 + 28 * DAY
    assert result.channels[0].periods_used == 35
    # Only new or changed period means are written again (day 29 was read again, unchanged).
    periods = [s for s in await spooled(parts.spool) if s.measurement == "standard_period"]
    assert len(periods) == 30 + 5


async def test_a_failing_store_is_counted_and_logged_once(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    real = parts.service.reader

    class Down:
        name = "down"

        async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
            raise StoreError("http://127.0.0.1:1: ConnectError: refused")

        async def read_periods(
            self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
        ) -> list[PeriodStat]:
            raise StoreError("http://127.0.0.1:1: ConnectError: refused")

        async def close(self) -> None:
            await real.close()

    await parts.service.registry.add_standard(
        StandardSpec.model_validate(
            {"id": "R1K-01", "kind": "resistance", "nominal": 1000, "unit": "Ω",
             "owner_lab": "VMI Electrical"}
        ),
        "test",
    )  # fmt: skip
    parts.service.reader = Down()
    caplog.set_level(logging.INFO, "etalon.gateway.standards")
    for _ in range(2):
        results = await parts.service.evaluate_all()
        assert [r.standard_id for r in results] == ["R1K-01"]  # the others still go on
    failures = [r for r in caplog.records if r.getMessage() == "standard evaluation failed"]
    assert len(failures) == 1 and "ConnectError" in str(failures[0].__dict__["reason"])
    assert parts.metrics.standards_evaluation_errors == 2
    parts.service.reader = real
    await parts.service.evaluate_all()
    assert [r.getMessage() for r in caplog.records].count("standard evaluation recovered") == 1


async def test_the_cpu_work_runs_on_the_analytics_thread(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = service_module.evaluate

    def spy(data: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(data)

    monkeypatch.setattr(service_module, "evaluate", spy)
    await parts.store.write([zener_readings(0, 10)])
    await parts.service.evaluate_all()
    assert threads and all(name.startswith("standards") for name in threads)


async def test_a_pass_that_overruns_skips_the_next_tick(parts: Parts) -> None:
    real = parts.service.reader
    slow = asyncio.Event()

    class Slow:
        name = "slow"

        async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
            return await real.read(series, start_ns, end_ns)

        async def read_periods(
            self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
        ) -> list[PeriodStat]:
            if not slow.is_set():
                slow.set()
                await asyncio.sleep(1.3)
            return await real.read_periods(series, start_ns, end_ns, period_ns)

        async def close(self) -> None:
            await real.close()

    parts.service.reader = Slow()
    task = asyncio.create_task(parts.service.run())
    # Pass 1 runs 0-1.3 s, the tick at 1 s is skipped, pass 2 runs at 2 s: waited for by its
    # count, not by a fixed time (a loaded machine finished it after 2.4 s once).
    async with asyncio.timeout(30):
        while parts.metrics.standards_evaluations < 2:  # noqa: ASYNC110 - counters have no event
            await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert parts.metrics.standards_evaluations_skipped == 1
    assert parts.metrics.standards_evaluations == 2


async def test_the_worker_process_evaluates_and_is_replaced_if_it_dies(
    parts: Parts, tmp_path: Path
) -> None:
    """The default worker is a process of its own; killed, it is replaced at the next pass."""
    import multiprocessing
    import os
    import signal

    config = parts.config.model_copy(
        update={"standards": parts.config.standards.model_copy(update={"worker": "process"})}  # type: ignore[union-attr]
    )
    service = StandardsService(
        config, parts.records, parts.spool, parts.hub, parts.metrics, clock=parts.clock
    )
    try:
        await parts.store.write([zener_readings(0, 20)])
        (first,) = await service.evaluate_all()
        assert first.channels[0].periods_used == 20
        (child,) = multiprocessing.active_children()
        assert os.getpriority(os.PRIO_PROCESS, child.pid or 0) >= 10  # yields to ingest
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(5)
        assert await service.evaluate_all() == []
        assert parts.metrics.standards_evaluation_errors == 1
        (again,) = await service.evaluate_all()
        assert again.channels[0].periods_used == 20
    finally:
        await service.close()


async def test_a_dated_baseline_is_read_from_before_the_window_and_stays_frozen(
    parts: Parts,
) -> None:
    await parts.service.registry.add_standard(
        StandardSpec.model_validate(
            {"id": "Z10-02", "kind": "dc_voltage", "nominal": 10, "unit": "V",
             "owner_lab": "VMI Electrical",
             "analysis": {"baseline_start": "2026-01-01", "baseline_end": "2026-02-28"},
             "channels": [{"agent": "bench-1", "instrument": "zener-10v", "channel": "voltage",
                           "unit": "V"}]}
        ),
        "test",
    )  # fmt: skip
    await parts.store.write([zener_readings(0, 460)])
    parts.clock.advance(400 * 86_400)  # now day 460: the 400-day window starts at day 60
    first = await parts.service.evaluate_one("Z10-02")
    channel = first.channels[0]
    assert channel.control_baseline is not None and channel.control_baseline.rule == "dated"
    assert channel.control_baseline.periods == 59  # 1 January to 28 February, all read back
    assert channel.periods_used == 400  # the drift fit keeps to the window
    await parts.store.write([zener_readings(460, 10)])
    parts.clock.advance(10 * 86_400)  # the window slides, ten more periods arrive
    # A standard on the same channel without a dated baseline reads only its window.
    assert (await parts.service.evaluate_one("Z10-01")).channels[0].periods_used == 400
    later = (await parts.service.evaluate_one("Z10-02")).channels[0]
    assert later.periods_used == 400 and later.measured_ts_ns != channel.measured_ts_ns
    assert (later.control_center, later.control_sigma, later.control_baseline) == (
        channel.control_center, channel.control_sigma, channel.control_baseline)  # fmt: skip


async def test_the_allan_deviation_is_written_per_averaging_time(parts: Parts) -> None:
    await parts.store.write([zener_readings(0, 50)])
    (result,) = await parts.service.evaluate_all()
    stability = result.channels[0].stability
    assert stability is not None and len(stability.points) >= 3
    samples = [s for s in await spooled(parts.spool) if s.measurement == "standard_stability"]
    assert [s.tags["tau"] for s in samples] == [format(p.tau, ".15g") for p in stability.points]
    assert samples[0].tags["tau"] == "86400" and samples[1].tags["tau"] == "172800"
    for sample, point in zip(samples, stability.points, strict=True):
        assert sample.ts_ns == result.ts_ns
        assert {k: v for k, v in sample.tags.items() if k != "tau"} == {
            "site": "lab-1", "standard": "Z10-01", "agent": "bench-1",
            "instrument": "zener-10v", "channel": "voltage"}  # fmt: skip
        values = sample.values
        assert values["deviation"] == point.deviation
        assert values["ci_low"] <= values["deviation"] <= values["ci_high"]
        assert values["deviation_ppm"] == pytest.approx(point.deviation / 10.0 * 1e6)
        assert (values["m"], values["tau_days"], values["periods"]) == (
            point.m, point.tau / 86_400, stability.n)  # fmt: skip
    builder = LineBuilder()
    (line,) = builder.lines(samples[0])
    assert parse_line(line)[0] == "standard_stability"
    written = await parts.store.write(samples)
    assert written.rejected == [] and written.written >= len(samples)


async def test_stopping_does_not_wait_for_a_long_job_nor_block_the_loop(
    parts: Parts,
) -> None:
    """A gateway asked to stop while its worker is busy (a long evaluation, a spawn on a loaded
    machine) stops in bounded time, and its event loop keeps serving meanwhile."""
    import multiprocessing
    import time
    from concurrent.futures.process import BrokenProcessPool

    config = parts.config.model_copy(
        update={"standards": parts.config.standards.model_copy(update={"worker": "process"})}  # type: ignore[union-attr]
    )
    service = StandardsService(
        config, parts.records, parts.spool, parts.hub, parts.metrics, clock=parts.clock
    )
    loop = asyncio.get_running_loop()
    busy = loop.run_in_executor(service._executor, time.sleep, 120)  # a job that will not end
    while not multiprocessing.active_children():  # noqa: ASYNC110 - a process has no event
        await asyncio.sleep(0.05)
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.05)
            ticks.append(time.monotonic())

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    await asyncio.wait_for(service.close(), 20)
    took = time.monotonic() - started
    ticker.cancel()
    assert took < 2 * service_module.CLOSE_TIMEOUT_S + 5, took
    # The loop was not held while waiting: a close that blocked it would leave one gap of a
    # whole wait (CLOSE_TIMEOUT_S, the worker's join). Judged by the longest gap, not by a
    # count of 50 ms ticks, which a loaded machine's late wake-ups cut by half with no fault.
    gaps = [b - a for a, b in itertools.pairwise([started, *ticks, started + took])]
    assert max(gaps) < service_module.CLOSE_TIMEOUT_S, (max(gaps), len(ticks), took)
    assert not multiprocessing.active_children()  # the busy worker was ended
    with pytest.raises(BrokenProcessPool):
        await busy
