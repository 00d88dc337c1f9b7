"""``etalon calibrate run|resume|list|show|report|dcc`` and the procedure half of ``etalon check``.

The bench keeps its runs in a data directory (``--data-dir``, else ``$ETALON_CALIBRATION_DIR``,
else ``$XDG_STATE_HOME/etalon/calibration``, i.e. ``~/.local/state/etalon/calibration``): the
runs' store ``runs.db`` and the spools of readings and records not yet taken by the broker.

Exit statuses: 0 the command did its work (a run completed — whatever its decision); 1 a bad
procedure, agent config, reference or argument value (each problem with file, line and field);
2 a bad command line; 5 another error; 6 a run aborted (an instrument refused or stopped
answering, the UUT was swapped: it can be resumed); 130 and 143 a run interrupted by SIGINT and
SIGTERM (its sources are in their safe state; it can be resumed).

Longer than 500 lines on purpose: each subcommand's parser sits beside the few lines that run and
print it, as in every command group.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Literal

from calibration import messages  # noqa: F401 - registers the messages
from calibration.agent_checks import check_against_agent, load_agent
from calibration.outcome import Outcome
from calibration.procedure import (
    LoadedProcedure,
    MeterReference,
    StandardReference,
    expired_problem,
    load_procedure,
)
from calibration.reference import RegistryUnavailable, fetch_standard, resolve, resolve_standard
from calibration.runner import Runner
from calibration.start import start_run
from calibration.state import RunRow, RunStore
from calibration.stream import RunStream, run_of_message
from core.clock import SystemClock
from core.errors import ConfigError, EtalonError
from core.exits import EXIT_CONFIG, EXIT_OK, EXIT_OTHER, signal_status
from core.i18n import language, t
from core.logs import setup_logging
from core.mqtt import MqttConfig

EXIT_ABORTED = 6
"""A run aborted (an instrument refused or stopped answering, the UUT was swapped)."""
EXIT_SIGNAL = {sig: signal_status(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
"""A run interrupted by SIGINT (130) or SIGTERM (143): sources safe, resumable."""


def default_data_dir() -> Path:
    """Where the bench keeps its runs (see the module doc)."""
    given = os.environ.get("ETALON_CALIBRATION_DIR")
    if given:
        return Path(given)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "etalon" / "calibration"


def _print_problems(title: str, problems: list[str]) -> None:
    print(title, file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


# -- etalon check ----------------------------------------------------------------------------------


def check_procedure(path: Path, lang: str = "en") -> tuple[list[str], list[str]]:
    """Every problem of a procedure file (``FILE:LINE: field: reason``) and the notes to print
    (a registry that could not be asked). Offline, a standard cannot be checked: that is a note,
    not a problem; the run itself refuses to start without it."""
    try:
        loaded = load_procedure(path)
        _, agent = load_agent(loaded)
    except ConfigError as exc:
        return exc.problems, []
    problems = check_against_agent(loaded, agent)
    notes: list[str] = []
    today = dt.datetime.now(dt.UTC)
    reference = loaded.procedure.reference
    if isinstance(reference, MeterReference):
        try:
            resolved = resolve(loaded, today)
        except ConfigError as exc:
            problems += exc.problems
        else:
            certificate = resolved.certificate
            if certificate is not None and certificate.expired and certificate.due_date:
                loc: tuple[str, ...] = ("reference", "certificate", "due_date")
                if reference.certificate is None:
                    loc = ("reference", "dcc")
                found = expired_problem(
                    loaded, loc, certificate.number, certificate.due_date, today.date()
                )
                if found:
                    problems.append(found)
    else:
        problems += _check_standard(loaded, reference, today, notes, lang)
    return problems, notes


def _check_standard(
    loaded: LoadedProcedure,
    reference: StandardReference,
    today: dt.datetime,
    notes: list[str],
    lang: str,
) -> list[str]:
    where = loaded.where(("reference", "id"))
    try:
        answer = fetch_standard(reference)
    except RegistryUnavailable as exc:
        notes.append(t("calibrate.offline_standard", lang, where=where, reason=str(exc)))
        return []
    if answer is None:
        return [
            f"{where}: the registry at {reference.gateway.url} has no standard {reference.id!r}"
        ]
    try:
        resolved = resolve_standard(reference, answer, loaded.procedure.uut.unit, today)
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{where}: {exc}"]
    problems = []
    certificate = resolved.certificate
    if certificate is not None and certificate.expired and certificate.due_date:
        found = expired_problem(
            loaded, ("reference", "id"), certificate.number, certificate.due_date, today.date()
        )
        if found:
            problems.append(found)
    nominal = resolved.nominal
    if nominal is not None:
        for index, point in enumerate(loaded.procedure.points):
            if abs(point.nominal - nominal) > 1e-3 * max(abs(nominal), 1e-12):
                problems.append(
                    f"{loaded.where(('points', index, 'nominal'))}: the standard "
                    f"{reference.id} is a {nominal:g} {resolved.unit} standard, not "
                    f"{point.nominal:g}"
                )
    return problems


# -- the commands ----------------------------------------------------------------------------------


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
        _print_problems("etalon calibrate:", exc.problems)
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
        _print_problems(t("config.invalid", lang, file=args.procedure), exc.problems)
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


async def _rows(data_dir: Path, run: str | None = None) -> list[RunRow]:
    async with RunStore(data_dir / "runs.db") as store:
        if run is None:
            return await store.runs()
        row = await store.get(run)
        return [] if row is None else [row]


async def _row_points(data_dir: Path, run: str) -> tuple[RunRow | None, dict[int, Any]]:
    async with RunStore(data_dir / "runs.db") as store:
        row = await store.get(run)
        points = await store.points(run) if row is not None else {}
        return row, points


def _decision(row: RunRow) -> str:
    if row.record is None:
        return "—"
    decision = json.loads(row.record).get("decision", "—")
    return str(decision)


def list_main(args: argparse.Namespace, lang: str) -> int:
    """``etalon calibrate list``."""
    data_dir: Path = args.data_dir or default_data_dir()
    rows = asyncio.run(_rows(data_dir))
    if args.json:
        print(json.dumps([_summary(r) for r in rows], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print(t("calibrate.none", lang))
        return EXIT_OK
    columns = t("calibrate.columns", lang).split("|")
    table = [columns]
    for row in rows:
        started = dt.datetime.fromtimestamp(row.started_ns / 1e9, tz=dt.UTC)
        table.append(
            [
                row.run,
                row.procedure_id,
                row.declared.get("serial", "—"),
                started.strftime("%Y-%m-%d %H:%M"),
                str(row.points_total),
                t(f"calibrate.status.{row.status}", lang),
                _decision(row),
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    return EXIT_OK


def _summary(row: RunRow) -> dict[str, Any]:
    return {
        "run": row.run,
        "procedure": row.procedure_id,
        "procedure_sha256": row.procedure_sha256,
        "declared": row.declared,
        "operator": row.operator,
        "status": row.status,
        "reason": row.reason,
        "started_ns": row.started_ns,
        "finished_ns": row.finished_ns,
        "points": row.points_total,
        "decision": _decision(row) if row.record else None,
        "record_sha256": row.record_sha256,
        "published_ns": row.published_ns,
    }


def show_main(args: argparse.Namespace, lang: str) -> int:
    """``etalon calibrate show RUN``."""
    data_dir: Path = args.data_dir or default_data_dir()
    row, points = asyncio.run(_row_points(data_dir, args.run))
    if row is None:
        print(t("calibrate.unknown_run", lang, run=args.run, where=data_dir), file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        body = (
            json.loads(row.record)
            if row.record
            else _summary(row)
            | {"points_done": [p.model_dump(mode="json") for p in points.values()]}
        )
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return EXIT_OK
    for key, value in _summary(row).items():
        print(f"{key}: {value}")
    for index in range(row.points_total):
        point = points.get(index)
        if point is None:
            print(f"  [{index + 1}] —")
        elif point.status != "ok" or point.rounded is None:
            print(f"  [{index + 1}] {point.nominal:g} {point.unit}: {point.reason}")
        else:
            decision = point.verdict.decision if point.verdict else "—"
            print(
                f"  [{index + 1}] {point.nominal:g} {point.unit}: {point.rounded.text} {decision}"
            )
    return EXIT_OK


def _completed(data_dir: Path, run: str, lang: str) -> tuple[Any, str]:
    from metrology.certificate.record import load_record

    rows = asyncio.run(_rows(data_dir, run))
    if not rows:
        raise ConfigError([t("calibrate.unknown_run", lang, run=run, where=data_dir)])
    row = rows[0]
    if row.record is None or row.record_sha256 is None:
        raise ConfigError([t("calibrate.no_record", lang, run=run, status=row.status)])
    return load_record(row.record), row.record_sha256


def report_main(args: argparse.Namespace, lang: str) -> int:
    """``etalon calibrate report RUN --html FILE``."""
    from calibration.report import write_report

    data_dir: Path = args.data_dir or default_data_dir()
    try:
        record, digest = _completed(data_dir, args.run, lang)
        report_lang: Literal["en", "vi"] = "vi" if (args.report_lang or lang) == "vi" else "en"
        write_report(record, digest, args.html, report_lang)
    except ConfigError as exc:
        _print_problems("etalon calibrate report:", exc.problems)
        return EXIT_CONFIG
    print(t("calibrate.written", lang, file=args.html))
    return EXIT_OK


def dcc_main(args: argparse.Namespace, lang: str) -> int:
    """``etalon calibrate dcc RUN --out FILE [--sign-key K --sign-cert C]``."""
    from calibration.dcc import export_dcc

    data_dir: Path = args.data_dir or default_data_dir()
    try:
        record, digest = _completed(data_dir, args.run, lang)
        export_dcc(
            record,
            digest,
            args.out,
            key=args.sign_key,
            certificates=[args.sign_cert, *args.sign_chain] if args.sign_cert else [],
            password_env=args.key_password_env,
        )
    except ConfigError as exc:
        _print_problems("etalon calibrate dcc:", exc.problems)
        return EXIT_CONFIG
    print(t("calibrate.written", lang, file=args.out))
    return EXIT_OK


def add_calibrate_parser(sub: Any) -> None:
    """``etalon calibrate …`` under the main parser."""
    parser = sub.add_parser(
        "calibrate", help="run a calibration procedure on the bench; list, show, report, DCC"
    )
    commands = parser.add_subparsers(dest="calibrate_command", required=True, metavar="ACTION")

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            type=Path,
            help="the bench's runs and spools (default $ETALON_CALIBRATION_DIR, else "
            "~/.local/state/etalon/calibration)",
        )
        # `etalon calibrate run … --lang vi` as well as `etalon --lang vi calibrate run …`
        p.add_argument(
            "--lang", choices=("en", "vi"), default=argparse.SUPPRESS,
            help="language of messages (and of the run's report)",
        )  # fmt: skip

    run = commands.add_parser("run", help="run a procedure")
    run.add_argument("procedure", type=Path)
    run.add_argument(
        "--uut", action="append", metavar="KEY=VALUE",
        help="what the unit under test is, e.g. serial=MY12345 (repeatable)",
    )  # fmt: skip
    run.add_argument("--operator", help="who calibrates (default: the user name)")
    data_dir(run)
    resume = commands.add_parser("resume", help="resume an interrupted or aborted run")
    resume.add_argument("run")
    data_dir(resume)
    listing = commands.add_parser("list", help="the runs, newest first")
    listing.add_argument("--json", action="store_true")
    data_dir(listing)
    show = commands.add_parser("show", help="one run (its record as JSON with --json)")
    show.add_argument("run")
    show.add_argument("--json", action="store_true")
    data_dir(show)
    report = commands.add_parser("report", help="the HTML report of a completed run")
    report.add_argument("run")
    report.add_argument("--html", type=Path, required=True)
    report.add_argument(
        "--report-lang", choices=("en", "vi"), help="language of the report (default --lang)"
    )
    data_dir(report)
    dcc = commands.add_parser("dcc", help="the DCC 3.1.2 of a completed run")
    dcc.add_argument("run")
    dcc.add_argument("--out", type=Path, required=True)
    dcc.add_argument("--sign-key", type=Path, help="the lab's private key (PEM)")
    dcc.add_argument("--sign-cert", type=Path, help="the lab's certificate (PEM)")
    dcc.add_argument(
        "--sign-chain", type=Path, action="append", default=[], help="intermediate CAs (PEM)"
    )
    dcc.add_argument("--key-password-env", help="environment variable holding the key's password")
    data_dir(dcc)


COMMANDS = {
    "run": run_main,
    "resume": resume_main,
    "list": list_main,
    "show": show_main,
    "report": report_main,
    "dcc": dcc_main,
}


def calibrate_main(args: argparse.Namespace) -> int:
    """Dispatch ``etalon calibrate ACTION``."""
    lang = language(getattr(args, "lang", None))
    setup_logging("WARNING")
    return COMMANDS[args.calibrate_command](args, lang)
