"""Dates as numbers: the analytics work in days since 1970-01-01T00:00:00Z (UTC).

A column of ISO 8601 dates or date-times becomes a float array of days, so a slope is per day.
Naive date-times are taken as UTC; a bare date is its midnight UTC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from gateway.analytics.errors import AnalyticsError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECONDS_PER_DAY = 86_400.0

XKind = Literal["number", "date"]


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; raises ValueError if it is not."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def datetime_to_days(moment: datetime) -> float:
    """Days since the epoch (UTC) of an aware datetime (naive is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH).total_seconds() / SECONDS_PER_DAY


def days_to_datetime(days: float) -> datetime:
    """The UTC datetime of a number of days since the epoch."""
    return EPOCH + timedelta(days=days)


def days_to_iso(days: float) -> str:
    """An ISO 8601 UTC timestamp to the second (``2024-05-01T12:00:00Z``) for days since epoch."""
    moment = days_to_datetime(days)
    if moment.microsecond >= 500_000:
        moment += timedelta(seconds=1)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_x_values(
    cells: Sequence[str], column: str = "x"
) -> tuple[XKind, npt.NDArray[np.float64]]:
    """Numbers or ISO dates (all of one kind) as floats: the numbers, or days since the epoch.

    Raises AnalyticsError naming the first cell that is neither, or a mix of the two.
    """
    numbers: list[float] = []
    for index, cell in enumerate(cells):
        try:
            value = float(cell)
        except ValueError:
            if index == 0:
                break
            raise AnalyticsError(
                f"column {column!r}, row {index + 1}: {cell!r} is not a number "
                "(the first rows were numbers)"
            ) from None
        if not math.isfinite(value):
            raise AnalyticsError(f"column {column!r}, row {index + 1}: {cell!r} is not finite")
        numbers.append(value)
    else:
        return "number", np.asarray(numbers, dtype=np.float64)
    days: list[float] = []
    for index, cell in enumerate(cells):
        try:
            days.append(datetime_to_days(parse_datetime(cell)))
        except ValueError:
            raise AnalyticsError(
                f"column {column!r}, row {index + 1}: {cell!r} is neither a number nor an "
                "ISO 8601 date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[+HH:MM])"
            ) from None
    return "date", np.asarray(days, dtype=np.float64)


def parse_x_value(text: str, kind: XKind) -> float:
    """One x value (``--at``, ``--x0``) of the same kind as the x column."""
    if kind == "number":
        try:
            value = float(text)
        except ValueError:
            raise AnalyticsError(f"{text!r} is not a number (x is numeric)") from None
        if not math.isfinite(value):
            raise AnalyticsError(f"{text!r} is not finite")
        return value
    try:
        return datetime_to_days(parse_datetime(text))
    except ValueError:
        raise AnalyticsError(f"{text!r} is not an ISO 8601 date (x holds dates)") from None
