"""Device values as JSON: nothing a device sends may break a response."""

from __future__ import annotations

import math

from exporters.http.convert import json_value


def test_values_json_can_carry() -> None:
    structure = {"Speed": 1.5, "Raw": b"\x01\xff", "Limits": [math.inf, 2.0], "Nested": {"Ok": True}}
    assert json_value(structure) == {
        "Speed": 1.5,
        "Raw": "01ff",
        "Limits": [None, 2.0],
        "Nested": {"Ok": True},
    }
    assert json_value(math.nan) is None
    assert json_value((1, "a")) == [1, "a"]
