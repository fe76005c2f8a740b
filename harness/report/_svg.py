"""Tiny inline-SVG charts (no JavaScript, no external assets)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["Series", "Shade", "line_chart", "nice_ticks"]

PALETTE = (
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#9333ea",
    "#ea580c",
    "#0891b2",
    "#ca8a04",
    "#db2777",
    "#4b5563",
    "#65a30d",
)
#: Width given to one legend entry; entries wrap onto rows below the plot.
_LEGEND_ITEM_W = 240
_LEGEND_ROW_H = 16


@dataclass(frozen=True, slots=True)
class Series:
    """A named polyline (or dots)."""

    name: str
    points: Sequence[tuple[float, float]]
    dots: bool = False
    #: A thinner dashed line (an envelope such as a max, drawn under the rest).
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Shade:
    """A shaded x interval (a fault)."""

    x0: float
    x1: float
    label: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class _Frame:
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    width: int
    height: int
    left: int = 60
    right: int = 20
    top: int = 20
    bottom: int = 40
    shades: Sequence[Shade] = field(default_factory=tuple)

    def x(self, value: float) -> float:
        span = (self.x_max - self.x_min) or 1.0
        return self.left + (value - self.x_min) / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        span = (self.y_max - self.y_min) or 1.0
        plot = self.height - self.top - self.bottom
        return self.top + plot - (value - self.y_min) / span * plot


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]``."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    return [
        first + i * step
        for i in range(int((hi - first) / step) + 2)
        if first + i * step <= hi + 1e-9
    ]


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 720,
    height: int = 280,
    shades: Sequence[Shade] = (),
    x_ticks: Sequence[tuple[float, str]] | None = None,
    y_format: Callable[[float], str] = lambda v: f"{v:g}",
) -> str:
    """An inline ``<svg>`` line chart with axes, ticks, legend and shaded intervals."""
    xs = [x for s in series for x, _ in s.points] + [v for sh in shades for v in (sh.x0, sh.x1)]
    ys = [y for s in series for _, y in s.points]
    if not xs or not ys:
        return f'<p class="muted">{escape(title)}: no data</p>'
    y_ticks = nice_ticks(0.0, max(ys) * 1.05 or 1.0)
    frame = _Frame(min(xs), max(xs), 0.0, max(y_ticks[-1], max(ys)), width, height, shades=shades)
    per_row = max(1, (width - frame.left - frame.right) // _LEGEND_ITEM_W)
    legend_rows = -(-len(series) // per_row)
    total_h = height + legend_rows * _LEGEND_ROW_H + (6 if legend_rows else 0)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {total_h}" width="{width}" '
        f'height="{total_h}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    ]
    for sh in shades:
        x0, x1 = frame.x(sh.x0), frame.x(sh.x1)
        out.append(
            f'<rect class="fault" x="{x0:.1f}" y="{frame.top}" width="{max(1.0, x1 - x0):.1f}" '
            f'height="{height - frame.top - frame.bottom}"><title>{escape(sh.label)}</title></rect>'
        )
    for tick in y_ticks:
        y = frame.y(tick)
        out.append(
            f'<line class="grid" x1="{frame.left}" x2="{width - frame.right}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(y_format(tick))}</text>"
        )
    ticks = (
        x_ticks
        if x_ticks is not None
        else [(t, f"{t:g}") for t in nice_ticks(frame.x_min, frame.x_max)]
    )
    for value, label in ticks:
        if frame.x_min <= value <= frame.x_max:
            x = frame.x(value)
            out.append(
                f'<text class="tick" x="{x:.1f}" y="{height - frame.bottom + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    out.append(
        f'<line class="axis" x1="{frame.left}" x2="{width - frame.right}" '
        f'y1="{frame.y(0):.1f}" y2="{frame.y(0):.1f}"/>'
        f'<text class="label" x="{width / 2:.0f}" y="{height - 4}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text class="label" x="12" y="{height / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {height / 2:.0f})">{escape(y_label)}</text>'
    )
    for n, s in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        coords = [(frame.x(x), frame.y(y)) for x, y in s.points]
        if s.dots:
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}"/>' for x, y in coords]
        else:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            style = 'stroke-width="1.2" stroke-dasharray="4 3"' if s.dashed else 'stroke-width="2"'
            out.append(f'<polyline fill="none" stroke="{colour}" {style} points="{path}"/>')
        lx = frame.left + (n % per_row) * _LEGEND_ITEM_W
        ly = height + 6 + (n // per_row) * _LEGEND_ROW_H
        out.append(
            f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{colour}"/>'
            f'<text class="legend" x="{lx + 14}" y="{ly + 9}">{escape(s.name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
