"""Disclosure control: its cost, in Python and in SQL, and what a differencing attacker gets.

    python bench/disclosure.py [--cells N] [--rows N] [--url URL]

Prints, each against a baseline measured in the same run:

- cells per second through ``protect_cells`` (alone, and with every area's five periods
  linked as one group), against copying the raw counts out unprotected;
- a COUNT ... GROUP BY area over ``--rows`` events with the cell key beside the count,
  against the same query without it (SQLite in memory, or the database at ``--url``);
- how often an attacker who subtracts two overlapping counts (January-June minus
  February-June) hits a suppressed January count of 1-9 exactly: unprotected, rounded
  only, and perturbed and rounded; once with one pair, and averaging the five month-end
  pairs (Jan-Feb minus Feb, ..., Jan-Jun minus Feb-Jun), the residual risk
  docs/disclosure-control.md describes.
"""

from __future__ import annotations

import argparse
import random
import time
from statistics import mean

import sqlalchemy as sa

from datatrust.policies import Cell, protect_cells
from datatrust.policies import _disclosure as sdc

SALT = random.SystemRandom().getrandbits(128)


def throughput(cells: int) -> None:
    rng = random.Random(1)
    table = {
        (area, period): Cell(rng.choice([0, 3, 8, 12, 40, 90, 400]), rng.randrange(256))
        for area in range(cells // 5)
        for period in range(5)
    }
    started = time.perf_counter()
    raw = {key: cell.count for key, cell in table.items()}
    baseline = time.perf_counter() - started
    assert len(raw) == len(table)
    for label, group in (("alone", None), ("grouped by area", lambda key: key[0])):
        started = time.perf_counter()
        protect_cells(table, min_cell=10, round_to=5, group=group)
        took = time.perf_counter() - started
        print(
            f"protect_cells ({label:15}) {len(table) / took:12,.0f} cells/s"
            f"   unprotected copy {len(table) / baseline:14,.0f} cells/s"
            f"   ratio {took / baseline:6.1f}x"
        )


def sql_overhead(rows: int, url: str) -> None:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = sa.Table(
        "bench_sdc_event",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("area", sa.String, nullable=False),
    )
    metadata.drop_all(engine)
    metadata.create_all(engine)
    rng = random.Random(2)
    with engine.begin() as connection:
        for start in range(0, rows, 100_000):
            batch = range(start + 1, min(rows, start + 100_000) + 1)
            connection.execute(
                sa.insert(table),
                [{"id": i, "area": f"E01{rng.randrange(3000):06d}"} for i in batch],
            )
    plain = sa.select(table.c.area, sa.func.count(table.c.id)).group_by(table.c.area)
    keyed = sa.select(
        table.c.area, sa.func.count(table.c.id), sdc.cell_key(table.c.id, SALT)
    ).group_by(table.c.area)
    timings = {}
    with engine.connect() as connection:
        for label, query in (("without cell key", plain), ("with cell key", keyed)):
            connection.execute(query).all()  # warm
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                connection.execute(query).all()
                runs.append(time.perf_counter() - started)
            timings[label] = min(runs)
            print(f"GROUP BY area over {rows:,} rows, {label:17} {timings[label] * 1000:9.1f} ms")
    ratio = timings["with cell key"] / timings["without cell key"]
    print(f"cell key overhead on {engine.dialect.name}: {ratio:.2f}x")
    metadata.drop_all(engine)
    engine.dispose()


def published(count: int, ids: list[int], round_to: int, perturb: bool) -> int | None:
    key = sdc.cell_key_of(ids, SALT) if perturb else 0  # key 0 with no change: rounding only
    cell = Cell(count, key)
    if not perturb:
        value = count if count >= 10 else None
        return None if value is None else (value + round_to // 2) // round_to * round_to
    return protect_cells({0: cell}, min_cell=10, round_to=round_to)[0].value


def attack(areas: int) -> None:
    rng = random.Random(3)
    next_id = 1
    outcomes: dict[str, list[tuple[int, float | None, float | None]]] = {}
    settings = {"unprotected": (1, False), "rounded only": (5, False), "perturbed": (5, True)}
    settings["perturbed, unrounded"] = (1, True)
    for _ in range(areas):
        january_ids = list(range(next_id, next_id + rng.randint(1, 9)))
        next_id += len(january_ids)
        by_month = {m: [] for m in range(2, 7)}
        for _ in range(rng.randint(15, 40)):
            by_month[rng.randint(2, 6)].append(next_id)
            next_id += 1
        for label, (round_to, perturb) in settings.items():
            estimates = []
            for last in range(2, 7):
                later = [i for m in range(2, last + 1) for i in by_month[m]]
                both = january_ids + later
                if label == "unprotected":
                    a, b = len(both), len(later)
                else:
                    a = published(len(both), both, round_to, perturb)
                    b = published(len(later), later, round_to, perturb)
                if a is not None and b is not None:
                    estimates.append(a - b)
            single = estimates[-1] if estimates else None
            averaged = round(mean(estimates)) if estimates else None
            outcomes.setdefault(label, []).append((len(january_ids), single, averaged))
    print(f"differencing attack on {areas:,} areas with 1-9 people in January:")
    for label, rows in outcomes.items():
        single = sum(true == s for true, s, _ in rows) / len(rows)
        averaged = sum(true == a for true, _, a in rows) / len(rows)
        print(
            f"  {label:21} exact with one pair {single:6.1%}   averaging five pairs {averaged:6.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--areas", type=int, default=3000)
    parser.add_argument("--url", default="sqlite://")
    args = parser.parse_args()
    throughput(args.cells)
    sql_overhead(args.rows, args.url)
    attack(args.areas)


if __name__ == "__main__":
    main()
