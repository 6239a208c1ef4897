"""Fill a demo trust's node stores with a planning-sized population, in seconds.

``bench/federation.py`` needs a million sensor readings and a hundred thousand people
behind the nodes ``datatrust up`` runs. Ingesting that through the adapters would take
many minutes and measure ingest, not federation, so this writes the rows straight into the
stores' own tables (SQLite, as ``up`` keeps them) in one transaction per table:

* council: people counters and air-quality sensors spread over Coventry's LSOAs, their
  readings every 15 minutes for a quarter (made by SQLite itself, ``INSERT ... SELECT``
  over a recursive step series, since Python would spend minutes building a million
  tuples), and the ``reading_hourly`` roll-up summed from exactly those rows, as ingest
  keeps it;
* health: ``persons`` patients (trust pseudonyms of synthetic NHS numbers, made with the
  node's own key) with three encounters each over the year;
* social care: the same people as care recipients (their council-local token beside the
  trust pseudonym) with one or two CLD events each;
* at health and social care, research consents and the national data opt-out list by the
  demo's own rules (``datatrust.demo._consents``), so the stores look like the demo's.

It runs on a data dir that ``datatrust up`` has prepared once (keys, migrated stores, demo
data) and while no trust runs from it; the demo's own rows stay as they are.
"""

from __future__ import annotations

import math
import random
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from datatrust._prepare import node_pseudonymiser
from datatrust.demo import coventry_lsoas
from datatrust.demo._consents import DEMO_CONSENT_TIME, OPT_OUT_CHECKED_ON, consents, opted_out
from datatrust.store import STORE_METADATA, create_store_engine
from datatrust.trust import load_opt_out_list
from datatrust.trust._consent import CONSENT_SCHEMA_VERSION

__all__ = ["QUARTER", "SeedPlan", "SeedReport", "seed_trust"]

LSOAS = tuple(lsoa.code for lsoa in coventry_lsoas())
QUARTER = (date(2026, 7, 1), date(2026, 9, 30))
"""The readings' period, and the planning query's: a whole quarter, inside the agreement."""
UPLINK_MINUTES = 15  # LoRaWAN people counters and air-quality sensors commonly send every 15'
COUNTER_QUANTITIES = ("people_in", "people_out")
AIR_QUANTITIES = ("pm2_5", "pm10", "co2")  # what a Milesight AM308 reports, in part
ENCOUNTERS_FROM, ENCOUNTER_DAYS = datetime(2026, 1, 1, tzinfo=UTC), 304  # to the end of October
EPISODES_FROM, EPISODE_DAYS = date(2026, 1, 1), 273  # starts up to the end of September
BENCH_PREFIX = "bench-"


@dataclass(frozen=True)
class SeedPlan:
    """What to load: sensors enough for ``readings`` readings, and ``persons`` people."""

    readings: int = 1_000_000
    persons: int = 100_000
    seed: int = 2026

    @property
    def steps(self) -> int:
        """Uplinks per sensor over the quarter."""
        days = (QUARTER[1] - QUARTER[0]).days + 1
        return days * 24 * 60 // UPLINK_MINUTES

    @property
    def sensor_pairs(self) -> int:
        """A people counter and an air-quality sensor per pair, each in its own LSOA."""
        per_pair = self.steps * (len(COUNTER_QUANTITIES) + len(AIR_QUANTITIES))
        return max(1, math.ceil(self.readings / per_pair))

    def key(self) -> str:
        return f"r{self.readings}-p{self.persons}-s{self.seed}"


@dataclass
class SeedReport:
    seconds: dict[str, float]
    counts: dict[str, dict[str, int]]


