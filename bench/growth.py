"""How a cost grows with the number of signals: ratios between consecutive sizes and a verdict.

A cost that is linear in the size grows 10× when the size grows 10×. The verdict uses the growth
normalised to a 10× step: 8–12× is "linear", below is "sublinear" (fixed costs still dominate),
above is "superlinear".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

LINEAR_PER_10X = (8.0, 12.0)


def verdict(per_10x: float) -> str:
    low, high = LINEAR_PER_10X
    if per_10x < low:
        return "sublinear"
    if per_10x > high:
        return "superlinear"
    return "linear"


def growth(totals: Mapping[int, float]) -> list[dict[str, Any]]:
    """Consecutive steps of `totals` (size → total cost at that size, e.g. seconds per scrape).

    Each step: sizes, the cost ratio, that ratio normalised to a 10× step, and the verdict.
    """
    sizes = sorted(s for s, v in totals.items() if v == v and v > 0)  # skip NaN, 0, missing
    steps: list[dict[str, Any]] = []
    for small, large in itertools.pairwise(sizes):
        ratio = totals[large] / totals[small]
        per_10x = ratio ** (1 / math.log10(large / small))
        steps.append(
            {
                "from": small,
                "to": large,
                "size_ratio": large / small,
                "ratio": ratio,
                "per_10x": per_10x,
                "verdict": verdict(per_10x),
            }
        )
    return steps


def overall(steps: list[dict[str, Any]]) -> str:
    """One word for all steps: the verdict if they agree, else e.g. 'sublinear, then linear'."""
    words = [s["verdict"] for s in steps]
    if not words:
        return "n/a"
    merged = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]
    return ", then ".join(merged)
