"""``etalon drift fit|adev|chart``: the drift analytics for a metrologist with a CSV file.

Each subcommand reads columns by name from a CSV file with a header row (rows in time order),
prints a readable report, or with ``--json`` the documented JSON result (docs/drift.md).
Exit status: 0 done, 1 the file or its data cannot be analysed, 2 bad command line.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.errors import EtalonError, InvalidInputError
from core.exits import EXIT_CONFIG, EXIT_OK
from core.i18n import language, t, translate_reason
from gateway.analytics import messages  # noqa: F401  (registers the report's messages)
from gateway.analytics.control import (
    DEFAULT_CUSUM_H,
    DEFAULT_CUSUM_K,
    DEFAULT_EWMA_L,
    DEFAULT_EWMA_LAMBDA,
    control_report,
)
from gateway.analytics.drift import drift_report, fit_drift
from gateway.analytics.errors import AnalyticsError
from gateway.analytics.report_text import format_chart, format_fit, format_stability
from gateway.analytics.stability import (
    ONE_SIGMA,
    DeviationKind,
    allan_deviation,
)
from gateway.analytics.timebase import XKind, datetime_to_days, parse_datetime

DEVIATION_TITLES = {
    "adev": "Allan deviation (non-overlapping)",
    "oadev": "Overlapping Allan deviation",
    "mdev": "Modified Allan deviation",
}


class CsvError(InvalidInputError):
    """A CSV file cannot be read as asked; the message names the file and line."""


@dataclass(frozen=True)
class Column:
    """One column of a CSV file: its cells and the file line each came from."""

    name: str
    cells: list[str]
    lines: list[int]


def read_columns(path: Path, names: Sequence[str], delimiter: str = ",") -> list[Column]:
    """The named columns of a CSV file with a header row; blank lines are skipped."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise CsvError(f"{path}: the file is empty")
            header = [cell.strip() for cell in header]
            missing = [name for name in names if name not in header]
            if missing:
                raise CsvError(
                    f"{path}: no column {missing[0]!r} (columns: {', '.join(header) or 'none'})"
                )
            positions = [header.index(name) for name in names]
            columns = [Column(name, [], []) for name in names]
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                for column, position in zip(columns, positions, strict=True):
                    cell = row[position].strip() if position < len(row) else ""
                    column.cells.append(cell)
                    column.lines.append(reader.line_num)
    except OSError as error:
        raise CsvError(f"{path}: {error.strerror or error}") from error
    except (csv.Error, UnicodeDecodeError) as error:
        raise CsvError(f"{path}: not a readable CSV file: {error}") from error
    if not columns[0].cells:
        raise CsvError(f"{path}: no data rows after the header")
    return columns


def numbers(path: Path, column: Column) -> list[float]:
    """A column's cells as finite floats; the first bad cell is named with its line."""
    result: list[float] = []
    for cell, line in zip(column.cells, column.lines, strict=True):
        try:
            value = float(cell)
        except ValueError:
            what = " is empty" if not cell else f": {cell!r} is not a number"
            raise CsvError(f"{path}:{line}: column {column.name!r}{what}") from None
        if not math.isfinite(value):
            raise CsvError(f"{path}:{line}: column {column.name!r}: {cell!r} is not finite")
        result.append(value)
    return result


def x_values(path: Path, column: Column) -> tuple[XKind, list[float]]:
    """Numbers, or ISO 8601 dates as days since the epoch -- decided by the first cell."""
    try:
        float(column.cells[0])
    except ValueError:
        days: list[float] = []
        for cell, line in zip(column.cells, column.lines, strict=True):
            try:
                days.append(datetime_to_days(parse_datetime(cell)))
            except ValueError:
                raise CsvError(
                    f"{path}:{line}: column {column.name!r}: {cell!r} is not an ISO 8601 date "
                    "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[Z|+HH:MM]); the first row held a date"
                ) from None
        return "date", days
    return "number", numbers(path, column)


def parse_x(text: str, kind: XKind, option: str) -> float:
    """A ``--at``/``--x0`` value of the same kind as the x column."""
    try:
        if kind == "date":
            return datetime_to_days(parse_datetime(text))
        value = float(text)
    except ValueError:
        expected = "an ISO 8601 date (x holds dates)" if kind == "date" else "a number"
        raise AnalyticsError(f"{option} {text!r} is not {expected}") from None
    if not math.isfinite(value):
        raise AnalyticsError(f"{option} {text!r} is not finite")
    return value


