"""The gateway's scheduled analytics of reference standards (a task of its own).

Every ``analytics_interval_s`` each active standard is evaluated: its linked channels' history is
read back from the time-series store (incrementally: settled periods are kept in memory, the
latest ``reread_periods`` are read again, everything after ``full_refresh_s``), aggregated to
period means, and :func:`gateway.standards.evaluation.evaluate` runs on the analytics' own
thread. The result goes

- to the time-series store through the gateway's spool (``standard_evaluation``, ``drift_fit``,
  ``standard_period``), so Grafana can draw the fit, its bands and the period means;
- to the record store (``standard_latest``: the full result; ``standard_results``: a summary of
  every evaluation);
- to the event hub as :class:`gateway.ingest.events.StandardEvaluated`, for the alert engine.

Ingest is never delayed: the CPU work -- the SQL of the embedded store, parsing HTTP bodies,
aggregating, fitting, serialising -- runs on one worker, by default a process of its own at low
priority (``worker: process``), so it takes neither the gateway's interpreter lock nor, when the
machine is busy, ingest's CPU; one job at a time. A pass that overruns its interval skips the
next tick and counts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import (
    BrokenExecutor,
)
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.clock import Clock, build_clock
from core.errors import EtalonError, StoreError
from core.logs import log_event
from core.spool import Spool
from gateway.analytics.aggregate import PeriodStat
from gateway.config import GatewayConfig
from gateway.ingest.events import EventHub
from gateway.metrics import GatewayMetrics
from gateway.records.store import RecordStore
from gateway.standards.config import StandardsConfig
from gateway.standards.evaluation import evaluate
from gateway.standards.points import tsdb_points
from gateway.standards.registry import Registry, StandardRecord
from gateway.standards.results import (
    NS_PER_DAY,
    ChannelInput,
    StandardInput,
    StandardResult,
    baseline_dates,
    certificate_inputs,
    date_ns,
)
from gateway.standards.worker import Worker
from gateway.tsdb.factory import build_periods_reader
from gateway.tsdb.reader import FAR_FUTURE_NS, PeriodsReader, SeriesRef

log = logging.getLogger("etalon.gateway.standards")


@dataclass
class _ChannelHistory:
    """Period statistics of one series kept between evaluations."""

    period_ns: int
    periods: dict[int, PeriodStat] = field(default_factory=dict)
    settled_until_ns: int | None = None
    loaded_at: float = 0.0
    written: dict[int, tuple[int, float]] = field(default_factory=dict)


@dataclass
class _Prepared:
    """What the analytics' thread hands back: the result and its serialised forms."""

    result: StandardResult
    result_json: str
    summary_json: str
    points: list[bytes]


CLOSE_TIMEOUT_S = 3.0
"""At stop, how long the reader's close and the worker's current job may take."""


