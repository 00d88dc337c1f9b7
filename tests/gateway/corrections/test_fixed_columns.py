"""The columns a spool entry carries: the floats' little-endian bytes, whatever the arrays'
own byte order or type (the common float64 arrays are taken as they are)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from gateway.tsdb.points import FixedColumns


@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<f4", "<i8"])
def test_spooled_columns_are_little_endian_float64(dtype: str) -> None:
    values, us = [1.5, -0.25, 1e-7, 42.0], [0.5, 0.125, 2.0, 3.0]
    columns = FixedColumns(None, np.array(values, dtype=dtype), np.array(us, dtype=dtype), 1, None)
    spooled = columns.spooled()
    expected = [float(np.array([v], dtype=dtype)[0]) for v in values]
    assert spooled["value_f64"] == struct.pack("<4d", *expected)
    assert spooled["u_f64"] == struct.pack(
        "<4d", *[float(np.array([v], dtype=dtype)[0]) for v in us]
    )
