"""Charts drawn on the server as inline SVG: no JavaScript, readable by screen readers.

A chart is stacked bars, one per label (an hour, a day), one segment per series. The
chart's title is its accessible name and is drawn above it too; each bar carries a
`<title>` with its numbers, so hovering shows them and assistive technology reads them.
Text is drawn large enough to stay readable when the chart is scaled down to a narrow
column, in colours that pass WCAG AA contrast on white.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

TONES = {
    "ok": "#1a7f37",
    "bad": "#b42318",
    "info": "#0b5cad",
    "warn": "#9a6700",
    "neutral": "#6b7684",
}
MAX_AXIS_LABELS = 8
LABEL_SIZE = 14  # in viewBox units: about 11px when a 640-wide chart is drawn 500px wide
TITLE_SIZE = 16
LABEL_INK, TITLE_INK = "#5b6675", "#1b2430"
_ids = count(1)


@dataclass(frozen=True)
class Series:
    """One stacked segment of every bar: a name, a value per label and a colour tone."""

    name: str
    values: Sequence[float]
    tone: str = "info"


@dataclass(frozen=True)
class Chart:
    title: str
    labels: Sequence[str]
    series: Sequence[Series] = field(default_factory=tuple)
    description: str = ""


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (1 for zero)."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bar_chart(chart: Chart, *, width: int = 640, height: int = 250) -> SafeString:
    """`chart` as an `<svg>` element to put straight into a page."""
    for series in chart.series:
        if len(series.values) != len(chart.labels):
            raise ValueError(f"series {series.name!r} needs one value per label")
    uid = f"chart-{next(_ids)}"
    left, right, top, bottom = 52, 8, 36, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [
        sum(max(0.0, float(s.values[i])) for s in chart.series) for i in range(len(chart.labels))
    ]
    ceiling = nice_ceiling(max(totals, default=0))
    slot = plot_w / max(1, len(chart.labels))
    bar_w = max(1.0, slot * 0.7)
    every = max(1, math.ceil(len(chart.labels) / MAX_AXIS_LABELS))

    def y(value: float) -> float:
        return top + plot_h - (value / ceiling) * plot_h

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{uid}-title {uid}-desc">',
        f'<title id="{uid}-title">{escape(chart.title)}</title>',
        f'<desc id="{uid}-desc">{escape(chart.description or _describe(chart, totals))}</desc>',
        f'<text class="chart-title" x="0" y="{TITLE_SIZE}" font-size="{TITLE_SIZE}" '
        f'font-weight="600" fill="{TITLE_INK}">{escape(chart.title)}</text>',
    ]
    for fraction in (0, 0.5, 1):
        tick_y = y(ceiling * fraction)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{tick_y:.1f}" y2="{tick_y:.1f}" '
            f'stroke="#dde3ea" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{tick_y + 5:.1f}" text-anchor="end" '
            f'font-size="{LABEL_SIZE}" fill="{LABEL_INK}">{_number(ceiling * fraction)}</text>'
        )
    for i, label in enumerate(chart.labels):
        x = left + i * slot + (slot - bar_w) / 2
        base = 0.0
        tooltip = "; ".join(f"{s.name}: {_number(float(s.values[i]))}" for s in chart.series)
        parts.append(f"<g><title>{escape(label)}: {escape(tooltip or 'nothing')}</title>")
        for series in chart.series:
            value = max(0.0, float(series.values[i]))
            if value:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(base + value):.1f}" width="{bar_w:.1f}" '
                    f'height="{y(base) - y(base + value):.1f}" '
                    f'fill="{TONES.get(series.tone, TONES["neutral"])}"/>'
                )
                base += value
        parts.append("</g>")
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 18}" text-anchor="middle" '
                f'font-size="{LABEL_SIZE}" fill="{LABEL_INK}">{escape(label)}</text>'
            )
    legend_x = left
    for series in chart.series:
        colour = TONES.get(series.tone, TONES["neutral"])
        parts.append(
            f'<rect x="{legend_x}" y="{height - 18}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 17}" y="{height - 7}" font-size="{LABEL_SIZE}" '
            f'fill="{TITLE_INK}">{escape(series.name)}</text>'
        )
        legend_x += 30 + 8 * len(series.name)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every piece of text above is escaped)


def _describe(chart: Chart, totals: Sequence[float]) -> str:
    sums = ", ".join(
        f"{s.name} {_number(sum(max(0.0, float(v)) for v in s.values))}" for s in chart.series
    )
    return f"{len(chart.labels)} bars, {_number(sum(totals))} in all" + (
        f": {sums}" if sums else ""
    )
