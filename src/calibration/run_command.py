"""``etalon calibrate run`` and ``resume``: a run on the terminal, its progress, its readings
and record streamed to the gateway (and drained before the command ends), SIGINT and SIGTERM
turned into a stop that leaves the sources safe, and the run's exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from calibration import messages  # noqa: F401 - registers the messages
from calibration.agent_checks import load_agent
from calibration.console import EXIT_ABORTED, EXIT_SIGNAL, default_data_dir, print_problems
from calibration.outcome import Outcome
from calibration.procedure import LoadedProcedure, load_procedure
from calibration.runner import Runner
from calibration.start import start_run
from calibration.state import RunRow, RunStore
from calibration.stream import RunStream, run_of_message
from core.clock import SystemClock
from core.errors import ConfigError, EtalonError
from core.exits import EXIT_CONFIG, EXIT_OK, EXIT_OTHER
from core.i18n import t
from core.mqtt import MqttConfig


def _declared(items: list[str], lang: str) -> dict[str, str]:
    declared: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value or not key.isidentifier() or not value.isprintable():
            raise ConfigError([t("calibrate.bad_uut", lang, text=item)])
        if len(value) > 200:
            raise ConfigError([t("calibrate.bad_uut", lang, text=item[:60] + "…")])
        declared[key] = value
    return declared


class TerminalProgress:
    """Progress on the terminal, in the chosen language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.tty = sys.stdout.isatty()

    def __call__(self, key: str, **values: object) -> None:
        text = t(key, self.lang, **values)
        if key == "calibrate.reading":
            if self.tty:
                print("\r" + text, end="", flush=True)
                if values.get("k") == values.get("n"):
                    print(flush=True)
            elif values.get("k") == values.get("n"):
                print(text, flush=True)
            return
        print(text, flush=True)


async def _run(
    data_dir: Path,
    lang: str,
    stop: asyncio.Event,
    *,
    loaded: LoadedProcedure | None = None,
    run_id: str | None = None,
    operator: str = "",
    declared: dict[str, str] | None = None,
) -> Outcome | None:
    clock = SystemClock()
    async with RunStore(data_dir / "runs.db") as store:
        if loaded is not None:
            run_id = await start_run(
                loaded, store, clock, operator=operator, declared=declared or {}, language=lang
            )
        assert run_id is not None
        row = await store.get(run_id)
        if row is None:
            raise ConfigError([t("calibrate.unknown_run", lang, run=run_id, where=data_dir)])
        if row.status == "completed":
            print(t("calibrate.already_complete", lang, run=row.run, sha256=row.record_sha256))
            await _flush(data_dir, store, row, lang)
            return None
        runner = Runner(row, store, clock, progress=TerminalProgress(lang))
        runner.stream = _stream(data_dir, store, runner)
        print(
            t(
                "calibrate.started",
                lang,
                run=row.run,
                title=runner.procedure.title,
                points=len(runner.procedure.points),
                uut=", ".join(f"{k}={v}" for k, v in row.declared.items()) or "—",
                operator=row.operator,
            ),
            flush=True,
        )
        try:
            outcome = await runner.execute(stop)
        finally:
            await _drain(runner.stream, runner.procedure.publish.drain_s, data_dir, lang)
        return outcome


def _stream(data_dir: Path, store: RunStore, runner: Runner) -> RunStream:
    async def delivered(message: bytes) -> None:
        run = run_of_message(message)
        if run is not None:
            await store.mark_published(run)

    return RunStream(
        data_dir,
        bench_mqtt(runner.procedure.publish.mqtt, runner.agent.mqtt),
        runner.agent.site,
        runner.publisher_id(),
        delivered,
    )


def bench_mqtt(given: MqttConfig | None, agent: MqttConfig) -> MqttConfig:
    """The bench's MQTT settings: the procedure's, else the agent's without its fixed client id
    (the broker keeps one session per client id: the bench must never take the agent's)."""
    if given is not None:
        return given
    return agent.model_copy(update={"client_id": None})


async def _drain(stream: RunStream, drain_s: float, data_dir: Path, lang: str) -> None:
    try:
        drained = await stream.drain(drain_s)
        if drained and stream.sent():
            print(t("calibrate.published", lang), flush=True)
        elif not drained:
            print(
                t(
                    "calibrate.spooled",
                    lang,
                    readings=stream.readings.depth,
                    records=stream.records.depth,
                    where=data_dir / "spool",
                ),
                flush=True,
            )
    finally:
        await stream.stop()


async def _flush(data_dir: Path, store: RunStore, row: RunRow, lang: str) -> None:
    """Send what the spools still hold (a completed run whose record did not go out)."""
    from calibration.procedure import parse_procedure

    loaded = parse_procedure(Path(row.procedure_path), row.procedure_text.encode("utf-8"))
    _, agent = load_agent(loaded)

    async def delivered(message: bytes) -> None:
        run = run_of_message(message)
        if run is not None:
            await store.mark_published(run)

    publisher = loaded.procedure.publish.agent or f"{agent.id}-cal"
    mqtt = bench_mqtt(loaded.procedure.publish.mqtt, agent.mqtt)
    stream = RunStream(data_dir, mqtt, agent.site, publisher, delivered)
    await stream.start()
    await _drain(stream, loaded.procedure.publish.drain_s, data_dir, lang)


def _exit_for(outcome: Outcome | None, received: list[int]) -> int:
    if outcome is None:
        return EXIT_OK
    if outcome.status == "completed":
        return EXIT_OK
    if outcome.status == "interrupted" and received:
        return EXIT_SIGNAL.get(signal.Signals(received[0]), EXIT_ABORTED)
    return EXIT_ABORTED


def _execute(main: Any, lang: str) -> int:
    """Run ``main(stop)`` with SIGINT/SIGTERM setting ``stop`` (the run makes its sources safe
    and ends); a second signal does not cut the safe state short."""
    received: list[int] = []

    async def wrapper() -> Outcome | None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(number: int) -> None:
            received.append(number)
            stop.set()

        # Signals reach the main thread only (a command run from another thread, as a test or
        # an embedding does, is stopped by its caller).
        handled = threading.current_thread() is threading.main_thread()
        if handled:
            for number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(number, on_signal, number)
        try:
            result: Outcome | None = await main(stop)
            return result
        finally:
            if handled:
                for number in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(number)

    try:
        outcome = asyncio.run(wrapper())
    except ConfigError as exc:
        print_problems("etalon calibrate:", exc.problems)
        return EXIT_CONFIG
    except EtalonError as exc:
        print(f"etalon calibrate: {exc}", file=sys.stderr)
        return EXIT_OTHER
    return _exit_for(outcome, received)


def run_main(args: argparse.Namespace, lang: str) -> int:
    """``etalon calibrate run PROC --uut serial=X``."""
    try:
        loaded = load_procedure(args.procedure)
        declared = _declared(args.uut or [], lang)
    except ConfigError as exc:
        print_problems(t("config.invalid", lang, file=args.procedure), exc.problems)
        return EXIT_CONFIG
    operator = args.operator or os.environ.get("USER") or getpass.getuser()
    data_dir: Path = args.data_dir or default_data_dir()
    return _execute(
        lambda stop: _run(
            data_dir, lang, stop, loaded=loaded, operator=operator, declared=declared
        ),
        lang,
    )


def resume_main(args: argparse.Namespace, lang: str) -> int:
    """``etalon calibrate resume RUN``."""
    data_dir: Path = args.data_dir or default_data_dir()
    return _execute(lambda stop: _run(data_dir, lang, stop, run_id=args.run), lang)
