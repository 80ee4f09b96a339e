"""Read planner: merging, gap bridging, limits, and the fewest requests possible."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.modbus.planner import Item, Limits, Plan, Readable, Request, describe, plan_requests


def spans(plan: Plan) -> list[tuple[int, str, int, int]]:
    """(unit, table, address, count) of each request."""
    return [(r.unit_id, r.table, r.address, r.count) for r in plan.requests]


def test_adjacent_ranges_merge_into_one_request() -> None:
    """state, counters, energy as in the simulator: one FC3 request."""
    items = [Item(0, 1, "holding", 0, 1), Item(1, 1, "holding", 1, 1), Item(2, 1, "holding", 2, 2)]
    plan = plan_requests(items)
    assert spans(plan) == [(1, "holding", 0, 4)]
    assert plan.requests[0].items == ((0, 0), (1, 1), (2, 2))


def test_gap_bridging_up_to_max_gap() -> None:
    """A hole of max_gap registers is read through; one more splits the request."""
    items = [Item(0, 1, "holding", 0, 2), Item(1, 1, "holding", 12, 2)]  # hole of 10: 2..11
    assert spans(plan_requests(items, Limits(max_gap=10))) == [(1, "holding", 0, 14)]
    assert spans(plan_requests(items, Limits(max_gap=9))) == [(1, "holding", 0, 2), (1, "holding", 12, 2)]
    assert len(plan_requests(items, Limits(max_gap=0)).requests) == 2


def test_offsets_point_into_the_response() -> None:
    """Each item's offset is its address minus the request's start."""
    items = [Item(7, 1, "holding", 105, 2), Item(3, 1, "holding", 100, 1), Item(5, 1, "holding", 110, 4)]
    (req,) = plan_requests(items).requests
    assert (req.address, req.count) == (100, 14)
    assert dict(req.items) == {3: 0, 7: 5, 5: 10}


def test_register_limit_respected() -> None:
    """130 consecutive registers need two requests at 125, nine at 16."""
    items = [Item(k, 1, "holding", k, 1) for k in range(130)]
    assert spans(plan_requests(items)) == [(1, "holding", 0, 125), (1, "holding", 125, 5)]
    plan = plan_requests(items, Limits(max_registers=16))
    assert len(plan.requests) == 9
    assert all(r.count <= 16 for r in plan.requests)


def test_multi_register_item_never_split() -> None:
    """A float32 that would straddle the limit starts the next request."""
    items = [Item(0, 1, "holding", 0, 4), Item(1, 1, "holding", 4, 2)]
    assert spans(plan_requests(items, Limits(max_registers=5))) == [
        (1, "holding", 0, 4),
        (1, "holding", 4, 2),
    ]


def test_bits_use_the_bit_limit() -> None:
    """Coils merge up to max_bits, not max_registers."""
    items = [Item(k, 1, "coil", k * 10, 1) for k in range(30)]  # bits 0..290
    assert spans(plan_requests(items, Limits(max_registers=16, max_gap=10))) == [(1, "coil", 0, 291)]
    assert len(plan_requests(items, Limits(max_bits=100, max_gap=10)).requests) == 3


def test_never_across_units_or_tables() -> None:
    """Same addresses on other units or tables are separate requests."""
    items = [
        Item(0, 1, "holding", 0, 1),
        Item(1, 2, "holding", 1, 1),
        Item(2, 1, "input", 1, 1),
        Item(3, 1, "coil", 0, 1),
        Item(4, 1, "discrete", 0, 1),
    ]
    plan = plan_requests(items)
    assert len(plan.requests) == 5
    assert {(r.unit_id, r.table) for r in plan.requests} == {
        (1, "holding"),
        (2, "holding"),
        (1, "input"),
        (1, "coil"),
        (1, "discrete"),
    }


def test_overlapping_items_share_registers() -> None:
    """Two bools from bits of one register and the register itself: one request, one register."""
    items = [Item(0, 1, "holding", 4, 1), Item(1, 1, "holding", 4, 1), Item(2, 1, "holding", 3, 2)]
    (req,) = plan_requests(items).requests
    assert (req.address, req.count) == (3, 2)
    assert dict(req.items) == {2: 0, 0: 1, 1: 1}


def test_oversized_items_are_rejected_with_a_reason() -> None:
    """A 100-register string cannot be read with 16 registers per request."""
    plan = plan_requests(
        [Item(0, 1, "holding", 0, 100), Item(1, 1, "holding", 0, 1)], Limits(max_registers=16)
    )
    assert spans(plan) == [(1, "holding", 0, 1)]
    assert plan.rejected[0][0] == 0
    assert "100 registers exceed the limit of 16" in plan.rejected[0][1]


def test_describe_for_integrators() -> None:
    """One line per request with function code and range, then its signals with offsets."""
    items = [Item(0, 1, "holding", 0, 1), Item(1, 1, "holding", 10, 2), Item(2, 1, "input", 0, 2)]
    plan = plan_requests(items)
    text = describe(
        plan, {0: "line/press1/state", 1: "line/press1/good", 2: "line/press1/speed"}, {0: 1, 1: 2, 2: 2}
    )
    lines = text.splitlines()
    assert lines[0].startswith("2 request(s) per poll for 3 binding(s) on 1 unit(s)")
    assert "#1 unit 1 FC3 holding 0..11 (12 registers, 9 unused)" in text
    assert "#2 unit 1 FC4 input 0..1 (2 registers, 0 unused)" in text
    assert "+10   line/press1/good" in text
    assert "holding 1..12" in describe(plan, addressing=1)


# ---- minimality: greedy merge vs. brute force on small random maps ---------------------------


def _partitions(xs: list[Item]) -> Iterator[list[list[Item]]]:
    if not xs:
        yield []
        return
    first, rest = xs[0], xs[1:]
    for p in _partitions(rest):
        for i in range(len(p)):
            yield [*p[:i], [first, *p[i]], *p[i + 1 :]]
        yield [[first], *p]


def _hole_readable(readable: set[int] | None, start: int, stop: int) -> bool:
    return readable is None or all(a in readable for a in range(start, stop))


def _feasible(block: list[Item], limits: Limits, readable: set[int] | None = None) -> bool:
    """Could one request carry exactly these items? Same unit and table, span and holes in limits,
    every hole address readable (`readable`: the readable addresses, None = all)."""
    if len({(i.unit_id, i.table) for i in block}) > 1:
        return False
    ranges = sorted((i.address, i.address + i.count) for i in block)
    if max(e for _, e in ranges) - ranges[0][0] > limits.span_limit(block[0].table):
        return False
    end = ranges[0][1]
    for start, stop in ranges[1:]:
        if start - end > limits.max_gap or not _hole_readable(readable, end, start):
            return False
        end = max(end, stop)
    return True


def _brute_force_minimum(items: list[Item], limits: Limits, readable: set[int] | None = None) -> int:
    return min(len(p) for p in _partitions(items) if all(_feasible(b, limits, readable) for b in p))


@st.composite
def maps(draw: st.DrawFn, max_items: int = 7) -> tuple[list[Item], Limits]:
    """Small random register maps, overlaps allowed, with random limits."""
    limits = Limits(
        max_registers=draw(st.integers(2, 12)),
        max_bits=draw(st.integers(2, 12)),
        max_gap=draw(st.integers(0, 4)),
    )
    n = draw(st.integers(1, max_items))
    items = []
    for key in range(n):
        table = draw(st.sampled_from(["holding", "input", "coil"]))
        count = 1 if table == "coil" else draw(st.integers(1, limits.max_registers))
        items.append(Item(key, draw(st.integers(1, 2)), table, draw(st.integers(0, 30)), count))
    return items, limits


def _check_plan(items: list[Item], limits: Limits, requests: tuple[Request, ...]) -> None:
    by_key = {i.key: i for i in items}
    seen = [key for r in requests for key, _ in r.items]
    assert sorted(seen) == sorted(by_key)  # every item read exactly once
    for r in requests:
        assert 1 <= r.count <= limits.span_limit(r.table)
        for key, offset in r.items:
            item = by_key[key]
            assert (item.unit_id, item.table) == (r.unit_id, r.table)
            assert r.address + offset == item.address
            assert offset + item.count <= r.count


@settings(max_examples=300, deadline=None, database=None)
@given(maps())
def test_greedy_plan_is_minimal(case: tuple[list[Item], Limits]) -> None:
    """The plan covers every item correctly with the theoretical minimum number of requests."""
    items, limits = case
    plan = plan_requests(items, limits)
    assert not plan.rejected
    _check_plan(items, limits, plan.requests)
    assert len(plan.requests) == _brute_force_minimum(items, limits)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5000), st.integers(1, 4)), max_size=300))
def test_large_maps_stay_valid(raw: list[tuple[int, int, int]]) -> None:
    """Hundreds of bindings: still every item once, within limits, never more requests than items."""
    items = [Item(k, unit, "holding", address, count) for k, (unit, address, count) in enumerate(raw)]
    limits = Limits(max_registers=125, max_gap=10)
    plan = plan_requests(items, limits)
    _check_plan(items, limits, plan.requests)
    assert len(plan.requests) <= len(items)


# ---- readable ranges -----------------------------------------------------------------------------


def test_gaps_are_bridged_only_inside_readable_ranges() -> None:
    """8 and 21 with max_gap 20: one request, unless 10-19 is known not to exist."""
    items = [Item(0, 1, "holding", 8, 1), Item(1, 1, "holding", 21, 1)]
    limits = Limits(max_gap=20)
    assert spans(plan_requests(items, limits)) == [(1, "holding", 8, 14)]
    holes = Readable([(None, "holding", 0, 10), (None, "holding", 20, 30)])
    assert spans(plan_requests(items, limits, holes)) == [(1, "holding", 8, 1), (1, "holding", 21, 1)]
    whole = Readable([(None, "holding", 0, 30)])
    assert spans(plan_requests(items, limits, whole)) == [(1, "holding", 8, 14)]
    touching = Readable([(None, "holding", 0, 15), (None, "holding", 15, 30)])  # one span, 0-29
    assert spans(plan_requests(items, limits, touching)) == [(1, "holding", 8, 14)]


def test_readable_ranges_are_per_unit_and_table() -> None:
    """A range for unit 2 does not restrict unit 1; input registers are not holding registers."""
    items = [
        Item(k, unit, table, a, 1)
        for k, (unit, table, a) in enumerate(
            [
                (1, "holding", 0),
                (1, "holding", 5),
                (2, "holding", 0),
                (2, "holding", 5),
                (2, "input", 0),
                (2, "input", 5),
            ]
        )
    ]
    readable = Readable([(2, "holding", 0, 1), (2, "holding", 5, 6)])
    assert spans(plan_requests(items, Limits(), readable)) == [
        (1, "holding", 0, 6),
        (2, "holding", 0, 1),
        (2, "holding", 5, 1),
        (2, "input", 0, 6),
    ]
    assert readable.spans(1, "holding") is None
    assert readable.spans(2, "holding") == [(0, 1), (5, 6)]


def test_adjacent_bindings_outside_ranges_still_merge() -> None:
    """Bound registers are readable by definition: touching ones merge without any hole to check."""
    items = [Item(0, 1, "holding", 100, 2), Item(1, 1, "holding", 102, 1)]
    assert spans(plan_requests(items, Limits(), Readable([(None, "holding", 0, 10)]))) == [
        (1, "holding", 100, 3)
    ]


@st.composite
def maps_with_ranges(draw: st.DrawFn) -> tuple[list[Item], Limits, list[tuple[int, int]]]:
    """Small holding-register maps of one unit with random readable ranges over 0..40."""
    items, limits = draw(maps(max_items=6))
    items = [Item(i.key, 1, "holding", i.address, i.count) for i in items]
    ranges = []
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, 40))
        ranges.append((start, start + draw(st.integers(1, 15))))
    return items, limits, ranges


@settings(max_examples=300, deadline=None, database=None)
@given(maps_with_ranges())
def test_plan_with_readable_ranges_is_minimal_and_never_reads_outside(
    case: tuple[list[Item], Limits, list[tuple[int, int]]],
) -> None:
    """Every hole a request reads lies in a readable range, and the plan is still the minimum."""
    items, limits, ranges = case
    readable = {a for start, end in ranges for a in range(start, end)}
    bound = {a for i in items for a in range(i.address, i.address + i.count)}
    plan = plan_requests(items, limits, Readable((None, "holding", s, e) for s, e in ranges))
    _check_plan(items, limits, plan.requests)
    for r in plan.requests:
        for a in range(r.address, r.address + r.count):
            assert a in bound or a in readable, (r, a)
    assert len(plan.requests) == _brute_force_minimum(items, limits, readable)
