"""The one way the analytics take a series of numbers in: a one-dimensional float64 array with
every value finite, else an :class:`AnalyticsError` naming the first bad index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gateway.analytics.errors import AnalyticsError

FloatArray = npt.NDArray[np.float64]


def finite_array(
    values: Sequence[float] | FloatArray, name: str = "the values", item: str = "value "
) -> FloatArray:
    """``values`` as an array; ``name`` says what they are (``"{name} must be a
    one-dimensional sequence …"``), ``item`` names one of them (``"{item}[3] is not a finite
    number"``)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise AnalyticsError(f"{name} must be a one-dimensional sequence of numbers")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise AnalyticsError(f"{item}[{bad}] is not a finite number")
    return array
