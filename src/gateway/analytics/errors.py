"""The error the analytics raise when their input cannot be analysed."""

from __future__ import annotations

from core.errors import InvalidInputError


class AnalyticsError(InvalidInputError, ValueError):
    """The data cannot be analysed as asked (too few points, non-finite values, bad option).

    The message says what is wrong in words a metrologist can act on.
    """
