"""Dates as numbers: the analytics work in days since 1970-01-01T00:00:00Z (UTC).

A column of ISO 8601 dates or date-times becomes floats in days, so a slope is per day.
Naive date-times are taken as UTC; a bare date is its midnight UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

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
