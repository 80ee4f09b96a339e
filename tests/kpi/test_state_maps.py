"""State maps: demo codes, OPC 40001-1 pairs, config round trip and errors."""

from __future__ import annotations

import pytest

from orchestrator.kpi import DEMO_MACHINE_STATE, MACHINE_TOOL, MACHINERY, READY_MAPS, StateMap, TimeElement

APT, AUST, ADET, ADOT, PDOT, UNKNOWN = (
    TimeElement.APT,
    TimeElement.AUST,
    TimeElement.ADET,
    TimeElement.ADOT,
    TimeElement.PDOT,
    TimeElement.UNKNOWN,
)


def test_demo_machine_codes() -> None:
    """MachineState 0 planned stop, 1 down, 2 idle, 3 running, 4 setup; anything else UNKNOWN."""
    assert [DEMO_MACHINE_STATE(code) for code in range(5)] == [PDOT, ADET, ADOT, APT, AUST]
    assert DEMO_MACHINE_STATE(3.0) is APT  # a float register decodes to the same key
    assert DEMO_MACHINE_STATE(7) is UNKNOWN
    assert DEMO_MACHINE_STATE("running") is UNKNOWN
    assert DEMO_MACHINE_STATE([1, 2]) is UNKNOWN  # unhashable arrays do not crash


@pytest.mark.parametrize(
    ("item_state", "mode", "element"),
    [
        (3, 3, APT),  # Executing, Processing
        (3, 2, AUST),  # Executing, Setup
        (1, 3, ADET),  # OutOfService while an order runs
        (2, 3, ADET),  # NotExecuting (out of cycle) while an order runs
        (2, 0, ADOT),  # NotExecuting, no order
        (0, 0, ADOT),  # NotAvailable, no order
        (2, 1, PDOT),  # Maintenance mode: planned maintenance
        (2, 2, AUST),  # stopped in Setup mode: changeover
    ],
)
def test_machinery_pairs(item_state: int, mode: int, element: TimeElement) -> None:
    """OPC 40001-1 (MachineryItemState, MachineryOperationMode) per STANDARDS.md §1.3."""
    assert MACHINERY((item_state, mode)) is element
    assert MACHINERY([item_state, mode]) is element  # arrays arrive as lists


def test_ready_maps_by_name() -> None:
    """Ready maps are listed by name; MACHINERY reads two named signals."""
    assert READY_MAPS["machinery"] is MACHINERY
    assert MACHINERY.inputs == ("item_state", "operation_mode")
    assert MACHINE_TOOL(1) is ADET and MACHINE_TOOL(2) is ADOT


def test_from_config_and_back() -> None:
    """Bucket names → raw values, pairs as lists; `to_config` inverts it."""
    config: dict[str, list[object]] = {"production": [1, "RUN"], "delay": [[5, 6]], "planned_down": [0]}
    m = StateMap.from_config("plc", config, default="no_order")
    assert m(1) is APT and m("RUN") is APT and m((5, 6)) is ADET and m(0) is PDOT
    assert m(42) is ADOT  # the configured default
    assert StateMap.from_config("again", m.to_config(), default="no_order").to_config() == config


def test_from_config_errors_name_the_problem() -> None:
    """A value in two buckets or an unknown bucket name is a ValueError that says which."""
    with pytest.raises(ValueError, match=r"raw state 3 is under both 'production' and 'delay'"):
        StateMap.from_config("plc", {"production": [3], "delay": [3]})
    with pytest.raises(ValueError, match=r"unknown bucket 'running'"):
        StateMap.from_config("plc", {"running": [3]})