def seed_trust(data_dir: Path, plan: SeedPlan) -> SeedReport:
    """Load ``plan`` into the council, health and social-care stores under ``data_dir``."""
    seconds: dict[str, float] = {}
    counts: dict[str, dict[str, int]] = {}
    paths = {node: data_dir / f"{node}.db" for node in ("council", "health", "social-care")}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no store; run `datatrust up` on {data_dir} first")
    started = time.perf_counter()
    people = _people(data_dir, plan, _known_people(paths["health"], paths["social-care"]))
    seconds["people"] = time.perf_counter() - started
    for node, load in (("council", _council), ("health", _health), ("social-care", _care)):
        path = paths[node]
        started = time.perf_counter()
        load(data_dir, path, plan, people)
        _analyse(path)
        seconds[node] = time.perf_counter() - started
        counts[node] = _counts(path, node)
    return SeedReport(seconds, counts)


# --- council ---------------------------------------------------------------------------------

# A reading's value from its series number and step: deterministic and spread out, people
# counts 0-40 an uplink, particulates 4-24 µg/m³, CO₂ 400-800 ppm.
_VALUE = (
    "CASE WHEN s.quantity LIKE 'people%' THEN 1.0 * ((s.number * 7919 + n * 104729) % 9973 % 41)"
    " WHEN s.quantity = 'co2' THEN 400.0 + (s.number * 7919 + n * 104729) % 9973 % 400"
    " ELSE 4.0 + ((s.number * 7919 + n * 104729) % 9973 % 400) / 20.0 END"
)
_READINGS = (
    "WITH RECURSIVE step(n) AS "  # noqa: S608 - fixed text, no input
    "(SELECT 0 UNION ALL SELECT n + 1 FROM step WHERE n + 1 < ?) "
    "INSERT INTO reading (device_id, received_at, quantity, value, unit) "
    "SELECT s.device_id, strftime('%Y-%m-%d %H:%M:%S', ?, "
    f"'+' || (n * {UPLINK_MINUTES}) || ' minutes') || '.000000', s.quantity, {_VALUE}, s.unit "
    "FROM bench_series s CROSS JOIN step ORDER BY s.device_id, s.quantity, n"
)
_HOURLY = (
    "INSERT INTO reading_hourly "
    "(device_id, lsoa_code, quantity, hour, count, total, minimum, maximum) "
    "SELECT r.device_id, s.lsoa_code, r.quantity, substr(r.received_at, 1, 13) || ':00:00.000000', "
    "count(*), sum(r.value), min(r.value), max(r.value) "
    "FROM reading r JOIN sensor s ON s.device_id = r.device_id "
    "WHERE r.device_id >= 'bench-' AND r.device_id < 'bench.' GROUP BY 1, 2, 3, 4"
)
_UNITS = {"people_in": "count", "people_out": "count", "pm2_5": "µg/m3", "pm10": "µg/m3"}


