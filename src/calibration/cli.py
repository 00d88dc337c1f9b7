"""``etalon calibrate run|resume|list|show|report|dcc`` and the procedure half of ``etalon check``.

The bench keeps its runs in a data directory (``--data-dir``, else ``$ETALON_CALIBRATION_DIR``,
else ``$XDG_STATE_HOME/etalon/calibration``, i.e. ``~/.local/state/etalon/calibration``): the
runs' store ``runs.db`` and the spools of readings and records not yet taken by the broker.

Exit statuses: 0 the command did its work (a run completed — whatever its decision); 1 a bad
procedure, agent config, reference or argument value (each problem with file, line and field);
2 a bad command line; 5 another error; 6 a run aborted (an instrument refused or stopped
answering, the UUT was swapped: it can be resumed); 130 and 143 a run interrupted by SIGINT and
SIGTERM (its sources are in their safe state; it can be resumed).

Here are the parser, the dispatch and the commands that look at runs (list, show, report, dcc);
``run`` and ``resume`` are :mod:`calibration.run_command`, the procedure half of ``etalon check``
:mod:`calibration.check`, what the commands share (data directory, exit statuses)
:mod:`calibration.console`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Literal

from calibration import messages  # noqa: F401 - registers the messages
from calibration.console import default_data_dir, print_problems
from calibration.run_command import resume_main, run_main
from calibration.state import RunRow, RunStore
from core.errors import ConfigError
from core.exits import EXIT_CONFIG, EXIT_OK
from core.i18n import language, t
from core.logs import setup_logging

# -- the commands ----------------------------------------------------------------------------------


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
        print_problems("etalon calibrate report:", exc.problems)
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
        print_problems("etalon calibrate dcc:", exc.problems)
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
