"""A calibration run: set each point, wait until it settles, read, compute, keep — safely.

:func:`calibration.start.start_run` checks a procedure against its agent config and the reference
(its certificate on the run date), and creates the run in the bench's store; :func:`load_run` takes
a stored run up again. :meth:`Runner.execute` does the work:

1. connect every instrument the procedure uses; put every source in its safe state (a known
   state, whatever an earlier process left); read the UUT's identity (``*IDN?``, FC 43) — it
   must be the unit declared (``--uut serial=…``), and on a resumed run the unit the run began
   with; write the set-up of the source, the UUT and the reference meter;
2. for each point without a stored result, in order: check the UUT's identity again (a unit
   swapped since the last point voids that point and aborts the run), write the point's ranges
   and level (never outside the limits the instrument config declares: the driver refuses before
   anything is sent), switch the output on once, wait until the settling criterion holds (or fail
   the point with the reason), record the environment, take the readings (reference and UUT in
   pairs), compute the point (:mod:`calibration.compute`) and commit it;
3. read the identity at the end (a swap aborts), put every source in its safe state, write the
   record (:mod:`calibration.record`) and queue it for the gateway.

Every reading taken is spooled for the gateway, tagged with the run and the point; every write
and safe-state step is committed to the audit as it happens. **On any error, on an abort, on
SIGINT or SIGTERM** (the ``stop`` event), and when the run's task is cancelled, every instrument
that is a source or was written to is put in its declared safe state before ``execute`` returns;
a safe state that cannot be confirmed is reported loudly. An interrupted or aborted run keeps
its completed points and resumes at the first point without a result.

Longer than 500 lines on purpose: the run is one state machine whose safety invariant (every source
back in its safe state on any exit) spans every step; splitting it would scatter that invariant
(how a run is created, how it ends and how it waits are :mod:`calibration.start`,
:mod:`calibration.outcome` and :mod:`calibration.pacing`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from calibration import messages  # noqa: F401 - registers the messages progress names
from calibration.agent_checks import check_against_agent, load_agent
from calibration.compute import PointData, compute_point, verdict_of
from calibration.outcome import Interrupted, Outcome, PointFailed, RunAborted
from calibration.pacing import Pacer, Progress, pacer_for, silent
from calibration.procedure import MeterReference, PointSpec
from calibration.record import build_record
from calibration.reference import ResolvedReference
from calibration.session import BenchSession
from calibration.settling import Criterion, SettlingMonitor
from calibration.start import instruments_of, loaded_of
from calibration.state import RunRow, RunStore
from calibration.stream import RunStream
from core.clock import Clock
from core.errors import ConfigError, DriverError, EtalonError, WriteError
from core.i18n import t
from core.logs import log_event
from drivers.base import SettableDriver
from drivers.reading import Quality, Reading
from drivers.setpoints import WriteRecord, WriteTarget
from edge_agent.config import AgentConfig
from edge_agent.wire import ChannelInfo, InstrumentInfo
from edge_agent.wire_calibration import encode_calibration
from metrology.certificate.record import (
    EnvironmentStats,
    PointResult,
    Settling,
    WriteEntry,
    canonical_bytes,
    record_sha256,
)

log = logging.getLogger("etalon.calibration")

BAD_READINGS_BEFORE_FAILING = 3
Role = Literal["uut", "reference", "environment"]


# -- the runner ------------------------------------------------------------------------------------


class Runner:
    """One run of a procedure on the bench (see the module doc)."""

    def __init__(
        self,
        row: RunRow,
        store: RunStore,
        clock: Clock,
        *,
        stream: RunStream | None = None,
        progress: Progress = silent,
        pacer: Pacer | None = None,
        agent: AgentConfig | None = None,
        attempts: int = 3,
    ) -> None:
        self.row = row
        self.run = row.run
        self.store = store
        self.clock = clock
        self.stream = stream
        self.progress = progress
        self.pacer = pacer or pacer_for(clock)
        self.loaded = loaded_of(row)
        if self.loaded.sha256 != row.procedure_sha256:
            raise ConfigError([f"run {row.run}: its stored procedure does not match its hash"])
        self.procedure = self.loaded.procedure
        self.agent_path, loaded_agent = load_agent(self.loaded)
        self.agent = agent or loaded_agent
        problems = check_against_agent(self.loaded, self.agent)
        if problems:
            raise ConfigError(problems)
        self.reference = ResolvedReference.model_validate(row.reference)
        self.run_date = dt.date.fromisoformat(row.run_date)
        self.roles = instruments_of(self.loaded)
        self.session = BenchSession(
            self.agent, [name for name, _ in self.roles], clock, self._record_writes, attempts
        )
        self._point: int | None = None
        self._output_on = False
        self._source_range: float | None = None
        self._notes: list[str] = list(row.notes)
        self._unexpected: BaseException | None = None

    # -- audit and streaming -------------------------------------------------------------------

    async def _record_writes(self, instrument: str, records: list[WriteRecord]) -> None:
        entries = [_entry(record, self._point) for record in records]
        await self.store.add_writes(self.run, entries)

    async def _stream(self, reading: Reading, role: Role, phase: str) -> None:
        if self.stream is None:
            return
        tags = dict(reading.tags)
        tags.update({"run": self.run, "role": role, "phase": phase})
        if self._point is not None:
            tags["point"] = str(self._point)
        reading.tags = tags
        await self.stream.add([reading])

    # -- instruments ---------------------------------------------------------------------------

    def _sources(self) -> list[str]:
        names = [name for name, role in self.roles if role == "source"]
        names += [n for n in sorted(self.session.written) if n not in names]
        return names

    async def _safe_state(self, names: Sequence[str]) -> dict[str, str]:
        failures: dict[str, str] = {}
        for name in names:
            reason = await self.session.safe_state(name)
            if reason is not None:
                failures[name] = reason
                self.progress("calibrate.safe_state.failed", instrument=name, reason=reason)
        return failures

    async def _value(self, role: Role, instrument: str, channel: str, phase: str) -> Reading:
        """A good numeric reading (streamed); PointFailed after repeated bad ones."""
        reason = ""
        for _ in range(BAD_READINGS_BEFORE_FAILING):
            reading = await self.session.read(instrument, channel)
            await self._stream(reading, role, phase)
            if reading.quality is not Quality.BAD and reading.is_finite_number():
                return reading
            reason = reading.reason or f"not a number: {reading.value!r}"
            await self.pacer.sleep(0.05)
        raise PointFailed(f"{instrument}/{channel} gives bad readings: {reason}")

    async def _identity(self) -> dict[str, str]:
        identity = await self.session.identify(self.procedure.uut.instrument)
        return {k: str(v) for k, v in identity.items() if k in _IDENTITY_KEYS and v}

    # -- one point -----------------------------------------------------------------------------

    async def _set_point(self, point: PointSpec) -> None:
        source = self.procedure.source
        uut = self.procedure.uut
        if source is not None:
            name = source.instrument
            if source.range_target is not None and point.range is not None:
                if self._source_range is None:
                    await self._write_zero_first(name, source.level)
                    await self.session.write(name, {source.range_target: point.range})
                    await self.session.write(name, {source.level: point.nominal})
                elif point.range < self._source_range:
                    await self.session.write(name, {source.level: point.nominal})
                    await self.session.write(name, {source.range_target: point.range})
                else:
                    await self.session.write(
                        name, {source.range_target: point.range, source.level: point.nominal}
                    )
                self._source_range = point.range
            else:
                await self.session.write(name, {source.level: point.nominal})
            if source.output is not None and not self._output_on:
                await self.session.write(name, {source.output: True})
                self._output_on = True
        if uut.range_target is not None and point.range is not None:
            await self.session.write(uut.instrument, {uut.range_target: point.range})
        reference = self.procedure.reference
        if (
            isinstance(reference, MeterReference)
            and reference.range_target is not None
            and point.range is not None
        ):
            await self.session.write(reference.instrument, {reference.range_target: point.range})

    async def _write_zero_first(self, name: str, level: str) -> None:
        """Before the first range change of an attempt: the level to 0 (if allowed), so that a
        range left fixed by an earlier run never conflicts with the new one."""
        driver = self.session.instruments[name].driver
        targets: Mapping[str, WriteTarget] = (
            driver.write_targets() if isinstance(driver, SettableDriver) else {}
        )
        found = targets.get(level)
        if found is None:
            return
        try:
            found.check(0.0)
        except WriteError:
            return
        await self.session.write(name, {level: 0.0})

    async def _settle(self, point: PointSpec, stop: asyncio.Event) -> Settling:
        spec = self.procedure.settling
        who = self.procedure.settles_on()
        if who == "reference":
            reference = self.procedure.reference
            assert isinstance(reference, MeterReference)
            instrument, channel = reference.instrument, reference.channel
            role: Role = "reference"
        else:
            instrument, channel = self.procedure.uut.instrument, self.procedure.uut.channel
            role = "uut"
        monitor = SettlingMonitor(
            Criterion(spec.window_s, spec.min_readings, spec.max_slope_per_s, spec.max_std)
        )
        started = self.clock.now_ns()
        reported = started
        count = 0
        unit = self.procedure.uut.unit
        while True:
            if stop.is_set():
                raise Interrupted
            # A bad reading while the output moves (an overload on a fixed range) is expected:
            # it is streamed, not counted, and the point times out if they never stop.
            reading = await self.session.read(instrument, channel)
            await self._stream(reading, role, "settling")
            if reading.quality is not Quality.BAD and reading.is_finite_number():
                monitor.add(reading.ts_ns, float(reading.value))  # type: ignore[arg-type]
            else:
                monitor.reset()
            count += 1
            now = self.clock.now_ns()
            elapsed = (now - started) / 1e9
            fit = monitor.last
            if monitor.settled():
                fit = monitor.last
                assert fit is not None
                self.progress("calibrate.settled", seconds=elapsed)
                return Settling(
                    settled=True,
                    seconds=elapsed,
                    readings=count,
                    slope_per_s=fit.slope_per_s,
                    std=fit.std,
                )
            fit = monitor.last
            if elapsed >= spec.timeout_s:
                slope = f"{fit.slope_per_s:.3g}" if fit else "?"
                std = f"{fit.std:.3g}" if fit else "?"
                settling = Settling(
                    settled=False,
                    seconds=elapsed,
                    readings=count,
                    slope_per_s=fit.slope_per_s if fit else None,
                    std=fit.std if fit else None,
                )
                raise PointFailed(
                    f"the {role} did not settle within {spec.timeout_s:g} s: |slope| {slope} "
                    f"{unit}/s (limit {spec.max_slope_per_s:g}), std {std} {unit} "
                    f"(limit {spec.max_std:g})",
                    settling,
                )
            if now - reported >= 1_000_000_000 and fit is not None:
                reported = now
                self.progress(
                    "calibrate.settling",
                    seconds=elapsed,
                    slope=f"{fit.slope_per_s:.3g} {unit}/s",
                    std=f"{fit.std:.3g} {unit}",
                )
            await self._pause(spec.interval_s, stop)

    async def _pause(self, seconds: float, stop: asyncio.Event) -> None:
        if stop.is_set():
            raise Interrupted
        if seconds > 0:
            await self.pacer.sleep(seconds)

    async def _environment(self) -> list[tuple[str, Reading]]:
        out = []
        environment = self.procedure.environment
        for quantity in ("temperature", "humidity"):
            ref = getattr(environment, quantity)
            if ref is None:
                continue
            reading = await self.session.read(ref.instrument, ref.channel)
            await self._stream(reading, "environment", "environment")
            if reading.quality is not Quality.BAD and reading.is_finite_number():
                out.append((quantity, reading))
        return out

    def _environment_stats(self, taken: list[tuple[str, Reading]]) -> list[EnvironmentStats]:
        stats = []
        environment = self.procedure.environment
        for quantity in ("temperature", "humidity"):
            ref = getattr(environment, quantity)
            values = [float(r.value) for q, r in taken if q == quantity]  # type: ignore[arg-type]
            if ref is None or not values:
                continue
            unit = next(r.unit for q, r in taken if q == quantity)
            stats.append(
                EnvironmentStats(
                    quantity=quantity,
                    instrument=ref.instrument,
                    channel=ref.channel,
                    unit=unit,
                    mean=math.fsum(values) / len(values),
                    minimum=min(values),
                    maximum=max(values),
                    n=len(values),
                )
            )
        return stats

    async def _measure(self, index: int, point: PointSpec, stop: asyncio.Event) -> PointResult:
        started = self.clock.now_ns()

        def finished(**outcome: Any) -> PointResult:
            return PointResult(
                index=index,
                nominal=point.nominal,
                range=point.range,
                unit=self.procedure.uut.unit,
                started_ns=started,
                finished_ns=self.clock.now_ns(),
                **outcome,
            )

        n_points = len(self.procedure.points)
        range_text = ""
        unit = self.procedure.uut.unit
        if point.range is not None:
            range_text = t(
                "calibrate.range", self.row.language, range=f"{point.range:g}", unit=unit
            )
        self.progress(
            "calibrate.point", i=index + 1, n=n_points, nominal=f"{point.nominal:g}", unit=unit,
            range=range_text,
        )  # fmt: skip
        await self._set_point(point)
        settling: Settling | None = None
        try:
            settling = await self._settle(point, stop)
            environment = await self._environment()
            reference = self.procedure.reference
            meter = isinstance(reference, MeterReference)
            uut_values: list[float] = []
            uut_ns: list[int] = []
            ref_values: list[float] = []
            ref_ns: list[int] = []
            count = self.procedure.readings
            for k in range(count):
                if meter:
                    assert isinstance(reference, MeterReference)
                    taken = await self._value(
                        "reference", reference.instrument, reference.channel, "measure"
                    )
                    ref_values.append(float(taken.value))  # type: ignore[arg-type]
                    ref_ns.append(taken.ts_ns)
                taken = await self._value(
                    "uut", self.procedure.uut.instrument, self.procedure.uut.channel, "measure"
                )
                uut_values.append(float(taken.value))  # type: ignore[arg-type]
                uut_ns.append(taken.ts_ns)
                self.progress("calibrate.reading", k=k + 1, n=count)
                if k < count - 1:
                    await self._pause(self.procedure.reading_interval_s, stop)
                elif stop.is_set():
                    raise Interrupted
            environment += await self._environment()
            stats = self._environment_stats(environment)
            data = PointData(
                uut=uut_values,
                uut_ns=uut_ns,
                reference=ref_values,
                reference_ns=ref_ns,
                environment=stats,
                settling=settling,
            )
            try:
                computed = compute_point(self.procedure, point, self.reference, data, self.run_date)
            except ValueError as exc:
                raise PointFailed(f"cannot compute the point: {exc}", settling) from None
        except PointFailed as failure:
            self.progress("calibrate.point_failed", reason=failure.reason)
            return finished(
                status="failed", reason=failure.reason, settling=failure.settling or settling
            )
        verdict = verdict_of(self.procedure, computed)
        rounded = computed.budget.rounded()
        for note in computed.notes:
            if note not in self._notes:
                self._notes.append(note)
        self.progress(
            "calibrate.result", error=rounded.text, decision=_decision_word(verdict.decision, self)
        )
        return finished(
            status="ok",
            settling=settling,
            uut_readings=tuple(uut_values),
            reference_readings=tuple(ref_values),
            indication=computed.indication,
            reference_value=computed.reference_value,
            error=computed.error,
            budget=computed.budget,
            rounded=rounded,
            tolerance=computed.tolerance,
            verdict=verdict,
            environment=tuple(stats),
        )

    # -- the run -------------------------------------------------------------------------------

    async def _start(self) -> dict[str, str]:
        await self.session.open()
        self.progress("calibrate.safe_state")
        failures = await self._safe_state([n for n, role in self.roles if role == "source"])
        if failures:
            raise RunAborted(
                "the sources could not be put in a known (safe) state: "
                + "; ".join(f"{n}: {r}" for n, r in failures.items())
            )
        identity = await self._identity()
        declared = self.row.declared.get("serial")
        if not identity:
            note = "the UUT cannot tell its identity: a swap during the run cannot be detected"
            if note not in self._notes:
                self._notes.append(note)
        elif declared and identity.get("serial") and identity["serial"] != declared:
            raise RunAborted(
                f"the UUT says it is serial {identity['serial']}, not the declared {declared}"
            )
        if self.row.identity_start is not None and identity != self.row.identity_start:
            began = _identity_text(self.row.identity_start)
            raise RunAborted(
                f"the UUT is not the unit the run began with: then {began}; now "
                f"{_identity_text(identity)}"
            )
        if self.row.identity_start is None:
            await self.store.update(self.run, identity_start=identity)
        self.progress("calibrate.identity", identity=_identity_text(identity) or "—")
        instruments = []
        for name, role in self.roles:
            if role == "uut":
                continue
            described = await self.session.describe(name)
            said = described["identity"]
            described["identity"] = {k: v for k, v in said.items() if k in _IDENTITY_KEYS}
            instruments.append({"role": role, "name": name, **described})
        await self.store.update(self.run, instruments=instruments)
        if self.stream is not None:
            self.stream.instruments = self._catalogue()
        procedure = self.procedure
        if procedure.source is not None:
            await self.session.write(procedure.source.instrument, procedure.source.setup)
        await self.session.write(procedure.uut.instrument, procedure.uut.setup)
        if isinstance(procedure.reference, MeterReference):
            await self.session.write(procedure.reference.instrument, procedure.reference.setup)
        return identity

    def _catalogue(self) -> list[InstrumentInfo]:
        out = []
        for name, _role in self.roles:
            config = self.session.config(name)
            channels = [
                ChannelInfo(name=c.name, unit=c.unit, interval_s=c.interval_s, tags=c.tags)
                for c in getattr(config, "channels", [])
            ]
            out.append(
                InstrumentInfo(
                    name=name,
                    protocol=self.session.protocol(name),
                    identity=self.session.instruments[name].driver.describe(),
                    channels=channels,
                )
            )
        return out

    async def _work(self, stop: asyncio.Event) -> Outcome:
        identity = await self._start()
        done = await self.store.points(self.run)
        total = len(self.procedure.points)
        pending = [i for i in range(total) if i not in done]
        if done and pending:
            self.progress(
                "calibrate.resumed",
                run=self.run,
                point=pending[0] + 1,
                points=total,
                done=len(done),
            )
        last_measured: int | None = None
        for index in pending:
            if stop.is_set():
                raise Interrupted
            if last_measured is not None:
                await self._same_unit(identity, last_measured)
            self._point = index
            result = await self._measure(index, self.procedure.points[index], stop)
            await self.store.save_point(self.run, result)
            last_measured = index
        self._point = None
        if last_measured is not None:
            identity_end = await self._same_unit(identity, last_measured)
        else:
            identity_end = await self._identity()
            if identity_end != identity:
                raise RunAborted("the UUT's identity changed")
        await self.store.update(self.run, identity_end=identity_end, notes=self._notes)
        return Outcome(self.run, "completed")

    async def _same_unit(self, identity: dict[str, str], last: int) -> dict[str, str]:
        """The identity read now; a different one voids the point measured since the last
        check and aborts the run."""
        now = await self._identity()
        if now != identity:
            await self.store.drop_point(self.run, last)
            raise RunAborted(
                f"the UUT was swapped ({_identity_text(identity)} → {_identity_text(now)}); "
                f"point {last + 1}, measured since the last check, is void"
            )
        return now

    async def execute(self, stop: asyncio.Event | None = None) -> Outcome:
        """Run (or resume) until complete, interrupted or aborted; the sources end in their
        safe state in every case, also when this task is cancelled (see the module doc)."""
        stop = stop or asyncio.Event()
        await self.store.update(self.run, status="running", reason=None)
        await self.store.event(self.run, "started")
        if self.stream is not None:
            await self.stream.start()
        work = asyncio.create_task(self._work(stop), name=f"calibration-{self.run}")
        waiter = asyncio.create_task(stop.wait(), name="calibration-stop")
        try:
            await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Whatever happened (done, told to stop, cancelled from outside): the work ends
            # first, then every source goes to its safe state, shielded from cancellation.
            waiter.cancel()
            if not work.done():
                work.cancel()
            await asyncio.wait({work, waiter})
            outcome = self._outcome_of(work, stop)
            outcome.safe_state_failures = await asyncio.shield(self._finish_safely())
        await self._conclude(outcome)
        if self._unexpected is not None:
            raise self._unexpected
        return outcome

    def _outcome_of(self, work: asyncio.Task[Outcome], stop: asyncio.Event) -> Outcome:
        if work.cancelled():
            return Outcome(self.run, "interrupted", "stopped")
        exc = work.exception()
        if exc is None:
            return work.result()
        if isinstance(exc, Interrupted):
            return Outcome(self.run, "interrupted", "stopped")
        if isinstance(exc, RunAborted):
            return Outcome(self.run, "aborted", exc.reason)
        if isinstance(exc, DriverError):
            return Outcome(self.run, "aborted", f"{exc.instrument}: {exc.reason}")
        if isinstance(exc, EtalonError):
            return Outcome(self.run, "aborted", str(exc))
        self._unexpected = exc
        log.error("calibration run failed", exc_info=exc)
        return Outcome(self.run, "aborted", f"{type(exc).__name__}: {exc}")

    async def _finish_safely(self) -> dict[str, str]:
        self._point = None
        self.progress("calibrate.safe_state")
        try:
            failures = await self._safe_state(self._sources())
        finally:
            await self.session.close()
        return failures

    async def _conclude(self, outcome: Outcome) -> None:
        if outcome.status == "completed":
            if outcome.safe_state_failures:
                outcome.status = "aborted"
                outcome.reason = "a source's safe state could not be confirmed: " + "; ".join(
                    f"{n}: {r}" for n, r in outcome.safe_state_failures.items()
                )
            else:
                await self._complete(outcome)
                return
        status = outcome.status
        await self.store.update(self.run, status=status, reason=outcome.reason)
        await self.store.event(self.run, status, outcome.reason or "")
        log_event(log, logging.WARNING, f"run {status}", run=self.run, reason=outcome.reason)
        if status == "interrupted":
            self.progress("calibrate.interrupted", run=self.run)
        else:
            self.progress("calibrate.aborted", run=self.run, reason=outcome.reason or "")

    async def _complete(self, outcome: Outcome) -> None:
        row = await self.store.get(self.run)
        assert row is not None
        finished = self.clock.now_ns()
        points = await self.store.points(self.run)
        writes = await self.store.writes(self.run)
        record = build_record(
            row,
            self.loaded,
            self.agent,
            self.reference,
            [points[i] for i in sorted(points)],
            writes,
            finished_ns=finished,
            publisher=self.publisher_id(),
        )
        digest = record_sha256(record)
        await self.store.complete(
            self.run, canonical_bytes(record).decode("utf-8"), digest, finished
        )
        if self.stream is not None:
            await self.stream.add_record(encode_calibration(record))
        outcome.record_sha256 = digest
        outcome.decision = record.decision
        log_event(log, logging.INFO, "run completed", run=self.run, decision=record.decision)
        self.progress(
            "calibrate.completed",
            run=self.run,
            decision=_decision_word(record.decision, self),
            sha256=digest,
        )

    def publisher_id(self) -> str:
        """The identity the bench publishes under."""
        return self.procedure.publish.agent or f"{self.agent.id}-cal"


_IDENTITY_KEYS = ("manufacturer", "model", "serial", "firmware", "vendor", "product", "revision")


def _identity_text(identity: dict[str, str]) -> str:
    """``manufacturer M, model X, serial S, firmware F`` (always in that order)."""
    ordered = sorted(identity.items(), key=lambda item: _IDENTITY_KEYS.index(item[0]))
    return ", ".join(f"{k} {v}" for k, v in ordered)


def _decision_word(decision: str, runner: Runner) -> str:
    from metrology.certificate.labels import word

    language: Literal["en", "vi"] = "vi" if runner.row.language == "vi" else "en"
    if decision == "incomplete":
        return word("report.decision.incomplete", language)
    return word(decision, language)


def _entry(record: WriteRecord, point: int | None) -> WriteEntry:
    value = record.value
    if isinstance(value, str):
        value = value[:500]
    return WriteEntry(
        instrument=record.instrument,
        target=record.target,
        value=value,
        unit=record.unit,
        sent=tuple(s[:500] for s in record.sent[:32]),
        confirmed=tuple(c[:500] for c in record.confirmed[:32]),
        started_ns=record.started_ns,
        finished_ns=record.finished_ns,
        ok=record.ok,
        error=record.error[:500] if record.error else None,
        purpose=record.purpose,
        point=point,
    )
