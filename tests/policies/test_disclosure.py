"""Disclosure control: thresholds, rounding, secondary suppression and differencing attacks."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
import sqlalchemy as sa

from datatrust.policies import Cell, ProtectedCell, SdcPolicy, protect_cells
from datatrust.policies._disclosure import (
    PRIMARY,
    PTABLE,
    SECONDARY_GROUP,
    SECONDARY_TOTAL,
    cell_key,
    cell_key_of,
    perturbation,
    record_key,
    record_key_of,
)
from datatrust.policies._engines import Obligations

SALT = 0x5EC2E7_D15C_1051_0BE5_A1A5_7A17
"""A stand-in for a trust's secret (128 bits, as docs/disclosure-control.md advises)."""

POLICIES = [(10, 5), (8, 5), (7, 10), (12, 5), (10, 0), (3, 5), (0, 5), (10, 1)]
"""(min_cell, round_to): NHS-style, OpenSAFELY-style, coarse, awkward and degenerate."""


def random_cells(seed: int, n: int = 4000) -> dict[int, Cell]:
    rng = random.Random(seed)
    counts = [0, *range(1, 30), 57, 99, 1234]
    return {i: Cell(rng.choice(counts), rng.randrange(256)) for i in range(n)}


# --- the ptable ---------------------------------------------------------------------------


def test_the_ptable_is_the_documented_one():
    assert {n: dict(row) for n, row in PTABLE.items()} == {
        0: {0: 256},
        1: {0: 256},
        2: {-1: 64, 0: 128, 1: 64},
        3: {-2: 16, -1: 56, 0: 112, 1: 56, 2: 16},
        4: {-3: 8, -2: 24, -1: 56, 0: 80, 1: 56, 2: 24, 3: 8},
    }


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 5, 50, 10**6])
def test_every_ptable_row_is_unbiased_and_never_takes_a_count_below_one(count):
    changes = [perturbation(count, key) for key in range(256)]
    assert sum(changes) == 0
    assert min(count + change for change in changes) >= min(count, 1)
    assert max(abs(change) for change in changes) == min(max(count - 1, 0), 3)


def test_perturbation_refuses_a_cell_key_outside_0_to_255():
    with pytest.raises(ValueError, match=r"a cell key is 0\.\.255, not 256"):
        perturbation(12, 256)
    with pytest.raises(ValueError, match=r"a cell key is 0\.\.255, not 300"):
        Cell(12, 300)
    with pytest.raises(ValueError, match="a cell's count must be at least 0, not -1"):
        Cell(-1, 0)


# --- primary suppression and rounding -----------------------------------------------------


@pytest.mark.parametrize(("min_cell", "round_to"), POLICIES)
def test_no_value_is_below_min_cell_except_a_true_zero(min_cell, round_to):
    cells = random_cells(seed=min_cell * 100 + round_to)
    protected = protect_cells(cells, min_cell=min_cell, round_to=round_to)
    for key, cell in cells.items():
        value = protected[key].value
        if cell.count == 0:
            assert protected[key] == ProtectedCell(0, False)
        elif cell.count < min_cell:
            assert protected[key] == ProtectedCell(None, True, PRIMARY.format(min_cell=min_cell))
        if value is not None and cell.count > 0:
            assert value >= max(min_cell, 1), (cell, value)


@pytest.mark.parametrize(("min_cell", "round_to"), [p for p in POLICIES if p[1] > 1])
def test_every_value_is_a_multiple_of_round_to(min_cell, round_to):
    protected = protect_cells(random_cells(seed=7), min_cell=min_cell, round_to=round_to)
    values = [p.value for p in protected.values() if p.value is not None]
    assert values
    assert all(value % round_to == 0 for value in values)


def test_protected_values_stay_within_rounding_and_noise_of_the_truth():
    protected = protect_cells(random_cells(seed=8), min_cell=10, round_to=5)
    cells = random_cells(seed=8)
    errors = Counter(p.value - cells[k].count for k, p in protected.items() if p.value)
    assert max(abs(e) for e in errors) <= 3 + 2
    assert len(errors) > 5  # the noise is really there: not just rounding