def _council(_data_dir: Path, path: Path, plan: SeedPlan, _: list[_Person]) -> None:
    by_code = {lsoa.code: lsoa for lsoa in coventry_lsoas()}
    sensors, series = [], []
    for pair in range(plan.sensor_pairs):
        code = LSOAS[pair * len(LSOAS) // plan.sensor_pairs % len(LSOAS)]  # spread evenly
        lsoa = by_code[code]
        for kind, model, quantities in (
            ("people-counter", "vs350", COUNTER_QUANTITIES),
            ("air-quality", "am308", AIR_QUANTITIES),
        ):
            device = f"{BENCH_PREFIX}{model}-{pair:04d}"
            sensors.append((device, model, kind, code, lsoa.latitude or 52.41, lsoa.longitude))
            for quantity in quantities:
                series.append((len(series), device, quantity, _UNITS.get(quantity, "ppm")))
    start = datetime.combine(QUARTER[0], datetime.min.time()).strftime("%Y-%m-%d %H:%M:%S")
    with _bulk(path) as db:
        _insert(
            db,
            "sensor",
            ("device_id", "model", "kind", "lsoa_code", "latitude", "longitude"),
            ((d, m, k, c, lat, lon or -1.51) for d, m, k, c, lat, lon in sensors),
        )
        db.execute(
            "CREATE TEMPORARY TABLE bench_series "
            "(number INTEGER, device_id TEXT, quantity TEXT, unit TEXT)"
        )
        db.executemany("INSERT INTO bench_series VALUES (?, ?, ?, ?)", series)
        db.execute(_READINGS, (plan.steps, start))
        db.execute(_HOURLY)
        db.execute("DROP TABLE bench_series")


# --- people ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    number: int
    pseudonym: str
    lsoa_code: str


def _nhs_numbers(count: int, rng: random.Random) -> Iterable[str]:
    """Valid (modulus 11) NHS numbers from the 999 test range, never issued to anyone."""
    made = 0
    while made < count:
        digits = [9, 9, 9, *(rng.randrange(10) for _ in range(6))]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 10:
            continue
        yield "".join(map(str, digits)) + str(0 if check == 11 else check)
        made += 1


def _known_people(*paths: Path) -> set[str]:
    """Pseudonyms the demo already holds (its NHS numbers come from the same test range)."""
    known: set[str] = set()
    for path, query in zip(
        paths,
        ("SELECT pseudonym FROM person", "SELECT pseudonym FROM care_episode"),
        strict=True,
    ):
        with sqlite3.connect(path) as db:
            known.update(row[0] for row in db.execute(query) if row[0])
    return known


def _people(data_dir: Path, plan: SeedPlan, known: set[str]) -> list[_Person]:
    """The same people at every node: trust pseudonyms (the trust-wide key) of NHS numbers."""
    rng = random.Random(plan.seed)
    pseudonymiser = node_pseudonymiser(data_dir, "health")
    people, seen = [], set(known)
    for nhs in _nhs_numbers(plan.persons * 2, rng):
        pseudonym = pseudonymiser.person(nhs)
        if pseudonym in seen:
            continue
        seen.add(pseudonym)
        people.append(_Person(len(people), pseudonym, rng.choice(LSOAS)))
        if len(people) == plan.persons:
            break
    return people


def _health(data_dir: Path, path: Path, plan: SeedPlan, people: list[_Person]) -> None:
    rng = random.Random(plan.seed + 1)
    encounters = []
    for person in people:
        for visit in range(3):
            start = ENCOUNTERS_FROM + timedelta(seconds=rng.randrange(ENCOUNTER_DAYS * 86400))
            encounters.append(
                (
                    f"{BENCH_PREFIX}enc-{person.number:07d}-{visit}",
                    person.pseudonym,
                    rng.choice(("AMB", "AMB", "EMER", "IMP")),
                    "finished",
                    _at(start),
                    _at(start + timedelta(hours=rng.randint(1, 72))),
                    person.lsoa_code,
                    1,
                )
            )
    with _bulk(path) as db:
        _insert(
            db,
            "person",
            ("pseudonym", "lsoa_code", "birth_year", "gender"),
            (
                (p.pseudonym, p.lsoa_code, rng.randint(1930, 2008), rng.choice(("male", "female")))
                for p in people
            ),
        )
        _insert(
            db,
            "encounter",
            (
                "encounter_id",
                "pseudonym",
                "class_code",
                "status",
                "started_at",
                "ended_at",
                "lsoa_code",
                "version",
            ),
            encounters,
        )
        _consents(db, "health", people, rng)
    _opt_outs(path, people)


_SERVICES = (
    "Long Term Support: Community",
    "Long Term Support: Residential Care",
    "Long Term Support: Nursing Care",
    "Short Term Support: ST-Max",
    "Short Term Support: Other Short Term",
)


def _care(data_dir: Path, path: Path, plan: SeedPlan, people: list[_Person]) -> None:
    rng = random.Random(plan.seed + 2)
    pseudonymiser = node_pseudonymiser(data_dir, "social-care")
    episodes = []
    for person in people:
        token = pseudonymiser.local_person(f"BENCH{person.number:07d}")
        for event in range(1 + person.number % 2):
            kind = rng.choice(("Request", "Assessment", "Service", "Service", "Review"))
            start = EPISODES_FROM + timedelta(days=rng.randrange(EPISODE_DAYS))
            is_open = kind == "Service" and rng.random() < 0.5
            end = None if is_open else start + timedelta(days=rng.randrange(0, 60))
            episodes.append(
                (
                    f"BENCH-{kind[:3].upper()}-{person.number:07d}-{event + 1}",
                    person.pseudonym,
                    token,
                    kind,
                    rng.choice(_SERVICES) if kind == "Service" else None,
                    start.isoformat(),
                    end.isoformat() if end else None,
                    person.lsoa_code,
                )
            )
    with _bulk(path) as db:
        _insert(
            db,
            "care_episode",
            (
                "event_reference",
                "pseudonym",
                "la_person_token",
                "event_type",
                "service_type",
                "started_on",
                "ended_on",
                "lsoa_code",
            ),
            episodes,
        )
        _consents(db, "social-care", people, rng)
    _opt_outs(path, people)


def _consents(
    db: sqlite3.Connection, node: str, people: Sequence[_Person], rng: random.Random
) -> None:
    """Research consents by the demo's rule, each with its 'given' event, as the demo has."""
    given = _at(DEMO_CONSENT_TIME)
    records, events = [], []
    for person in people:
        if not consents(person.pseudonym):
            continue
        record = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        records.append(
            (
                record,
                CONSENT_SCHEMA_VERSION,
                person.pseudonym,
                node,
                "research",
                "6(1)(a)",
                "ConsentGiven",
                given,
                given,
                "bench: research recruitment form",
            )
        )
        events.append((record, "ConsentGiven", "bench-seed", given, "bench: recruitment", None))
    _insert(
        db,
        "consent",
        (
            "record_id",
            "schema_version",
            "pseudonym",
            "controller",
            "purpose_id",
            "lawful_basis",
            "state",
            "given_at",
            "updated_at",
            "source",
        ),
        records,
    )
    _insert(db, "consent_event", ("record_id", "state", "actor", "at", "source", "note"), events)


def _opt_outs(path: Path, people: Sequence[_Person]) -> None:
    """The opt-out list, reloaded whole (as the trust loads it): the demo's and ours."""
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            listed = [
                row[0]
                for row in connection.exec_driver_sql("SELECT pseudonym FROM national_opt_out")
            ]
        ours = [p.pseudonym for p in people if opted_out(p.pseudonym)]
        load_opt_out_list(
            engine,
            sorted({*listed, *ours}),
            checked_on=OPT_OUT_CHECKED_ON,
            source="demo: synthetic national data opt-out list, with the bench population",
        )
    finally:
        engine.dispose()


# --- SQLite ----------------------------------------------------------------------------------


class _bulk:
    """One connection in one transaction, tuned for loading (the file stays in WAL mode)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA cache_size = -524288")  # 512 MB: the indexes being built
        self.db.execute("PRAGMA temp_store = MEMORY")
        self.db.execute("BEGIN")
        return self.db

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.db.execute("ROLLBACK" if kind else "COMMIT")
        self.db.close()


def _insert(
    db: sqlite3.Connection, table: str, columns: Sequence[str], rows: Iterable[tuple]
) -> None:
    """executemany into one of the store's tables; the columns must be the model's."""
    known = STORE_METADATA.tables[table].c
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValueError(f"bench seed: table {table} has no column(s) {', '.join(unknown)}")
    db.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - the model's names
        f"VALUES ({', '.join('?' * len(columns))})",
        rows,
    )


def _at(moment: datetime) -> str:
    """What the store's UTCDateTime keeps on SQLite: naive UTC text with microseconds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _analyse(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("ANALYZE")


_TABLES = {
    "council": ("sensor", "reading", "reading_hourly"),
    "health": ("person", "encounter", "consent", "national_opt_out"),
    "social-care": ("care_episode", "consent", "national_opt_out"),
}


def _counts(path: Path, node: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        counts = {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in _TABLES[node]
        }
        if node == "council":  # the roll-up summarises exactly the readings stored
            rolled = db.execute("SELECT sum(count) FROM reading_hourly").fetchone()[0]
            if rolled != counts["reading"]:
                raise AssertionError(
                    f"reading_hourly sums {rolled} readings of {counts['reading']}"
                )
        if node == "social-care":
            people = "SELECT count(DISTINCT pseudonym) FROM care_episode"
            counts["care recipients"] = db.execute(people).fetchone()[0]
    return counts