class StandardsService:
    """See the module doc."""

    def __init__(
        self,
        config: GatewayConfig,
        records: RecordStore,
        spool: Spool,
        hub: EventHub,
        metrics: GatewayMetrics,
        reader: PeriodsReader | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.options: StandardsConfig = config.standards or StandardsConfig()
        self.registry = Registry(
            records, self.options.certificates_path(config.records.path), config.site
        )
        self.records = records
        self.spool = spool
        self.hub = hub
        self.metrics = metrics
        self.clock = clock or build_clock(self.options.clock)
        self._executor = Worker(self.options.worker)
        self.reader = reader or build_periods_reader(
            config.store, self.options.history, self._executor
        )
        self._histories: dict[tuple[SeriesRef, int, int | None], _ChannelHistory] = {}
        self._lock = asyncio.Lock()
        self._failing: dict[str, str] = {}
        self.results: dict[str, StandardResult] = {}
        self.evaluations = 0

    async def run(self) -> None:
        """Evaluate every active standard every ``analytics_interval_s`` until cancelled."""
        loop = asyncio.get_running_loop()
        interval = self.options.analytics_interval_s
        log_event(
            log,
            logging.INFO,
            "standards analytics started",
            interval_s=interval,
            history=self.reader.name,
        )
        try:
            next_tick = loop.time()
            while True:
                await self.evaluate_all()
                next_tick += interval
                now = loop.time()
                if now > next_tick:
                    skipped = int((now - next_tick) // interval) + 1
                    self.metrics.standards_evaluations_skipped += skipped
                    next_tick += skipped * interval
                await asyncio.sleep(next_tick - now)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the history reader and stop the analytics' worker, in bounded time: a
        gateway that is asked to stop does not wait for a long evaluation."""
        try:
            await asyncio.wait_for(self.reader.close(), CLOSE_TIMEOUT_S)
        except (StoreError, RuntimeError, TimeoutError) as exc:  # a worker gone, or busy
            log_event(log, logging.DEBUG, "history reader close", reason=str(exc) or "timeout")
        finally:
            await self._executor.stop(CLOSE_TIMEOUT_S)

    async def evaluate_all(self) -> list[StandardResult]:
        """Evaluate every active standard once; a failing standard does not stop the others."""
        try:
            standards = await self.registry.standards(active_only=True)
        except StoreError as exc:
            self._state("*", str(exc))
            return []
        results = []
        for standard in standards:
            result = await self._evaluate_logged(standard)
            if result is not None:
                results.append(result)
        return results

    async def evaluate_one(self, standard_id: str) -> StandardResult:
        """Evaluate one standard now (the API's "evaluate"); raises what went wrong."""
        standard = await self.registry.standard(standard_id)
        try:
            return await self._evaluate(standard)
        except BrokenExecutor as exc:
            self._executor.restart()
            raise StoreError(f"the analytics worker died ({exc}); it was restarted") from None

    async def _evaluate_logged(self, standard: StandardRecord) -> StandardResult | None:
        try:
            result = await self._evaluate(standard)
        except (EtalonError, ValueError) as exc:
            self._state(standard.id, f"{type(exc).__name__}: {exc}")
            return None
        except BrokenExecutor as exc:
            self._state(standard.id, f"the analytics worker died ({exc}); restarted")
            self._executor.restart()
            return None
        self._state(standard.id, None)
        return result

    def _state(self, standard_id: str, reason: str | None) -> None:
        """Log a standard's evaluation failing or recovering, once per change."""
        if reason is None:
            if self._failing.pop(standard_id, None) is not None:
                log_event(log, logging.INFO, "standard evaluation recovered", standard=standard_id)
            return
        self.metrics.standards_evaluation_errors += 1
        if self._failing.get(standard_id) != reason:
            log_event(
                log,
                logging.WARNING,
                "standard evaluation failed",
                standard=standard_id,
                reason=reason,
            )
        self._failing[standard_id] = reason

    async def _evaluate(self, standard: StandardRecord) -> StandardResult:
        async with self._lock:
            started = time.perf_counter()
            now_ns = self.clock.now_ns()
            overrides = standard.analysis
            period_s = overrides.period_s or self.options.period_s
            period_ns = round(period_s * 1e9)
            dated = baseline_dates(overrides, self.options)
            channels = []
            new_periods: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            written: list[tuple[_ChannelHistory, dict[int, tuple[int, float]]]] = []
            for link in standard.channels:
                site = link.site or self.config.site
                series = SeriesRef(site, link.agent, link.instrument, link.channel, link.unit)
                history = await self._history(
                    series, period_ns, now_ns, date_ns(dated[0]) if dated else None
                )
                periods = [history.periods[start] for start in sorted(history.periods)]
                label = f"{site}:{link.agent}/{link.instrument}/{link.channel}"
                points, keys = self._new_periods(history, link.scale, link.offset)
                new_periods[label] = points
                written.append((history, keys))
                channels.append(ChannelInput(link, site, periods))
            data = StandardInput(
                standard_id=standard.id,
                site=(standard.channels[0].site or self.config.site)
                if standard.channels
                else self.config.site,
                unit=standard.unit,
                nominal=standard.nominal,
                tolerance=standard.tolerance,
                certificates=certificate_inputs(standard.certificates),
                channels=channels,
                certificate_model=overrides.certificate_model or self.options.certificate_model,
                monitor_model=overrides.monitor_model or self.options.monitor_model,
                period_s=period_s,
                now_ns=now_ns,
                options=self.options,
                baseline=dated,
            )
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(self._executor, _prepare, data, new_periods)
            await self.records.run(lambda db: _record(db, prepared))
            if prepared.points:
                await self.spool.append(prepared.points)
            for history, keys in written:
                history.written.update(keys)
            result = prepared.result
            self.results[standard.id] = result
            self.evaluations += 1
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.metrics.standards_evaluations += 1
            self.metrics.standards_evaluation_ms = elapsed_ms
            self.metrics.standards_evaluation_ms_max = max(
                self.metrics.standards_evaluation_ms_max, elapsed_ms
            )
            self.hub.publish(result.event())
            log_event(
                log,
                logging.DEBUG,
                "standard evaluated",
                standard=standard.id,
                ms=round(elapsed_ms, 1),
                oot=result.predicted_out_of_tolerance_ns,
            )
            return result

    def _new_periods(
        self, history: _ChannelHistory, scale: float, offset: float
    ) -> tuple[list[tuple[int, dict[str, Any]]], dict[int, tuple[int, float]]]:
        """Period means not yet written (or changed since), as standard_period points, and the
        keys to remember once they are spooled."""
        out = []
        keys: dict[int, tuple[int, float]] = {}
        for start, period in sorted(history.periods.items()):
            key = (period.n, period.mean)
            if history.written.get(start) == key:
                continue
            keys[start] = key
            sd = period.sd
            out.append(
                (
                    start + history.period_ns // 2,
                    {
                        "mean": float(scale * period.mean + offset),
                        "sd": None if sd is None else float(abs(scale) * sd),
                        "n": int(period.n),
                    },
                )
            )
        return out, keys

    async def _history(
        self, series: SeriesRef, period_ns: int, now_ns: int, baseline_ns: int | None = None
    ) -> _ChannelHistory:
        """The series' period statistics, reading from the store only what may have changed:
        the window, and back to ``baseline_ns`` (a dated baseline's start) when earlier."""
        options = self.options
        # A dated baseline reaches back further than the window: its own cache, so that a new
        # baseline is read in full at once, and a standard without one does not trim it away.
        key = (series, period_ns, baseline_ns)
        history = self._histories.get(key)
        window_start = now_ns - round(options.window_days * NS_PER_DAY)
        if baseline_ns is not None:
            window_start = min(window_start, baseline_ns)
        window_start -= window_start % period_ns
        stale = (
            history is None
            or history.settled_until_ns is None
            or time.monotonic() - history.loaded_at > options.history.full_refresh_s
        )
        if history is None or stale:
            history = _ChannelHistory(period_ns, written=history.written if history else {})
            history.loaded_at = time.monotonic()
            begin = window_start
        else:
            begin = max(window_start, history.settled_until_ns or window_start)
        chunk_ns = max(1, int(options.history.chunk_days * NS_PER_DAY) // period_ns) * period_ns
        fresh: dict[int, PeriodStat] = {}
        latest_ns: int | None = None
        start = begin
        while True:
            end = start + chunk_ns if start + chunk_ns <= now_ns else FAR_FUTURE_NS
            stats = await self.reader.read_periods(series, start, end, period_ns)
            fresh.update((stat.start_ns, stat) for stat in stats)
            if stats:
                latest_ns = max(latest_ns or 0, max(stat.last_ns for stat in stats))
            if end == FAR_FUTURE_NS:
                break
            start = end
        history.periods = {
            s: p for s, p in history.periods.items() if window_start <= s < begin
        } | fresh
        history.written = {s: w for s, w in history.written.items() if s >= window_start}
        if latest_ns is not None:
            latest_period = latest_ns - latest_ns % period_ns
            history.settled_until_ns = max(
                begin, latest_period - (options.history.reread_periods - 1) * period_ns
            )
        else:
            history.settled_until_ns = begin
        self._histories[key] = history
        return history


def _prepare(
    data: StandardInput, new_periods: dict[str, list[tuple[int, dict[str, Any]]]]
) -> _Prepared:
    """On the analytics' thread: evaluate and serialise."""
    result = evaluate(data)
    return _Prepared(
        result=result,
        result_json=result.model_dump_json(),
        summary_json=orjson.dumps(result.summary()).decode(),
        points=tsdb_points(result, new_periods),
    )


def _record(db: Any, prepared: _Prepared) -> None:
    result = prepared.result
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT INTO standard_results(standard_id, ts_ns, summary) VALUES (?,?,?)",
            (result.standard_id, result.ts_ns, prepared.summary_json),
        )
        db.execute(
            "INSERT OR REPLACE INTO standard_latest(standard_id, ts_ns, result) VALUES (?,?,?)",
            (result.standard_id, result.ts_ns, prepared.result_json),
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