def parse_tolerance(text: str) -> float:
    """``±VALUE``, ``+-VALUE``, ``+/-VALUE`` or ``VALUE``: the half-width of the tolerance."""
    cleaned = text.strip()
    for prefix in ("±", "+/-", "+-"):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix) :]
            break
    try:
        value = float(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not ±VALUE") from None
    if not (math.isfinite(value) and value > 0.0):
        raise argparse.ArgumentTypeError(f"{text!r}: the tolerance must be positive")
    return value


def parse_rules(text: str) -> list[int]:
    """``1,2,5`` or ``1-8``: Nelson rule numbers."""
    rules: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            rules.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of rules such as 1-8") from None
    if not rules or min(rules) < 1 or max(rules) > 8:
        raise argparse.ArgumentTypeError(f"{text!r}: Nelson rules are numbered 1 to 8")
    return sorted(rules)


def probability(text: str) -> float:
    """A confidence level strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a level between 0 and 1, e.g. 0.95")
    return value


def add_drift_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``drift`` with its ``fit``, ``adev`` and ``chart`` subcommands to ``subparsers``."""
    drift = subparsers.add_parser(
        "drift",
        help="drift fit, stability and control charts of a CSV file",
        description="Drift analytics of a reference standard from a CSV file with a header row.",
    )
    commands = drift.add_subparsers(dest="drift_command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        """A subcommand reading a CSV file, with the options every one of them takes."""
        parser: argparse.ArgumentParser = commands.add_parser(
            name, help=help, description=description
        )
        parser.add_argument("--csv", type=Path, required=True, metavar="FILE")
        parser.add_argument("--delimiter", default=",", help="CSV delimiter (default ',')")
        parser.add_argument("--json", action="store_true", help="print the JSON result")
        return parser

    fit = command(
        "fit",
        help="fit the drift of a value against time",
        description="Least-squares drift fit (weighted when --u is given), prediction with "
        "confidence and prediction intervals, value in use and time to out of tolerance.",
    )
    fit.add_argument("--x", required=True, metavar="COLUMN", help="numbers or ISO 8601 dates")
    fit.add_argument("--y", required=True, metavar="COLUMN", help="the values")
    fit.add_argument("--u", metavar="COLUMN", help="standard uncertainties of the values")
    fit.add_argument(
        "--model", choices=["auto", "linear", "quadratic", "mean"], default="auto",
        help="drift model (default: auto, by the documented selection rule)",
    )  # fmt: skip
    fit.add_argument(
        "--weighting", choices=["birge", "absolute", "relative"], default="birge",
        help="how --u weights the fit (default: birge)",
    )  # fmt: skip
    fit.add_argument("--x0", metavar="DATE_OR_X", help="reference point of the coefficients")
    fit.add_argument(
        "--at", metavar="DATE_OR_X",
        help="where to predict (default: now for dates, the last x for numbers)",
    )  # fmt: skip
    fit.add_argument(
        "--tolerance", type=parse_tolerance, metavar="±VALUE",
        help="tolerance half-width around --nominal",
    )  # fmt: skip
    fit.add_argument(
        "--nominal", type=float, help="centre of the tolerance (default: fitted value at last x)"
    )
    fit.add_argument("--confidence", type=probability, default=0.95, help="default 0.95")

    adev = command(
        "adev",
        help="Allan or modified Allan deviation",
        description="Overlapping Allan deviation (or modified, or non-overlapping) with "
        "confidence intervals from the identified noise type and Greenhall's degrees of freedom.",
    )
    adev.add_argument("--y", required=True, metavar="COLUMN", help="the readings, in time order")
    adev.add_argument("--rate", type=float, required=True, metavar="HZ", help="readings per second")
    kind = adev.add_mutually_exclusive_group()
    kind.add_argument("--modified", action="store_true", help="modified Allan deviation")
    kind.add_argument("--non-overlapping", action="store_true", help="classic (non-overlapping)")
    adev.add_argument("--phase", action="store_true", help="the column holds phase (time error, s)")
    adev.add_argument("--taus", choices=["octave", "decade", "all"], default="octave")
    adev.add_argument(
        "--confidence", type=probability, default=ONE_SIGMA, help="default 0.683 (1 sigma)"
    )

    chart = command(
        "chart",
        help="control charts of a check standard",
        description="Individuals/moving-range chart with limits from the first N points, "
        "Nelson rules 1-8, EWMA and tabular CUSUM.",
    )
    chart.add_argument("--y", required=True, metavar="COLUMN", help="the values, in time order")
    chart.add_argument(
        "--baseline", type=int, required=True, metavar="N", help="first N points set the limits"
    )
    chart.add_argument("--rules", type=parse_rules, default=list(range(1, 9)), help="e.g. 1-8")
    chart.add_argument("--ewma-lambda", type=float, default=DEFAULT_EWMA_LAMBDA)
    chart.add_argument("--ewma-L", type=float, default=DEFAULT_EWMA_L, dest="ewma_L")
    chart.add_argument("--cusum-k", type=float, default=DEFAULT_CUSUM_K, help="in sigma")
    chart.add_argument("--cusum-h", type=float, default=DEFAULT_CUSUM_H, help="in sigma")
    return drift  # type: ignore[no-any-return]


def _lang(args: argparse.Namespace) -> str:
    """The global ``--lang``, else ETALON_LANG, else the locale (see core.i18n)."""
    return language(getattr(args, "lang", None))


def drift_main(args: argparse.Namespace) -> int:
    """Run the chosen ``etalon drift`` subcommand; returns the exit status."""
    try:
        if args.drift_command == "fit":
            return run_fit(args)
        if args.drift_command == "adev":
            return run_adev(args)
        return run_chart(args)
    except EtalonError as error:
        print(
            t(
                "drift.error",
                _lang(args),
                command=args.drift_command,
                error=translate_reason(str(error), _lang(args)),
            ),
            file=sys.stderr,
        )
        return EXIT_CONFIG
    except BrokenPipeError:
        # The reader (``| head``) went away: not an error of ours; silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _values(args: argparse.Namespace) -> tuple[Column, list[float]]:
    """The ``--y`` column of the CSV file and its numbers (``adev`` and ``chart`` read no
    other)."""
    (column,) = read_columns(args.csv, [args.y], args.delimiter)
    return column, numbers(args.csv, column)


def _shown(args: argparse.Namespace, result: BaseModel, text: Callable[[], str]) -> int:
    """Print ``result`` as JSON (``--json``) or as its ``text``; the exit status."""
    print(result.model_dump_json(indent=2) if args.json else text())
    return EXIT_OK


def run_fit(args: argparse.Namespace) -> int:
    """``etalon drift fit``."""
    names = [args.x, args.y] + ([args.u] if args.u else [])
    columns = read_columns(args.csv, names, args.delimiter)
    kind, x = x_values(args.csv, columns[0])
    y = numbers(args.csv, columns[1])
    u = numbers(args.csv, columns[2]) if args.u else None
    x0 = None if args.x0 is None else parse_x(args.x0, kind, "--x0")
    fit = fit_drift(x, y, u, model=args.model, x0=x0, x_kind=kind, weighting=args.weighting)
    if args.at is not None:
        at = parse_x(args.at, kind, "--at")
    elif kind == "date":
        at = datetime_to_days(datetime.now(UTC))
    else:
        at = fit.x_max
    report = drift_report(
        fit, at=at, tolerance=args.tolerance, nominal=args.nominal, confidence=args.confidence
    )
    return _shown(args, report, lambda: format_fit(report, _lang(args)))


def run_adev(args: argparse.Namespace) -> int:
    """``etalon drift adev``."""
    _, values = _values(args)
    kind: DeviationKind = "mdev" if args.modified else "adev" if args.non_overlapping else "oadev"
    result = allan_deviation(
        values,
        args.rate,
        kind=kind,
        data_type="phase" if args.phase else "frequency",
        taus=args.taus,
        confidence=args.confidence,
    )
    return _shown(args, result, lambda: format_stability(result, _lang(args)))


def run_chart(args: argparse.Namespace) -> int:
    """``etalon drift chart``."""
    column, values = _values(args)
    report = control_report(
        values,
        args.baseline,
        rules=args.rules,
        ewma_lambda=args.ewma_lambda,
        ewma_L=args.ewma_L,
        cusum_k=args.cusum_k,
        cusum_h=args.cusum_h,
    )
    return _shown(args, report, lambda: format_chart(report, column.lines, _lang(args)))
