"""When a drift fit reaches a tolerance limit: the fields the evaluation stores
(:class:`~gateway.standards.results.CrossingDates`) and the chart sends
(:class:`~gateway.standards.chart.CrossingView`), declared once. Light on purpose: the API
imports the chart's models without numpy."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class CrossingFields(BaseModel):
    """When a drift fit reaches a tolerance limit, searched from ``searched_from_ns``."""

    searched_from_ns: int
    searched_until_ns: int
    already_outside: bool
    earliest_ns: int | None
    """The prediction interval reaches a limit: the date to plan by."""
    likely_ns: int | None
    """The fitted curve reaches a limit."""
    bounds_ns: tuple[int | None, int | None]
    """The curve's confidence band reaches a limit (first its outer, then its inner edge):
    the interval of the date at which the true value crosses; None past the horizon."""
    side: Literal["upper", "lower"] | None
