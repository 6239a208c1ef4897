"""Statistical disclosure control for the counts an aggregate-only purpose may see.

A count of people in a small area is safe to publish only if it cannot single anyone out,
neither alone nor together with other answers. Three controls run here, in this order:

1. **Cell-key perturbation** (in the style of the ONS for Census 2021). Every record has a
   fixed *record key* 0..255, computed in SQL from its integer primary key with a
   trust-specific salt; a cell's *key* is the sum of its records' keys mod 256. A fixed
   perturbation table maps (count, cell key) to a small change. The same set of records
   always gets the same answer, so asking again teaches nothing, while two overlapping cells
   (January to June, February to June) get independent noise, so their difference does not
   isolate the people in January.
2. **Primary suppression and rounding.** A count of 1 to ``min_cell - 1`` is never
   published; nor is one that perturbation or rounding would publish below ``min_cell``.
   What is published is rounded to the nearest multiple of ``round_to``. A true 0 stays 0
   (NHS practice), so a published 0 always means nobody, and nothing else is ever shown as 0.
3. **Secondary suppression** within one response. Cells in the same *group* (such as the
   same area and field asked for several periods through aliases) could be differenced
   against each other, so one suppressed cell suppresses its whole group. Cells tied by
   *totals* (a total and its parts) are audited exactly: while any suppressed cell could be
   solved for from the published cells, the smallest published cell in its equations is
   suppressed too.

Why this method, against the alternatives, and what it leaves open: docs/disclosure-control.md.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import BigInteger, Integer, cast, func, literal, type_coerce

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from datatrust.policies._engines import Obligations

__all__ = [
    "DEFAULT_MIN_CELL",
    "PTABLE",
    "Cell",
    "ProtectedCell",
    "SdcPolicy",
    "cell_key",
    "cell_key_of",
    "perturbation",
    "protect_cells",
    "record_key",
    "record_key_of",
]

DEFAULT_MIN_CELL = 10
"""Fewer than 10 is suppressed for health and care data unless an agreement says otherwise."""

KEY_SPACE = 256
"""Record and cell keys are 0..255, as in the ONS method."""

_PRIME = 2_147_483_647
"""2**31 - 1. Keeping every intermediate below it squared (< 2**62) keeps the SQL record key
inside 64-bit integers on SQLite (which would silently turn an overflow into a float) and on
PostgreSQL (which would raise)."""

PTABLE: Mapping[int, Mapping[int, int]] = MappingProxyType(
    {
        0: {0: 256},
        1: {0: 256},
        2: {-1: 64, 0: 128, 1: 64},
        3: {-2: 16, -1: 56, 0: 112, 1: 56, 2: 16},
        4: {-3: 8, -2: 24, -1: 56, 0: 80, 1: 56, 2: 24, 3: 8},
    }
)
"""The perturbation table: for each count (4 stands for 4 and above), how many of the 256
cell keys get each change. Every row is symmetric, so the noise is unbiased; a row never
takes a count of n >= 1 below 1, so perturbation alone never invents a zero. Above 3 the
noise has variance 1.75 and is 0 for 80 keys in 256. Each change owns one contiguous range of
keys (keys 0..7 get -3, and so on), the usual ptable layout."""

_PTABLE_CAP = max(PTABLE)

_K = TypeVar("_K", bound=Hashable)

PRIMARY = "small cell: suppressed under the agreement's minimum cell size of {min_cell}"
SECONDARY_GROUP = (
    "secondary suppression: could be differenced against a suppressed cell asked for in the"
    " same request"
)
SECONDARY_TOTAL = (
    "secondary suppression: a suppressed cell could otherwise be recomputed from a total"
)


def _layout(row: Mapping[int, int]) -> tuple[int, ...]:
    changes = [change for change, keys in sorted(row.items()) for _ in range(keys)]
    if len(changes) != KEY_SPACE or sum(changes) != 0:
        raise ValueError(f"a ptable row must cover {KEY_SPACE} keys with mean 0: {dict(row)}")
    return tuple(changes)


_ROWS = {count: _layout(row) for count, row in PTABLE.items()}


def _whole(value: Any, name: str, *, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def perturbation(count: int, cell_key: int) -> int:
    """The change the ptable makes to ``count`` for a cell whose key is ``cell_key``."""
    _whole(count, "count")
    if _whole(cell_key, "cell key") >= KEY_SPACE:
        raise ValueError(f"a cell key is 0..{KEY_SPACE - 1}, not {cell_key}")
    return _ROWS[min(count, _PTABLE_CAP)][cell_key]


# --- record and cell keys, in Python and in SQL ------------------------------------------


@functools.lru_cache(maxsize=8)
def _salt_constants(salt: int) -> tuple[int, int, int]:
    """Three constants mod the prime, derived from the salt by a keyed hash, so that
    neighbouring salts give unrelated keys and the salt cannot be read back from them."""
    _whole(salt, "the disclosure salt", minimum=None)
    digest = hashlib.blake2b(
        str(salt).encode(), digest_size=24, person=b"datatrust.sdc.v1"
    ).digest()
    a = 1 + int.from_bytes(digest[0:8], "big") % (_PRIME - 1)
    b = int.from_bytes(digest[8:16], "big") % _PRIME
    c = int.from_bytes(digest[16:24], "big") % _PRIME
    return a, b, c


def record_key_of(record_id: int, salt: int) -> int:
    """A record's key, as :func:`record_key` computes it in SQL (ids must not be negative)."""
    a, b, c = _salt_constants(salt)
    x = _whole(record_id, "a record id") % _PRIME
    h = (x * a + b) % _PRIME
    h = (h * h + c) % _PRIME  # squaring mod a prime: no linear shortcut from id to key
    return h % KEY_SPACE