@pytest.mark.parametrize("round_to", [0, 1])
def test_min_cell_zero_without_rounding_returns_counts_unchanged(round_to):
    cells = random_cells(seed=9)
    protected = SdcPolicy(min_cell=0, round_to=round_to, salt=SALT).protect(cells)
    assert protected == {k: ProtectedCell(c.count, False) for k, c in cells.items()}
    assert SdcPolicy(min_cell=0, round_to=round_to, salt=SALT).releases_exact_counts


def test_a_count_that_perturbation_or_rounding_would_show_below_min_cell_is_suppressed():
    # 12 with round_to 5 could only be shown as 10 (below 12) or 15.
    shown = {protect_cells({0: Cell(12, key)}, min_cell=12, round_to=5)[0] for key in range(256)}
    assert shown == {
        ProtectedCell(None, True, PRIMARY.format(min_cell=12)),
        ProtectedCell(15, False),
    }


def test_the_same_cell_gets_the_same_answer_on_every_call():
    cells = random_cells(seed=10)
    first = protect_cells(cells, min_cell=10, round_to=5)
    assert all(protect_cells(cells, min_cell=10, round_to=5) == first for _ in range(3))


def test_keys_and_answers_are_the_same_in_another_process():
    """No per-process randomness (such as str hashing) may leak into keys or answers."""
    ids = [1, 2, 3, 255, 256, 10**6, 2**31 - 2, 2**40]
    code = (
        "import json, sys\n"
        "from datatrust.policies import Cell, protect_cells\n"
        "from datatrust.policies._disclosure import record_key_of\n"
        "salt, ids = json.loads(sys.argv[1])\n"
        "cells = {str(n): Cell(n, record_key_of(n, salt)) for n in range(40)}\n"
        "out = protect_cells(cells, min_cell=10, round_to=5)\n"
        "print(json.dumps([[record_key_of(i, salt) for i in ids],"
        " {k: p.value for k, p in out.items()}]))\n"
    )
    here = [
        [record_key_of(i, SALT) for i in ids],
        {
            str(n): p.value
            for n, p in protect_cells(
                {n: Cell(n, record_key_of(n, SALT)) for n in range(40)}, min_cell=10, round_to=5
            ).items()
        },
    ]
    for seed in ("1", "2"):
        run = subprocess.run(
            [sys.executable, "-c", code, json.dumps([SALT, ids])],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(run.stdout) == here


# --- the policy ---------------------------------------------------------------------------


def test_a_policy_is_built_from_a_decisions_obligations_and_hides_its_salt():
    policy = SdcPolicy.from_obligations(
        Obligations(aggregate_only=True, min_cell=10, round_to=5), SALT
    )
    assert policy == SdcPolicy(min_cell=10, round_to=5, salt=SALT)
    assert repr(policy) == "SdcPolicy(min_cell=10, round_to=5)"
    assert not policy.releases_exact_counts


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_cell": -1, "round_to": 5, "salt": 1}, "min_cell must be at least 0, not -1"),
        ({"min_cell": 10, "round_to": 2.5, "salt": 1}, "round_to must be an integer, not 2.5"),
        ({"min_cell": 10, "round_to": 5, "salt": "x"}, "salt must be an integer, not 'x'"),
        ({"min_cell": True, "round_to": 5, "salt": 1}, "min_cell must be an integer, not True"),
    ],
)
def test_a_policy_refuses_values_that_are_not_whole_non_negative_numbers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SdcPolicy(**kwargs)


# --- secondary suppression ----------------------------------------------------------------

PERIODS = ["jan", "jan-mar", "jan-jun", "feb-jun", "apr-jun"]


def test_one_small_period_suppresses_every_period_of_its_area_and_field():
    cells = {
        ("E01000001", "jan-jun"): Cell(53, 17),
        ("E01000001", "feb-jun"): Cell(49, 200),
        ("E01000001", "jan"): Cell(4, 99),
        ("E01000002", "jan-jun"): Cell(80, 3),
        ("E01000002", "feb-jun"): Cell(70, 41),
    }
    protected = protect_cells(cells, min_cell=10, round_to=5, group=lambda key: key[0])
    assert {key: p.reason for key, p in protected.items() if p.suppressed} == {
        ("E01000001", "jan-jun"): SECONDARY_GROUP,
        ("E01000001", "feb-jun"): SECONDARY_GROUP,
        ("E01000001", "jan"): PRIMARY.format(min_cell=10),
    }
    assert protected[("E01000002", "jan-jun")].value is not None


