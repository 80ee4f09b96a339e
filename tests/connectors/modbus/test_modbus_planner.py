"""Read planner: merging, gap bridging, limits, and the fewest requests possible."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.modbus.planner import Item, Limits, Plan, Request, describe, plan_requests


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


def _feasible(block: list[Item], limits: Limits) -> bool:
    """Could one request carry exactly these items? Same unit and table, span and holes in limits."""
    if len({(i.unit_id, i.table) for i in block}) > 1:
        return False
    ranges = sorted((i.address, i.address + i.count) for i in block)
    if max(e for _, e in ranges) - ranges[0][0] > limits.span_limit(block[0].table):
        return False
    end = ranges[0][1]
    for start, stop in ranges[1:]:
        if start - end > limits.max_gap:
            return False
        end = max(end, stop)
    return True


def _brute_force_minimum(items: list[Item], limits: Limits) -> int:
    return min(len(p) for p in _partitions(items) if all(_feasible(b, limits) for b in p))


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