def cell_key_of(record_ids: Collection[int], salt: int) -> int:
    """A cell's key: its records' keys summed mod 256 (0 for an empty cell)."""
    return sum(record_key_of(record_id, salt) for record_id in record_ids) % KEY_SPACE


def record_key(id_column: Any, salt: int) -> ColumnElement[int]:
    """SQL for each record's key from its integer primary key, on SQLite and PostgreSQL.

    The salt's constants are bound parameters, so they never appear in the statement text.
    """
    a, b, c = _salt_constants(salt)

    def big(value: int) -> ColumnElement[int]:
        return literal(value, BigInteger)

    x = cast(id_column, BigInteger) % big(_PRIME)
    h = (x * big(a) + big(b)) % big(_PRIME)
    h = (h * h + big(c)) % big(_PRIME)
    return type_coerce(h % big(KEY_SPACE), Integer)


def cell_key(id_column: Any, salt: int) -> ColumnElement[int]:
    """SQL for a group's cell key, ``SUM(record key) % 256``, to select beside its COUNT.

    The cell key belongs to the rows the COUNT counts: pass the id of the same table, with
    the same WHERE and GROUP BY.
    """
    total = cast(func.coalesce(func.sum(record_key(id_column, salt)), 0), BigInteger)
    return type_coerce(total % literal(KEY_SPACE, BigInteger), Integer)


# --- cells and their protection -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One count as read from the store, with the cell key of the records it counts."""

    count: int
    cell_key: int

    def __post_init__(self) -> None:
        _whole(self.count, "a cell's count")
        if _whole(self.cell_key, "a cell key") >= KEY_SPACE:
            raise ValueError(f"a cell key is 0..{KEY_SPACE - 1}, not {self.cell_key}")


@dataclass(frozen=True, slots=True)
class ProtectedCell:
    """What may leave the node for one cell: a value, or a suppression and its reason."""

    value: int | None
    suppressed: bool
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.suppressed != (self.value is None):
            raise ValueError("a protected cell has a value exactly when it is not suppressed")
        if self.suppressed and not self.reason:
            raise ValueError("a suppressed cell must say why")


