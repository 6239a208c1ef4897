"""What the results page shows for one answer: tables, a chart and, by area, a map.

Pure: the gateway's JSON body, the columns the query makes and the boundaries in; a
frozen view out, which the template only lays out. The first table with a number column
gets the chart (and the map, when its rows are areas) of the measure asked for, or of its
first number column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datatrust.web.explorer._chart import BarChart, bar_chart
from datatrust.web.explorer._columns import Column, RootColumns
from datatrust.web.explorer._map import AreaMap, Boundaries, area_map
from datatrust.web.explorer._results import (
    DisclosureNote,
    ResultTable,
    disclosure_notes,
    result_tables,
)

__all__ = ["AnswerError", "ResultsView", "results_view"]


@dataclass(frozen=True)
class AnswerError:
    message: str
    code: str | None
    node: str | None


@dataclass(frozen=True)
class ResultsView:
    tables: tuple[ResultTable, ...]
    measure: Column | None
    measure_table: ResultTable | None
    chart: BarChart | None
    map: AreaMap | None
    errors: tuple[AnswerError, ...]
    notes: tuple[DisclosureNote, ...]
    raw: str
    status: int

    @property
    def suppressed_count(self) -> int:
        return sum(1 for t in self.tables for row in t.rows for cell in row if cell.is_suppressed)


def results_view(
    body: Mapping[str, Any],
    roots: Sequence[RootColumns],
    boundaries: Boundaries,
    *,
    measure: str | None = None,
    status: int = 200,
) -> ResultsView:
    tables = tuple(result_tables(body, roots))
    table = next((t for t in tables if t.numeric_columns), None)
    column = None
    chart = None
    shown_map = None
    if table is not None:
        column = next((c for c in table.numeric_columns if c.key == measure), None)
        column = column or table.numeric_columns[0]
        chart = bar_chart(table, column.key, chart_id="results-chart")
        if table.area_column is not None:
            shown_map = area_map(table, column.key, boundaries, map_id="results-map")
    return ResultsView(
        tables=tables,
        measure=column,
        measure_table=table,
        chart=chart,
        map=shown_map,
        errors=_errors(body),
        notes=disclosure_notes(body),
        raw=json.dumps(body, indent=2, ensure_ascii=False),
        status=status,
    )


def _errors(body: Mapping[str, Any]) -> tuple[AnswerError, ...]:
    found = []
    for error in body.get("errors") or ():
        if not isinstance(error, dict):
            continue
        extensions = error.get("extensions") if isinstance(error.get("extensions"), dict) else {}
        found.append(
            AnswerError(
                message=str(error.get("message", "")),
                code=extensions.get("code"),
                node=extensions.get("node"),
            )
        )
    return tuple(found)