def test_no_suppressed_cell_shares_a_group_with_a_published_one():
    rng = random.Random(11)
    cells = {
        (area, period): Cell(rng.choice([0, 3, 8, 12, 40, 90]), rng.randrange(256))
        for area in range(300)
        for period in PERIODS
    }
    protected = protect_cells(cells, min_cell=10, round_to=5, group=lambda key: key[0])
    by_area: dict[int, set[bool]] = defaultdict(set)
    for (area, _), p in protected.items():
        by_area[area].add(p.suppressed)
    assert all(len(states) == 1 for states in by_area.values())
    assert {True} in by_area.values()
    assert {False} in by_area.values()


def determined(protected, cells, totals) -> set:
    """Suppressed cells the totals fix, by an independent test: a cell is determined
    exactly when its column is not in the span of the other suppressed cells' columns."""
    unknown = [k for k in cells if protected[k].suppressed]
    rows = [
        [Fraction((k == total) - (k in parts)) for k in unknown] for total, parts in totals.items()
    ]
    rank = matrix_rank(rows)
    return {
        k
        for i, k in enumerate(unknown)
        if matrix_rank([row[:i] + row[i + 1 :] for row in rows]) < rank
    }


def matrix_rank(rows: list[list[Fraction]]) -> int:
    rows = [list(row) for row in rows if any(row)]
    rank, width = 0, len(rows[0]) if rows else 0
    for col in range(width):
        pivot = next((r for r in range(rank, len(rows)) if rows[r][col]), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for r in range(rank + 1, len(rows)):
            factor = rows[r][col] / rows[rank][col]
            rows[r] = [a - factor * b for a, b in zip(rows[r], rows[rank], strict=True)]
        rank += 1
    return rank


def test_a_total_with_one_suppressed_part_loses_its_smallest_other_part():
    cells = {"all": Cell(40, 1), "a": Cell(4, 2), "b": Cell(16, 3), "c": Cell(20, 4)}
    totals = {"all": ["a", "b", "c"]}
    protected = protect_cells(cells, min_cell=10, round_to=5, totals=totals)
    assert {key: p.reason for key, p in protected.items() if p.suppressed} == {
        "a": PRIMARY.format(min_cell=10),
        "b": SECONDARY_TOTAL,
    }
    assert determined(protected, cells, totals) == set()


def test_a_sub_total_is_audited_with_its_own_parts():
    # all = ab + c and ab = a + b: a is small, so b goes too, and ab, c and all stay.
    cells = {"all": Cell(50, 1), "ab": Cell(30, 2), "a": Cell(4, 3), "b": Cell(26, 4)}
    cells["c"] = Cell(20, 5)
    totals = {"all": ["ab", "c"], "ab": ["a", "b"]}
    protected = protect_cells(cells, min_cell=10, round_to=5, totals=totals)
    assert {key: p.reason for key, p in protected.items() if p.suppressed} == {
        "a": PRIMARY.format(min_cell=10),
        "b": SECONDARY_TOTAL,
    }
    assert determined(protected, cells, totals) == set()


def test_nested_totals_cannot_give_away_a_suppressed_cell():
    """The classic one-more-part rule fails here: all = a+b+c and ab = a+b, so c = all - ab
    even when a, b and c are all suppressed. The exact audit also suppresses a total."""
    cells = {"all": Cell(60, 1), "ab": Cell(55, 2), "a": Cell(25, 3), "b": Cell(30, 4)}
    cells["c"] = Cell(5, 6)
    totals = {"all": ["a", "b", "c"], "ab": ["a", "b"]}
    protected = protect_cells(cells, min_cell=10, round_to=5, totals=totals)
    assert {key: p.reason for key, p in protected.items() if p.suppressed} == {
        "c": PRIMARY.format(min_cell=10),
        "a": SECONDARY_TOTAL,
        "b": SECONDARY_TOTAL,
        "all": SECONDARY_TOTAL,
    }
    assert determined(protected, cells, totals) == set()


@pytest.mark.parametrize("seed", range(40))
def test_no_suppressed_cell_of_a_random_two_way_table_can_be_recomputed(seed):
    rng = random.Random(seed)
    rows, cols = rng.randint(2, 5), rng.randint(2, 5)
    cells = {
        (r, c): Cell(rng.choice([0, 2, 5, 9, 14, 30, 60]), rng.randrange(256))
        for r in range(rows)
        for c in range(cols)
    }
    for r in range(rows):
        cells[(r, "all")] = Cell(sum(cells[(r, c)].count for c in range(cols)), rng.randrange(256))
    for c in range(cols):
        cells[("all", c)] = Cell(sum(cells[(r, c)].count for r in range(rows)), rng.randrange(256))
    grand = sum(cells[(r, "all")].count for r in range(rows))
    cells[("all", "all")] = Cell(grand, rng.randrange(256))
    totals = {(r, "all"): [(r, c) for c in range(cols)] for r in range(rows)}
    totals |= {("all", c): [(r, c) for r in range(rows)] for c in range(cols)}
    totals[("all", "all")] = [(r, "all") for r in range(rows)]
    protected = protect_cells(cells, min_cell=10, round_to=5, totals=totals)
    assert determined(protected, cells, totals) == set()
    for key, cell in cells.items():
        if 0 < cell.count < 10:
            assert protected[key].suppressed


def test_a_count_that_is_not_a_cell_is_refused_by_key():
    with pytest.raises(TypeError, match="cell 'b' is a int, not a Cell"):
        protect_cells({"a": Cell(1, 2), "b": 12}, min_cell=10, round_to=5)


def test_totals_that_do_not_add_up_or_name_unknown_cells_are_refused():
    cells = {"all": Cell(40, 1), "a": Cell(4, 2), "b": Cell(16, 3)}
    with pytest.raises(ValueError, match="the parts of the total 'all' add up to 20, not its"):
        protect_cells(cells, min_cell=10, round_to=5, totals={"all": ["a", "b"]})
    with pytest.raises(ValueError, match=r"totals name cells the response does not have: \['z'\]"):
        protect_cells(cells, min_cell=10, round_to=5, totals={"all": ["a", "z"]})


# --- keys in SQL --------------------------------------------------------------------------


@pytest.fixture
def events(store_url: str) -> Iterator[tuple[sa.Engine, sa.Table]]:
    """A table of synthetic events (id, area, month) in a fresh SQLite or PostgreSQL store."""
    if store_url.startswith("sqlite:///"):
        Path(store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(store_url)
    metadata = sa.MetaData()
    table = sa.Table(
        "event",
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("area", sa.String, nullable=False),
        sa.Column("month", sa.Integer, nullable=False),
    )
    metadata.create_all(engine)
    try:
        yield engine, table
    finally:
        engine.dispose()


def test_the_sql_record_and_cell_keys_equal_the_python_ones(events):
    engine, table = events
    ids = [*range(1, 3001), 2**31 - 2, 2**31 - 1, 2**31, 2**40, 2**62]
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table), [{"id": i, "area": f"A{i % 11}", "month": 1} for i in ids]
        )
        keys = dict(connection.execute(sa.select(table.c.id, record_key(table.c.id, SALT))).all())
        query = sa.select(table.c.area, sa.func.count(table.c.id), cell_key(table.c.id, SALT))
        grouped = connection.execute(query.group_by(table.c.area)).all()
        nothing = sa.select(sa.func.count(table.c.id), cell_key(table.c.id, SALT))
        empty = connection.execute(nothing.where(table.c.id < 0)).one()
    assert keys == {i: record_key_of(i, SALT) for i in ids}
    members = defaultdict(list)
    for i in ids:
        members[f"A{i % 11}"].append(i)
    assert sorted(grouped) == sorted(
        (area, len(m), cell_key_of(m, SALT)) for area, m in members.items()
    )
    assert tuple(empty) == (0, 0)


