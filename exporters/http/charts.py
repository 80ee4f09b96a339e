"""Server-side SVG charts: no JavaScript, no CDN, nothing fetched by the page (the park may be offline).

Charts scale with their container (`viewBox`, width 100%) and use presentation attributes, not
inline styles, so the dashboard's Content-Security-Policy can forbid inline styles and scripts.
Every text is escaped; the output is `Markup` for the templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from markupsafe import Markup, escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT = 600, 250
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 12, 30
FONT = 14  # in viewBox units: about 11 px when a chart is 480 px wide


@dataclass(frozen=True)
class Series:
    """One named line: (POSIX seconds, value) points, oldest first."""

    name: str
    points: list[tuple[float, float]] = field(default_factory=list)


def colour(index: int) -> str:
    """The colour of the index-th series (legends use the same)."""
    return PALETTE[index % len(PALETTE)]


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _empty(label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT // 3}" role="img" aria-label="{escape(label)}">'
        f'<text x="{WIDTH // 2}" y="{HEIGHT // 6}" text-anchor="middle" font-size="{FONT}" fill="#666">'
        "no data yet</text></svg>"
    )


def line_chart(
    label: str, series: Sequence[Series], start: float, end: float, y_max: float | None = None
) -> Markup:
    """Lines of ratio-like values over [start, end] (y from 0 to max(1, data) unless given)."""
    drawn = [s for s in series if s.points]
    if not drawn or end <= start:
        return _empty(label)
    top = y_max or max(1.0, *(v for s in drawn for _, v in s.points))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (min(max(t, start), end) - start) / (end - start) * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - min(max(v, 0.0), top) / top * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
    ]
    for i in range(5):  # horizontal grid at 0, 25, 50, 75, 100 % of the scale
        v = top * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_fmt(y(v))}" y2="{_fmt(y(v))}" stroke="#ddd"/>'
            f'<text x="{LEFT - 4}" y="{_fmt(y(v) + 4)}" text-anchor="end" font-size="{FONT}" fill="#555">'
            f"{v * 100:.0f}%</text>"
        )
    for i in range(5):  # time ticks, UTC
        t = start + (end - start) * i / 4
        stamp = datetime.fromtimestamp(t, UTC).strftime("%H:%M")
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"  # keep edge labels inside
        parts.append(
            f'<text x="{_fmt(x(t))}" y="{HEIGHT - 8}" text-anchor="{anchor}" font-size="{FONT}" fill="#555">'
            f"{stamp}</text>"
        )
    for index, s in enumerate(series):
        if not s.points:
            continue
        stroke = colour(index)
        coords = " ".join(f"{_fmt(x(t))},{_fmt(y(v))}" for t, v in s.points)
        parts.append(
            f'<polyline class="series" points="{coords}" fill="none" stroke="{stroke}" stroke-width="2"/>'
        )
        for t, v in s.points:
            when = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")
            parts.append(
                f'<circle cx="{_fmt(x(t))}" cy="{_fmt(y(v))}" r="3" fill="{stroke}">'
                f"<title>{escape(s.name)}: {v * 100:.1f}% at {when}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Spread:
    """One box of a range chart: quartiles, median and best of a KPI."""

    label: str
    q1: float
    median: float
    q3: float
    best: float


def range_chart(label: str, rows: Sequence[Spread]) -> Markup:
    """Horizontal boxes q1–q3 with the median and the best value, on a 0–100 % scale."""
    if not rows:
        return _empty(label)
    row_h, left, right = 26, 130, 16
    height = TOP + row_h * len(rows) + BOTTOM
    plot_w = WIDTH - left - right
    top = max(1.0, *(r.best for r in rows), *(r.q3 for r in rows))

    def x(v: float) -> float:
        return left + min(max(v, 0.0), top) / top * plot_w

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
    ]
    for i in range(5):
        v = top * i / 4
        parts.append(
            f'<line x1="{_fmt(x(v))}" x2="{_fmt(x(v))}" y1="{TOP}" y2="{height - BOTTOM}" stroke="#ddd"/>'
            f'<text x="{_fmt(x(v))}" y="{height - 8}" text-anchor="middle" font-size="{FONT}" fill="#555">'
            f"{v * 100:.0f}%</text>"
        )
    for i, r in enumerate(rows):
        mid = TOP + row_h * i + row_h / 2
        x1, xm = _fmt(x(r.q1)), _fmt(x(r.median))
        width = _fmt(max(1.0, x(r.q3) - x(r.q1)))
        tip = (
            f"{escape(r.label)}: q1 {r.q1 * 100:.1f}%, median {r.median * 100:.1f}%, "
            f"q3 {r.q3 * 100:.1f}%, best {r.best * 100:.1f}%"
        )
        parts.append(
            f'<text x="{left - 6}" y="{_fmt(mid + 4)}" text-anchor="end" font-size="{FONT}">'
            f"{escape(r.label)}</text>"
            f'<rect class="box" x="{x1}" y="{_fmt(mid - 8)}" width="{width}" height="16"'
            f' fill="{PALETTE[0]}" fill-opacity="0.35" stroke="{PALETTE[0]}"><title>{tip}</title></rect>'
            f'<line x1="{xm}" x2="{xm}" y1="{_fmt(mid - 10)}" y2="{_fmt(mid + 10)}"'
            f' stroke="#000" stroke-width="2"/>'
            f'<circle cx="{_fmt(x(r.best))}" cy="{_fmt(mid)}" r="4" fill="{PALETTE[1]}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
