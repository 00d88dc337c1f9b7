"""An agent's table of linked channels: whether a batch's timestamps all fall in every slot's
interval (:meth:`_AgentTable.within`), in order or not."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gateway.corrections.spans import _AgentTable, _stamps_between

LATEST, EARLIEST = 1_000, 2_000


def _table() -> _AgentTable:
    table = _AgentTable({}, [], np.array([LATEST]), np.array([EARLIEST]), np.zeros(1, np.intp))
    table.latest, table.earliest = LATEST, EARLIEST
    table.in_force = _stamps_between(LATEST, EARLIEST)
    return table


# Around both bounds: in, at, just outside, far outside.
_stamps = st.lists(
    st.one_of(
        st.integers(LATEST - 3, LATEST + 3),
        st.integers(EARLIEST - 3, EARLIEST + 3),
        st.integers(LATEST, EARLIEST - 1),
        st.integers(-(2**63), 2**63 - 1),
    ),
    min_size=1,
    max_size=40,
)


@given(_stamps, st.booleans())
def test_within_is_every_timestamp_in_the_interval(stamps: list[int], ordered: bool) -> None:
    if ordered:
        stamps = sorted(stamps)
    expected = all(LATEST <= ts < EARLIEST for ts in stamps)
    assert _table().within(stamps) is expected


def test_within_an_empty_batch_and_equal_timestamps() -> None:
    table = _table()
    assert table.within([]) is True  # nothing outside (as the checked path says)
    assert table.within([LATEST] * 5) is True
    assert table.within([EARLIEST] * 5) is False
    assert table.within([LATEST, EARLIEST - 1, LATEST]) is True  # not in order
    assert table.within([EARLIEST - 1, LATEST - 1]) is False