def test_record_keys_of_consecutive_ids_spread_evenly_and_depend_on_the_salt():
    keys = [record_key_of(i, SALT) for i in range(1, 256 * 200 + 1)]
    expected = len(keys) / 256
    chi_squared = sum((n - expected) ** 2 / expected for n in Counter(keys).values())
    assert len(Counter(keys)) == 256
    assert chi_squared < 330  # 255 degrees of freedom: p > 0.001
    other = [record_key_of(i, SALT + 1) for i in range(1, 1001)]
    assert sum(a == b for a, b in zip(keys, other, strict=False)) < 20  # ~1000/256 by chance


# --- differencing between two overlapping queries -----------------------------------------


def load_areas(engine: sa.Engine, table: sa.Table, areas: int) -> dict[str, int]:
    """Each area gets 1-9 events in January and 15-40 in February to June; returns January's."""
    rng = random.Random(2021)
    january, rows, next_id = {}, [], 1
    for number in range(areas):
        area = f"E01{number:06d}"
        january[area] = rng.randint(1, 9)
        months = [1] * january[area] + [rng.randint(2, 6) for _ in range(rng.randint(15, 40))]
        for month in months:
            rows.append({"id": next_id, "area": area, "month": month})
            next_id += rng.randint(1, 3)  # ids with gaps, as deletions leave them
    with engine.begin() as connection:
        connection.execute(sa.insert(table), rows)
    return january


