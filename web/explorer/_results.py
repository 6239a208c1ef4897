"""A GraphQL answer as tables of cells, each saying what it is: a value, suppressed or no data.

A ``null`` count is never shown as 0. Which kind of ``null`` it is comes from the answer
itself, read with the rules the nodes publish (docs/analyst-guide.md, "Suppressed cells"):

1. A row that says so (``suppressed: true``, as ``crossAgencyCounts`` rows do): its
   ``null`` cells are suppressed.
2. A ``null`` number from a node whose ``extensions.disclosureControl`` note reports
   suppressed cells: suppressed, when that node's ``null`` numbers in the table are no more
   than the cells it says it suppressed; otherwise it cannot be told apart from a missing
   value, and the cell says "suppressed or no data".
3. Any other ``null``: no data (the node had nothing for it, or it is not a number).

Pure: dicts in, frozen records out, so the rules are tested without a trust.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datatrust.web.explorer._columns import Column, RootColumns

__all__ = [
    "AREA_CODE",
    "Cell",
    "DisclosureNote",
    "ResultTable",
    "disclosure_notes",
    "result_tables",
]

AREA_CODE = re.compile(r"^[EWSN]\d{8}$")
"""A GSS statistical-area code: E01009522 (an LSOA), S01008417 (a Data Zone)."""
AREA_KEYS = ("code", "areaCode")
SUPPRESSED = "suppressed"
SUPPRESSED_OR_MISSING = "suppressed or no data"
NO_DATA = "no data"


@dataclass(frozen=True)
class Cell:
    """One value as shown: ``text`` for people, ``number`` for the chart and map."""

    text: str
    number: float | None = None
    status: str = "value"
    """``value``, ``suppressed``, ``suppressed or no data`` or ``no data``."""

    @property
    def is_suppressed(self) -> bool:
        return self.status in (SUPPRESSED, SUPPRESSED_OR_MISSING)

    @property
    def is_missing(self) -> bool:
        return self.status != "value"


@dataclass(frozen=True)
class DisclosureNote:
    """What one node's disclosure control did to this answer."""

    node: str
    method: str
    min_cell_size: int
    rounded_to: int
    suppressed_cells: int


@dataclass(frozen=True)
class ResultTable:
    key: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    area_column: int | None
    """The column holding GSS area codes, when every row has one: the map's key."""

    @property
    def numeric_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.is_numeric)

    def column_index(self, key: str) -> int | None:
        return next((i for i, c in enumerate(self.columns) if c.key == key), None)

    @property
    def name_column(self) -> int | None:
        return next((i for i, c in enumerate(self.columns) if c.path == ("name",)), None)

    def row_label(self, row: Sequence[Cell]) -> str:
        """An area's name and code, or the first cell: what a chart bar is called."""
        parts = [row[i].text for i in (self.name_column, self.area_column) if i is not None]
        return " ".join(parts) if parts else (row[0].text if row else "")


def disclosure_notes(body: Mapping[str, Any]) -> tuple[DisclosureNote, ...]:
    """Each node's note from ``extensions.disclosureControl`` (gateway or node shape)."""
    extensions = body.get("extensions")
    notes = extensions.get("disclosureControl") if isinstance(extensions, dict) else None
    if not isinstance(notes, dict):
        return ()
    if "suppressedCells" in notes:  # one node's own answer, not the gateway's
        notes = {"node": notes}
    found = []
    for node, note in sorted(notes.items()):
        if isinstance(note, dict):
            found.append(
                DisclosureNote(
                    node=str(node),
                    method=str(note.get("method", "")),
                    min_cell_size=_int(note.get("minCellSize")),
                    rounded_to=_int(note.get("roundedTo")),
                    suppressed_cells=_int(note.get("suppressedCells")),
                )
            )
    return tuple(found)


def result_tables(body: Mapping[str, Any], roots: Sequence[RootColumns]) -> list[ResultTable]:
    """One table per root list the answer holds, every cell classified as above."""
    data = body.get("data")
    if not isinstance(data, dict):
        return []
    notes = {n.node: n for n in disclosure_notes(body)}
    tables = []
    for root in roots:
        items = data.get(root.key)
        if not isinstance(items, list) or not root.columns:
            continue
        raw = [[_at(item, c.path) for c in root.columns] for item in items]
        nulls = _nulls_per_node(root.columns, raw)
        rows = tuple(
            tuple(
                _cell(value, column, item, notes, nulls)
                for value, column in zip(values, root.columns, strict=True)
            )
            for values, item in zip(raw, items, strict=True)
        )
        tables.append(ResultTable(root.key, root.columns, rows, _area_column(root.columns, raw)))
    return tables


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _at(item: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(item, dict):
            return None
        item = item.get(key)
    return item


def _nulls_per_node(columns: Sequence[Column], raw: list[list[Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for index, column in enumerate(columns):
        if not column.is_numeric:
            continue
        missing = sum(1 for values in raw if values[index] is None)
        for node in column.owners:
            counts[node] = counts.get(node, 0) + missing
    return counts


def _says_suppressed(item: Any, path: tuple[str, ...]) -> bool:
    parent = _at(item, path[:-1]) if len(path) > 1 else item
    return isinstance(parent, dict) and parent.get("suppressed") is True


def _cell(
    value: Any,
    column: Column,
    item: Any,
    notes: Mapping[str, DisclosureNote],
    nulls: Mapping[str, int],
) -> Cell:
    if value is None:
        if _says_suppressed(item, column.path):
            return Cell(SUPPRESSED, status=SUPPRESSED)
        if column.is_numeric:
            suppressing = [n for n in column.owners if n in notes and notes[n].suppressed_cells]
            if suppressing:
                exact = all(nulls.get(n, 0) <= notes[n].suppressed_cells for n in suppressing)
                status = SUPPRESSED if exact else SUPPRESSED_OR_MISSING
                return Cell(status, status=status)
        return Cell(NO_DATA, status=NO_DATA)
    if column.is_list:
        count = len(value) if isinstance(value, list) else 0
        return Cell(f"{count} item{'' if count == 1 else 's'}", number=None)
    if isinstance(value, bool):
        return Cell("yes" if value else "no")
    if isinstance(value, int | float):
        return Cell(_number_text(value), number=float(value))
    return Cell(str(value))


def _number_text(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _area_column(columns: Sequence[Column], raw: list[list[Any]]) -> int | None:
    for index, column in enumerate(columns):
        if column.path[-1] in AREA_KEYS and len(column.path) == 1 and raw:
            values = [values[index] for values in raw]
            if all(isinstance(v, str) and AREA_CODE.match(v) for v in values):
                return index
    return None
