"""Coalescing: the plan covers every channel, keeps the limits, and is as short as possible."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus.plan import Limits, Request, Span, plan


def uncovered_runs(request: Request, spans: list[Span]) -> list[int]:
    """Lengths of the runs of addresses inside the request that none of its channels wants."""
    wanted = set()
    for index in request.members:
        wanted.update(range(spans[index].start, spans[index].end))
    runs, current = [], 0
    for address in range(request.span.start, request.span.end):
        if address in wanted:
            if current:
                runs.append(current)
            current = 0
        else:
            current += 1
    if current:
        runs.append(current)
    return runs


def check_plan(spans: list[Span], limits: Limits, requests: list[Request]) -> None:
    served = sorted(i for r in requests for i in r.members)
    assert served == list(range(len(spans))), "every channel exactly once"
    for request in requests:
        max_count, max_gap = limits.for_table(request.span.table)
        assert 1 <= request.span.count <= max_count
        for index in request.members:
            assert request.span.contains(spans[index])
        # The request starts and ends on wanted addresses and reads through no longer gap.
        assert all(run <= max_gap for run in uncovered_runs(request, spans))
        assert request.span.start == min(spans[i].start for i in request.members)
        assert request.span.end == max(spans[i].end for i in request.members)


def optimum(spans: list[Span], limits: Limits) -> int:
    """The fewest requests, by breadth-first search over every valid request (exhaustive)."""
    total = len(spans)
    candidates: set[int] = set()
    for s in spans:
        for e in spans:
            if s.table != e.table:
                continue
            window = Span(s.table, s.start, max(e.end, s.end))
            max_count, max_gap = limits.for_table(s.table)
            if window.count > max_count:
                continue
            inside = [i for i, c in enumerate(spans) if window.contains(c)]
            if not inside:
                continue
            probe = Request(window, tuple(inside))
            if all(run <= max_gap for run in uncovered_runs(probe, spans)):
                candidates.add(sum(1 << i for i in inside))
    full = (1 << total) - 1
    seen = {0}
    queue = deque([(0, 0)])
    while queue:
        covered, steps = queue.popleft()
        if covered == full:
            return steps
        for mask in candidates:
            nxt = covered | mask
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, steps + 1))
    raise AssertionError("no cover")


WIDTHS = st.sampled_from([1, 1, 1, 2, 2, 4, 5])
TABLES = st.sampled_from(["holding", "input", "coil"])


@st.composite
def channel_sets(draw: st.DrawFn, max_channels: int = 9, max_address: int = 80) -> list[Span]:
    spans = []
    for _ in range(draw(st.integers(1, max_channels))):
        table = draw(TABLES)
        width = 1 if table == "coil" else draw(WIDTHS)
        start = draw(st.integers(0, max_address))
        spans.append(Span(table, start, start + width))
    return spans


LIMITS = st.builds(
    Limits,
    max_registers=st.integers(5, 20),
    max_bits=st.integers(1, 20),
    gap_registers=st.integers(0, 6),
    gap_bits=st.integers(0, 6),
)


@settings(max_examples=400, deadline=None)
@given(spans=channel_sets(), limits=LIMITS)
def test_plan_is_valid_and_minimal(spans: list[Span], limits: Limits) -> None:
    requests = plan(spans, limits)
    check_plan(spans, limits, requests)
    assert len(requests) == optimum(spans, limits)


@settings(max_examples=150, deadline=None)
@given(
    spans=channel_sets(max_channels=300, max_address=4000),
    gap=st.integers(0, 124),
)
def test_protocol_limits_hold_for_large_maps(spans: list[Span], gap: int) -> None:
    limits = Limits(max_registers=125, max_bits=2000, gap_registers=gap, gap_bits=gap)
    check_plan(spans, limits, plan(spans, limits))


@settings(max_examples=200, deadline=None)
@given(spans=channel_sets(), limits=LIMITS, data=st.data())
def test_forbidden_ranges_are_never_contained(
    spans: list[Span], limits: Limits, data: st.DataObject
) -> None:
    bans = data.draw(st.lists(st.sampled_from(spans), max_size=3))
    requests = plan(spans, limits, forbidden=bans)
    check_plan(spans, limits, requests)
    for request in requests:
        lone = len({spans[i] for i in request.members}) == 1
        for ban in bans:
            assert lone or not request.span.contains(ban)


def test_contiguous_registers_fill_whole_requests() -> None:
    spans = [Span("holding", a, a + 1) for a in range(1000)]
    requests = plan(spans, Limits())
    assert len(requests) == 8
    assert [r.span.count for r in requests] == [125] * 8


def test_gap_setting_decides_merging() -> None:
    spans = [Span("input", 0, 2), Span("input", 10, 12)]
    assert len(plan(spans, Limits(gap_registers=7))) == 2
    assert len(plan(spans, Limits(gap_registers=8))) == 1
    merged = plan(spans, Limits(gap_registers=8))[0]
    assert (merged.span.start, merged.span.count) == (0, 12)


def test_tables_are_never_mixed_and_bits_of_one_register_share_it() -> None:
    spans = [
        Span("holding", 20, 21),
        Span("holding", 20, 21),
        Span("input", 20, 21),
        Span("coil", 20, 21),
    ]
    requests = plan(spans, Limits())
    assert [(r.span.table, r.members) for r in requests] == [
        ("coil", (3,)),
        ("holding", (0, 1)),
        ("input", (2,)),
    ]
