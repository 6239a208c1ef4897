"""A result table's numbers as a horizontal bar chart, drawn on the server as SVG.

Bars follow the table's order, up to ``MAX_BARS`` of them (the table always has every row).
A suppressed cell gets a hatched stub and the word "suppressed", a missing one the words
"no data": neither is ever drawn as a bar of length 0. The picture is ``role="img"`` with
a title and description; the table beside it carries the same numbers for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from datatrust.web.explorer._results import ResultTable
from datatrust.web.explorer._svg import BAR, INK, hatch_pattern, text

__all__ = ["MAX_BARS", "BarChart", "bar_chart"]

MAX_BARS = 40
WIDTH = 720
LABEL_WIDTH = 230
VALUE_ROOM = 130
ROW = 22
TOP = 8


@dataclass(frozen=True)
class BarChart:
    svg: Markup
    shown: int
    total: int
    suppressed: int


def bar_chart(table: ResultTable, column_key: str, *, chart_id: str = "chart") -> BarChart:
    """The chart of ``column_key``; ``chart_id`` keeps its element ids unique on the page."""
    index = table.column_index(column_key)
    if index is None:
        raise ValueError(f"the table {table.key!r} has no column {column_key!r}")
    column = table.columns[index]
    rows = table.rows[:MAX_BARS]
    numbers = [r[index].number for r in rows if r[index].number is not None]
    top = max([*numbers, 0.0])
    scale = (WIDTH - LABEL_WIDTH - VALUE_ROOM) / top if top > 0 else 0.0
    height = TOP * 2 + ROW * max(len(rows), 1)
    hatch = f"{chart_id}-hatch"
    title = f"{column.label} by {'area' if table.area_column is not None else 'row'}"
    desc = (
        f"Bar chart of {column.label} for {len(rows)} of {len(table.rows)} rows, largest "
        f"{_fmt(top)}. Suppressed cells are hatched and labelled; the table has every value."
    )
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="datatrust-chart" role="img" '
        'font-family="GDS Transport, arial, sans-serif" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false">',
        f'<title id="{chart_id}-title">{text(title)}</title>',
        f'<desc id="{chart_id}-desc">{text(desc)}</desc>',
        f"<defs>{hatch_pattern(hatch)}</defs>",
    ]
    suppressed = 0
    for n, row in enumerate(rows):
        y = TOP + n * ROW
        cell = row[index]
        label = table.row_label(row)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end" font-size="13" '
            f'fill="{INK}">{text(_clip(label, 32))}</text>'
        )
        if cell.number is not None:
            width = max(cell.number * scale, 1.0 if cell.number > 0 else 0.0)
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width:.1f}" height="{ROW - 6}" '
                f'fill="{BAR}"><title>{text(label)}: {text(cell.text)}</title></rect>'
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 15}" font-size="13" '
                f'fill="{INK}">{text(cell.text)}</text>'
            )
        elif cell.is_suppressed:
            suppressed += 1
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="28" height="{ROW - 6}" '
                f'fill="url(#{hatch})" stroke="#505a5f" stroke-width="1"/>'
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + 34}" y="{y + 15}" font-size="13" font-style="italic" '
                f'fill="{INK}">{text(cell.text)}</text>'
            )
        else:
            parts.append(
                f'<text x="{LABEL_WIDTH + 4}" y="{y + 15}" font-size="13" font-style="italic" '
                f'fill="{INK}">{text(cell.text)}</text>'
            )
    parts.append(
        f'<line x1="{LABEL_WIDTH}" y1="{TOP}" x2="{LABEL_WIDTH}" y2="{height - TOP}" '
        f'stroke="{INK}" stroke-width="1"/>'
    )
    parts.append("</svg>")
    svg = Markup("".join(parts))  # noqa: S704 (every value in it went through text())
    return BarChart(svg, len(rows), len(table.rows), suppressed)


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def _clip(label: str, length: int) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"