def ask(engine, table, policy: SdcPolicy, first: int, last: int) -> dict[str, int | None]:
    """One request: the count of events per area for months first..last, protected."""
    query = (
        sa.select(table.c.area, sa.func.count(table.c.id), policy.cell_key(table.c.id))
        .where(table.c.month.between(first, last))
        .group_by(table.c.area)
    )
    with engine.connect() as connection:
        cells = {area: Cell(count, key) for area, count, key in connection.execute(query)}
    return {area: p.value for area, p in policy.protect(cells).items()}


def attack(engine, table, policy, january):
    """The attacker subtracts February-June from January-June, asked separately."""
    jan_jun, feb_jun = ask(engine, table, policy, 1, 6), ask(engine, table, policy, 2, 6)
    return {
        area: jan_jun[area] - feb_jun[area]
        for area in january
        if jan_jun[area] is not None and feb_jun[area] is not None
    }


AREAS = 1500


def test_without_disclosure_control_differencing_recovers_every_small_january_count(events):
    engine, table = events
    january = load_areas(engine, table, AREAS)
    estimates = attack(engine, table, SdcPolicy(min_cell=0, round_to=0, salt=SALT), january)
    assert estimates == january


@pytest.mark.parametrize(
    ("round_to", "bound"),
    [
        (5, 0.15),  # measured 0.08: only a true 5 can be hit, as estimates are multiples of 5
        (1, 0.30),  # perturbation alone: measured 0.21, the chance two keys' noise agrees
    ],
)
def test_with_disclosure_control_differencing_rarely_and_never_reliably_hits(
    events, round_to, bound
):
    engine, table = events
    january = load_areas(engine, table, AREAS)
    policy = SdcPolicy(min_cell=10, round_to=round_to, salt=SALT)
    assert set(ask(engine, table, policy, 1, 1).values()) == {None}  # January alone: suppressed
    estimates = attack(engine, table, policy, january)
    assert len(estimates) == AREAS  # every overlapping count was published
    hits = sum(estimates[area] == january[area] for area in estimates)
    assert hits / len(estimates) <= bound
    # No true count is reliably hit (rounding alone would reveal every true 5: 5 + Y and Y
    # always round 5 apart). Measured: at most 0.72 (a true 5, rounded) or 0.25.
    for true in range(1, 10):
        areas = [area for area in estimates if january[area] == true]
        assert sum(estimates[area] == true for area in areas) / len(areas) <= 0.85
    # The attacker cannot tell a hit from a miss: whatever small estimate they get, it is
    # the truth for at most half of the areas that gave it.
    seen, right = Counter(estimates.values()), Counter()
    for area, estimate in estimates.items():
        right[estimate] += estimate == january[area]
    for estimate in range(1, 10):
        if seen[estimate] >= 20:
            assert right[estimate] / seen[estimate] <= 0.5, (estimate, right, seen)