def _primary(cell: Cell, min_cell: int, round_to: int) -> ProtectedCell:
    """Perturb, suppress and round one cell on its own."""
    if min_cell == 0 and round_to <= 1:
        return ProtectedCell(cell.count, False)
    if cell.count == 0:
        return ProtectedCell(0, False)
    suppressed = ProtectedCell(None, True, PRIMARY.format(min_cell=min_cell))
    if cell.count < min_cell:
        return suppressed
    value = cell.count + perturbation(cell.count, cell.cell_key)
    if round_to > 1:
        value = (value + round_to // 2) // round_to * round_to
    if value < max(min_cell, 1):
        return suppressed
    return ProtectedCell(value, False)


def protect_cells(
    cells: Mapping[_K, Cell],
    *,
    min_cell: int,
    round_to: int,
    group: Callable[[_K], Hashable] | None = None,
    totals: Mapping[_K, Collection[_K]] | None = None,
) -> dict[_K, ProtectedCell]:
    """Protect every cell of one response together.

    ``group`` names, for each key, the cells it could be differenced against (the same area
    and field for another period): a suppression anywhere in a group suppresses all of it.
    ``totals`` maps a total's key to its parts' keys; their counts must add up exactly. No
    suppressed cell is left that these equations and the published cells would determine.
    """
    _whole(min_cell, "min_cell")
    _whole(round_to, "round_to")
    wrong = next((key for key, cell in cells.items() if not isinstance(cell, Cell)), None)
    if wrong is not None:
        raise TypeError(f"cell {wrong!r} is a {type(cells[wrong]).__name__}, not a Cell")
    result = {key: _primary(cell, min_cell, round_to) for key, cell in cells.items()}
    relations = _relations(cells, totals or {})
    order = {key: index for index, key in enumerate(cells)}
    changed = any(p.suppressed for p in result.values())
    while changed:
        changed = False
        if group is not None:
            hit = {group(key) for key, p in result.items() if p.suppressed}
            for key, p in result.items():
                if not p.suppressed and group(key) in hit:
                    result[key] = ProtectedCell(None, True, SECONDARY_GROUP)
                    changed = True
        extra = _next_total_suppression(cells, result, relations, order)
        if extra is not None:
            result[extra] = ProtectedCell(None, True, SECONDARY_TOTAL)
            changed = True
    return result


def _relations(
    cells: Mapping[_K, Cell], totals: Mapping[_K, Collection[_K]]
) -> list[tuple[_K, tuple[_K, ...]]]:
    relations = []
    for total, parts in totals.items():
        parts = tuple(parts)
        missing = [key for key in (total, *parts) if key not in cells]
        if missing:
            raise ValueError(f"totals name cells the response does not have: {missing!r}")
        if not parts or total in parts or len(set(parts)) != len(parts):
            raise ValueError(f"the total {total!r} needs distinct parts other than itself")
        added = sum(cells[part].count for part in parts)
        if added != cells[total].count:
            raise ValueError(
                f"the parts of the total {total!r} add up to {added}, not its count "
                f"{cells[total].count}: only exact totals can be audited"
            )
        relations.append((total, parts))
    return relations


def _next_total_suppression(
    cells: Mapping[_K, Cell],
    result: Mapping[_K, ProtectedCell],
    relations: list[tuple[_K, tuple[_K, ...]]],
    order: Mapping[_K, int],
) -> _K | None:
    """The next cell to suppress so no suppressed cell can be solved for, or None."""
    if not relations:
        return None
    for key in _determined(result, relations, order):
        touching = [r for r in relations if key == r[0] or key in r[1]]
        for scope in (touching, relations):
            choice = _smallest_published(cells, result, scope, order)
            if choice is not None:
                return choice
    return None


def _smallest_published(
    cells: Mapping[_K, Cell],
    result: Mapping[_K, ProtectedCell],
    relations: list[tuple[_K, tuple[_K, ...]]],
    order: Mapping[_K, int],
) -> _K | None:
    """A second part before the total, the smallest count first (the classic choice)."""
    candidates = [
        (is_total, cells[key].count, order[key], key)
        for total, parts in relations
        if any(result[k].suppressed for k in (total, *parts))
        for is_total, key in [(False, part) for part in parts] + [(True, total)]
        if not result[key].suppressed
    ]
    return min(candidates, key=lambda c: c[:3])[3] if candidates else None


def _determined(
    result: Mapping[_K, ProtectedCell],
    relations: list[tuple[_K, tuple[_K, ...]]],
    order: Mapping[_K, int],
) -> list[_K]:
    """Suppressed cells the totals' equations fix, given every published value exactly.

    Each relation ``total - sum(parts) = 0`` becomes a row over the suppressed cells (the
    published ones move to the constant side). Row-reduced, a cell is determined exactly
    when some row has it as its only non-zero entry.
    """
    unknown = sorted(
        {k for total, parts in relations for k in (total, *parts) if result[k].suppressed},
        key=order.__getitem__,
    )
    column = {key: index for index, key in enumerate(unknown)}
    rows: list[list[Fraction]] = []
    for total, parts in relations:
        row = [Fraction(0)] * len(unknown)
        for key, coefficient in [(total, 1)] + [(part, -1) for part in parts]:
            if key in column:
                row[column[key]] += coefficient
        if any(row):
            rows.append(row)
    pivot_row = 0
    for col in range(len(unknown)):
        found = next((r for r in range(pivot_row, len(rows)) if rows[r][col]), None)
        if found is None:
            continue
        rows[pivot_row], rows[found] = rows[found], rows[pivot_row]
        lead = rows[pivot_row][col]
        rows[pivot_row] = [value / lead for value in rows[pivot_row]]
        for r in range(len(rows)):
            if r != pivot_row and rows[r][col]:
                factor = rows[r][col]
                rows[r] = [v - factor * p for v, p in zip(rows[r], rows[pivot_row], strict=True)]
        pivot_row += 1
    return [
        unknown[next(i for i, v in enumerate(row) if v)]
        for row in rows[:pivot_row]
        if sum(1 for v in row if v) == 1
    ]


# --- the policy an agreement sets ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SdcPolicy:
    """An agreement's disclosure control for one node: threshold, rounding and key salt.

    ``min_cell`` 0 with ``round_to`` 0 or 1 releases exact counts (identifiable and
    record-level purposes); anything else perturbs, suppresses and rounds. The salt is the
    trust's secret: whoever knows it and the ptable can undo the perturbation, so it is
    kept out of ``repr``.
    """

    min_cell: int
    round_to: int
    salt: int = field(repr=False)

    def __post_init__(self) -> None:
        _whole(self.min_cell, "min_cell")
        _whole(self.round_to, "round_to")
        _whole(self.salt, "the disclosure salt", minimum=None)

    @classmethod
    def from_obligations(cls, obligations: Obligations, salt: int) -> SdcPolicy:
        """The policy a decision's obligations impose on the aggregates it allows."""
        return cls(min_cell=obligations.min_cell, round_to=obligations.round_to, salt=salt)

    @property
    def releases_exact_counts(self) -> bool:
        return self.min_cell == 0 and self.round_to <= 1

    def record_key(self, id_column: Any) -> ColumnElement[int]:
        return record_key(id_column, self.salt)

    def cell_key(self, id_column: Any) -> ColumnElement[int]:
        return cell_key(id_column, self.salt)

    def protect(
        self,
        cells: Mapping[_K, Cell],
        *,
        group: Callable[[_K], Hashable] | None = None,
        totals: Mapping[_K, Collection[_K]] | None = None,
    ) -> dict[_K, ProtectedCell]:
        return protect_cells(
            cells, min_cell=self.min_cell, round_to=self.round_to, group=group, totals=totals
        )
