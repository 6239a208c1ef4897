"""Data-use decisions, and what enforcing them costs a planning query, in one run.

    python bench/policy.py [--persons 100000] [--readings 1000000] [--repeat 11]
                           [--skip-postgres] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                           [--profile]

1. Decision latency, p50 and p95 in microseconds. Cold: the first evaluation of a request
   shape, ``engine.decide`` on embedded regopy (and on an OPA server when ``opa`` is on
   PATH), over every input of the decision table. Cached: ``PolicyRuntime.cached`` (what a
   node tries first) and ``PolicyRuntime.decide`` on a shape it has decided before.
   Target: cached under 50 µs.

2. Enforcement overhead, on SQLite and on throwaway PostgreSQL databases (created and
   dropped here). Stores for the council and health nodes are filled directly, not through
   ingest: at least 1,000,000 sensor readings (made by the database, INSERT ... SELECT)
   with the ``reading_hourly`` roll-up summed from exactly those rows by ingest's own
   statement; 100,000 people with three encounters each over the 203 Coventry LSOAs, and
   research consents for about 70% of them, a few withdrawn (executemany; PostgreSQL
   COPY); a national data opt-out list of about 5% loaded with ``load_opt_out_list``.

   The planning query is an analyst's ``_entities`` call for all 203 areas: encounter
   counts for a quarter at the health node; footfall and air quality at the council node.
   Each is timed five ways, interleaved, medians over ``--repeat`` runs:

   * raw SQL: the same aggregate in one hand-written statement;
   * unenforced: the same schema and resolvers (``schema.execute``) with a bare Permit that
     carries no obligations, skipping authentication, decision and audit;
   * unenforced over HTTP: the same, behind a plain Starlette route on the same in-process
     ASGI transport, so the transport's own cost cancels out of the ratio;
   * obligations only: ``schema.execute`` under the Permit the shipped policy decides for
     the request (row filters in SQL, disclosure control; no token, decision or audit);
   * enforced: the real node application (``create_node_app``) with a real access token
     from a live identity server: token validation, the decision (cached after the first
     request), row filters in SQL, disclosure control and the audit write.

   Target: enforced within 1.2x of unenforced. The research query (the same encounter
   counts under the research agreement, whose row filters add a consent EXISTS and an
   opt-out NOT EXISTS to the statement) is reported the same way, beside the raw SQL with
   and without those filters. ``--profile`` adds a cProfile of the enforced planning
   requests at the health node.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import io
import json
import math
import pstats
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
import uvicorn
from graphql import parse
from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from datatrust._ports import free_port
from datatrust.demo import coventry_lsoas
from datatrust.federation._access import operation_access
from datatrust.federation.subgraphs import subgraph_schema
from datatrust.federation.subgraphs._base import NodeContext
from datatrust.federation.subgraphs._endpoint import read_graphql_request
from datatrust.node import create_node_app, node_keys
from datatrust.policies import (
    AccessRequest,
    Permit,
    PolicyRuntime,
    PolicySnapshot,
    Requester,
    shipped_policy,
)
from datatrust.policies._enforcement import DATAUSE_POLICY_DIR
from datatrust.policies._engines import EmbeddedRegoEngine, OpaEngine
from datatrust.policies._table import (
    decision_table_documents,
    decision_table_path,
    load_decision_table,
)
from datatrust.settings import IssuerSetting, NodeSettings, load_settings, node_audience
from datatrust.store import create_store_engine, ensure_month_partitions, migrate
from datatrust.trust import load_opt_out_list
from datatrust.trust._consent import CONSENT_SCHEMA_VERSION
from datatrust.trust.identity import (
    IdentityService,
    IdentitySettings,
    create_demo_accounts,
    create_identity_app,
)

console = Console(width=120)
LSOAS = [lsoa.code for lsoa in coventry_lsoas()]

# The planning period (a quarter) and the data around it.
SINCE, UNTIL = date(2026, 7, 1), date(2026, 9, 30)
ENCOUNTERS_FROM, ENCOUNTER_DAYS = datetime(2026, 1, 1, tzinfo=UTC), 304  # to the end of October
READINGS_FROM, READING_DAYS = datetime(2026, 8, 1, tzinfo=UTC), 60  # August and September
UPLINK_MINUTES = 15  # one uplink per sensor every 15 minutes, as LoRaWAN sensors commonly send
PEOPLE_QUANTITIES = ("people_in", "people_out")
AIR_QUANTITIES = ("pm2_5", "pm10", "no2")
CONSENT_SHARE, WITHDRAWN_SHARE, OPT_OUT_SHARE = 0.70, 0.03, 0.05

PERIOD = f'since: "{SINCE.isoformat()}", until: "{UNTIL.isoformat()}"'
HEALTH_QUERY = (
    "query Planning($areas: [_Any!]!) { _entities(representations: $areas) "
    f"{{ ... on Area {{ code encounterCount({PERIOD}) }} }} }}"
)
COUNCIL_QUERY = (
    "query Planning($areas: [_Any!]!) { _entities(representations: $areas) "
    f"{{ ... on Area {{ code footfall({PERIOD}) airQuality({PERIOD}) "
    "{ pm25Mean pm10Mean no2Mean readingCount } } } }"
)
AREAS = {"areas": [{"__typename": "Area", "code": code} for code in LSOAS]}


# --- 1. decision latency ---------------------------------------------------------------------


def percentiles(samples_us: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_us)
    return statistics.median(ordered), ordered[max(0, math.ceil(len(ordered) * 0.95) - 1)]


def timed_us(function: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


@contextlib.contextmanager
def opa_server(folder: Path) -> Iterator[str | None]:
    """``opa run --server`` on a free loopback port if ``opa`` is on PATH; else None."""
    binary = shutil.which("opa")
    if binary is None:
        yield None
        return
    url = f"http://127.0.0.1:{free_port()}"
    with (folder / "opa.log").open("wb") as log:
        server = subprocess.Popen(
            [binary, "run", "--server", "--addr", url.removeprefix("http://")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=1):  # noqa: S310
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"opa did not start on {url}") from None
                    time.sleep(0.05)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=10)


def access_request(case_input: dict[str, Any], client: str | None = None) -> AccessRequest:
    """The runtime's request for one decision-table input (``client`` overrides its client)."""
    who = case_input.get("requester") or {}
    return AccessRequest(
        purpose=case_input.get("purpose"),
        node=str(case_input.get("node")),
        fields=frozenset(tuple(name.split(".", 1)) for name in case_input.get("fields") or ()),
        aggregate=bool(case_input.get("aggregate", True)),
        requester=Requester(
            subject="bench",
            agency=who.get("agency"),
            roles=tuple(who.get("roles") or ()),
            client_id=client or who.get("client"),
        ),
    )


def decision_latency(decisions: int, folder: Path) -> list[tuple[str, list[float], str]]:
    """Rows of (what, samples in µs, note) for the decision table's inputs."""
    inputs = [case["input"] for case in load_decision_table()]
    cold = min(decisions, 1000)  # milliseconds each: enough for a p95, in seconds
    documents = decision_table_documents()
    rows: list[tuple[str, list[float], str]] = []

    engine = EmbeddedRegoEngine(DATAUSE_POLICY_DIR, documents)
    engine.decide(inputs[0])
    cycle = iter(inputs * (decisions // len(inputs) + 1))
    rows.append(
        (
            "cold: engine.decide, regopy (embedded)",
            timed_us(lambda: engine.decide(next(cycle)), cold),
            f"{len(inputs)} table inputs, cycled",
        )
    )
    with opa_server(folder) as url:
        if url is None:
            rows.append(("cold: engine.decide, OPA server", [], "no opa on PATH: skipped"))
        else:
            opa = OpaEngine(DATAUSE_POLICY_DIR, documents, url, namespace="bench")
            opa.decide(inputs[0])
            opa_cycle = iter(inputs * (decisions // len(inputs) + 1))
            samples = timed_us(lambda: opa.decide(next(opa_cycle)), cold)
            opa.close()
            rows.append(
                (
                    "cold: engine.decide, OPA server",
                    samples,
                    "one POST on a kept-alive HTTP connection",
                )
            )

    table = json.loads(decision_table_path().read_text())
    snapshot = PolicySnapshot("table", "decision table", table["register"], table["agreements"])
    runtime = PolicyRuntime(lambda: snapshot, lambda: "table")
    allowed, well_formed = [], []
    for case_input in inputs:
        try:  # the table also holds malformed inputs, for the Rego; the runtime never sees those
            request = access_request(case_input)
        except (AttributeError, TypeError, ValueError):
            continue
        well_formed.append(case_input)
        with contextlib.suppress(Exception):
            runtime.decide(request)
            allowed.append(request)
    fresh = iter(range(10**9))

    def decide_new_shape() -> None:
        number = next(fresh)
        with contextlib.suppress(Exception):
            runtime.decide(
                access_request(well_formed[number % len(well_formed)], client=f"c{number}")
            )

    rows.append(
        (
            "cold: PolicyRuntime.decide, new shape",
            timed_us(decide_new_shape, cold),
            "regopy, plus the runtime's checks and cache",
        )
    )
    hits = iter(allowed * (decisions // max(1, len(allowed)) + 1))
    cached = timed_us(lambda: runtime.cached(next(hits)), decisions)
    assert all(runtime.cached(request) is not None for request in allowed)
    rows.append(("cached: PolicyRuntime.cached", cached, f"{len(allowed)} allowed shapes, cycled"))
    hits = iter(allowed * (decisions // max(1, len(allowed)) + 1))
    rows.append(
        (
            "cached: PolicyRuntime.decide (cache hit)",
            timed_us(lambda: runtime.decide(next(hits)), decisions),
            "the same shapes",
        )
    )
    return rows


def print_decisions(rows: list[tuple[str, list[float], str]]) -> None:
    table = Table(title="Data-use decision latency (µs)", title_justify="left")
    for column in ("decision", "p50", "p95", "target", "note"):
        table.add_column(column, justify="right" if column in ("p50", "p95") else "left")
    for name, samples, note in rows:
        if not samples:
            table.add_row(name, "-", "-", "", note)
            continue
        p50, p95 = percentiles(samples)
        target = ""
        if name.startswith("cached"):
            target = "< 50 ✓" if p50 < 50 else "< 50 ✗"
        table.add_row(name, f"{p50:.1f}", f"{p95:.1f}", target, note)
    console.print(table)


# --- 2. the data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What to generate: sensors enough for ``readings`` readings, and ``persons`` people."""

    readings: int
    persons: int
    encounters_per_person: int = 3
    seed: int = 2026

    @property
    def steps(self) -> int:
        return READING_DAYS * 24 * 60 // UPLINK_MINUTES

    @property
    def sensor_pairs(self) -> int:
        """People counters and air-quality sensors, in pairs: five readings per pair-uplink."""
        per_pair = self.steps * (len(PEOPLE_QUANTITIES) + len(AIR_QUANTITIES))
        return math.ceil(self.readings / per_pair)

    def sensors(self) -> list[tuple[str, str, str, str, float, float]]:
        rows = []
        for pair in range(self.sensor_pairs):
            code = LSOAS[pair * 7 % len(LSOAS)]  # spread over the city
            for prefix, model, kind in (
                ("pc", "vs350", "people-counter"),
                ("aq", "am308", "air-quality"),
            ):
                rows.append((f"{prefix}-bench-{pair:04d}", model, kind, code, 52.4, -1.5))
        return rows

    def series(self) -> Iterator[tuple[int, str, str, str]]:
        """(series number, device, LSOA, quantity) for each measured quantity of each sensor."""
        number = 0
        for device, _model, kind, code, _lat, _lon in self.sensors():
            for quantity in PEOPLE_QUANTITIES if kind == "people-counter" else AIR_QUANTITIES:
                yield number, device, code, quantity
                number += 1


# Readings are made by the database itself from a small table of series (a sensor's
# quantity), one row per series and 15-minute step, with a value computed from both; the
# roll-up is then summed from the rows inserted, with the statement ingest uses, so it
# summarises exactly those readings. Python would spend minutes building a million rows.
READING_VALUE = (
    "CASE WHEN s.quantity LIKE 'people%' THEN 1.0 * ((s.number * 7919 + n * 104729) % 9973 % 41)"
    " ELSE 4.0 + ((s.number * 7919 + n * 104729) % 9973 % 400) / 20.0 END"
)
READINGS_SQL = {
    "sqlite": (
        "WITH RECURSIVE step(n) AS "  # noqa: S608 - fixed text, no input
        "(SELECT 0 UNION ALL SELECT n + 1 FROM step WHERE n + 1 < :steps) "
        "INSERT INTO reading (device_id, received_at, quantity, value, unit) "
        "SELECT s.device_id, strftime('%Y-%m-%d %H:%M:%S', :start, "
        f"'+' || (n * {UPLINK_MINUTES}) || ' minutes') || '.000000', s.quantity, "
        f"{READING_VALUE}, s.unit FROM bench_series s CROSS JOIN step"
    ),
    "postgresql": (
        "INSERT INTO reading (device_id, received_at, quantity, value, unit) "  # noqa: S608
        "SELECT s.device_id, "
        f"CAST(:start AS timestamptz) + n * INTERVAL '{UPLINK_MINUTES} minutes', "
        f"s.quantity, {READING_VALUE}, s.unit "
        "FROM bench_series s CROSS JOIN generate_series(0, :steps - 1) AS step(n)"
    ),
}
HOUR = {
    "sqlite": "substr(r.received_at, 1, 13) || ':00:00.000000'",
    "postgresql": "date_trunc('hour', r.received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
}
HOURLY_SQL = (
    "INSERT INTO reading_hourly "
    "(device_id, lsoa_code, quantity, hour, count, total, minimum, maximum) "
    "SELECT r.device_id, s.lsoa_code, r.quantity, {hour}, "
    "count(*), sum(r.value), min(r.value), max(r.value) "
    "FROM reading r JOIN sensor s ON s.device_id = r.device_id GROUP BY 1, 2, 3, 4"
)


def load_readings(engine: sa.Engine, plan: Plan) -> None:
    """The council's sensors, their readings and the ``reading_hourly`` roll-up of them."""
    dialect = engine.dialect.name
    bulk(engine, "sensor", plan.sensors())
    series = [
        {"number": n, "device_id": d, "quantity": q, "unit": "count" if "people" in q else "µg/m3"}
        for n, d, _code, q in sorted(plan.series(), key=lambda s: (s[1], s[3]))
    ]  # in the order of the readings' indexes, so each is built by appending
    start = READINGS_FROM.strftime("%Y-%m-%d %H:%M:%S")
    with engine.begin() as connection:
        months = [READINGS_FROM + timedelta(days=d) for d in range(READING_DAYS)]
        ensure_month_partitions(connection, "reading", months)
        if dialect == "sqlite":
            connection.exec_driver_sql("PRAGMA cache_size = -262144")
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE bench_series "
            "(number INTEGER, device_id TEXT, quantity TEXT, unit TEXT)"
        )
        connection.execute(
            sa.text("INSERT INTO bench_series VALUES (:number, :device_id, :quantity, :unit)"),
            series,
        )
        connection.execute(
            sa.text(READINGS_SQL[dialect]),
            {"steps": plan.steps, "start": start + ("+00" if dialect != "sqlite" else "")},
        )
        connection.exec_driver_sql(HOURLY_SQL.format(hour=HOUR[dialect]))
        connection.exec_driver_sql("DROP TABLE bench_series")


@dataclass
class People:
    persons: list[tuple[str, str, int, str]]
    encounters: list[tuple[str, str, str, str, datetime, datetime, str, int]]
    consents: list[tuple[Any, ...]] = field(default_factory=list)
    consent_events: list[tuple[Any, ...]] = field(default_factory=list)
    opt_outs: list[str] = field(default_factory=list)


def people(plan: Plan) -> People:
    rng = random.Random(plan.seed)
    persons, encounters = [], []
    consents, events, opt_outs = [], [], []
    given = datetime(2026, 4, 1, 9, tzinfo=UTC)
    for number in range(plan.persons):
        pseudonym = "p-" + hashlib.sha256(f"bench-{number}".encode()).hexdigest()[:32]
        code = rng.choice(LSOAS)
        persons.append((pseudonym, code, rng.randint(1930, 2020), rng.choice(("male", "female"))))
        for _ in range(plan.encounters_per_person):
            start = ENCOUNTERS_FROM + timedelta(seconds=rng.randrange(ENCOUNTER_DAYS * 86400))
            encounters.append(
                (
                    f"enc-{len(encounters):08d}",
                    pseudonym,
                    rng.choice(("AMB", "AMB", "EMER", "IMP")),
                    "finished",
                    start,
                    start + timedelta(hours=rng.randint(1, 72)),
                    code,
                    1,
                )
            )
        draw = rng.random()
        if draw < CONSENT_SHARE:
            state = "ConsentWithdrawn" if draw < WITHDRAWN_SHARE else "ConsentGiven"
            record = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            consents.append(
                (
                    record,
                    CONSENT_SCHEMA_VERSION,
                    pseudonym,
                    "health",
                    "research",
                    "6(1)(a)",
                    state,
                    given,
                    given,
                    None,
                    "bench: research recruitment form",
                )
            )
            events.append((record, "ConsentGiven", "bench", given, "bench: recruitment", None))
            if state != "ConsentGiven":
                events.append((record, state, "bench", given, "bench: portal", None))
        if rng.random() < OPT_OUT_SHARE:
            opt_outs.append(pseudonym)
    return People(persons, encounters, consents, events, opt_outs)


COLUMNS = {
    "sensor": ("device_id", "model", "kind", "lsoa_code", "latitude", "longitude"),
    "person": ("pseudonym", "lsoa_code", "birth_year", "gender"),
    "encounter": (
        "encounter_id",
        "pseudonym",
        "class_code",
        "status",
        "started_at",
        "ended_at",
        "lsoa_code",
        "version",
    ),
    "consent": (
        "record_id",
        "schema_version",
        "pseudonym",
        "controller",
        "purpose_id",
        "lawful_basis",
        "state",
        "given_at",
        "updated_at",
        "expires_at",
        "source",
    ),
    "consent_event": ("record_id", "state", "actor", "at", "source", "note"),
}


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's SQLite DateTime stores: naive UTC text with microseconds."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def bulk(engine: sa.Engine, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert ``rows`` into ``table``: executemany on SQLite, COPY on PostgreSQL."""
    columns = COLUMNS[table]
    if engine.dialect.name == "sqlite":
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            # A bulk load: a page cache that holds the indexes being built (256 MB).
            cursor.execute("PRAGMA cache_size = -262144")
            cursor.execute("BEGIN")
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - fixed names
                f"VALUES ({', '.join('?' * len(columns))})",
                (tuple(_sqlite_value(v) for v in row) for row in rows),
            )
            cursor.execute("COMMIT")
        finally:
            connection.close()
        return
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with (
        psycopg.connect(url) as connection,
        connection.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def load(engine: sa.Engine, node: str, plan: Plan, folks: People) -> dict[str, int]:
    """Fill ``node``'s store; returns the row counts loaded."""
    migrate(engine)
    if node == "council":
        load_readings(engine, plan)
    else:
        bulk(engine, "person", folks.persons)
        bulk(engine, "encounter", folks.encounters)
        bulk(engine, "consent", folks.consents)
        bulk(engine, "consent_event", folks.consent_events)
        load_opt_out_list(
            engine, folks.opt_outs, checked_on=date(2026, 10, 31), source="bench: synthetic list"
        )
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    tables = ("reading", "reading_hourly") if node == "council" else ("person", "encounter")
    tables += ("consent", "national_opt_out")
    with engine.connect() as connection:
        counts = {
            t: connection.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one()  # noqa: S608
            for t in tables
        }
        if node == "council":  # the roll-up summarises exactly the readings loaded
            rolled = connection.exec_driver_sql("SELECT SUM(count) FROM reading_hourly").scalar()
            assert rolled == counts["reading"], (rolled, counts["reading"])
    return counts


class Stores:
    """The two nodes' stores on one backend: SQLite files, or throwaway PostgreSQL databases."""

    def __init__(self, kind: str, folder: Path, admin: str) -> None:
        self.kind, self.folder, self.admin, self.made = kind, folder, admin, []

    def url(self, node: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / f'{node}.db'}"
        name = f"datatrust_bench_{node}_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        server = self.admin.split("://", 1)[1].rsplit("/", 1)[0]
        return f"postgresql+psycopg://{server}/{name}"

    def drop(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as admin:
            for name in self.made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- 2. the queries --------------------------------------------------------------------------


def _in_list(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)  # fixed LSOA codes, not input


RAW_ENCOUNTERS = (
    "SELECT e.lsoa_code, COUNT(*) FROM encounter e "  # noqa: S608 - fixed text
    f"WHERE e.lsoa_code IN ({_in_list(LSOAS)}) "
    "AND e.started_at >= :since AND e.started_at < :until {filters}"
    "GROUP BY e.lsoa_code"
)
RESEARCH_FILTERS = (
    "AND e.pseudonym IS NOT NULL AND EXISTS (SELECT 1 FROM consent c "
    "WHERE c.pseudonym = e.pseudonym AND c.purpose_id = 'research' "
    "AND c.state = 'ConsentGiven' AND (c.expires_at IS NULL OR c.expires_at > :now)) "
    "AND NOT EXISTS (SELECT 1 FROM national_opt_out o WHERE o.pseudonym = e.pseudonym) "
)
RAW_AREA_STATISTICS = (
    "SELECT lsoa_code, quantity, SUM(total), SUM(count) FROM reading_hourly "  # noqa: S608
    f"WHERE quantity IN ('people_in', 'pm2_5', 'pm10', 'no2') AND lsoa_code IN ({_in_list(LSOAS)}) "
    "AND hour >= :since AND hour < :until GROUP BY lsoa_code, quantity"
)
RAW_READINGS = (
    "SELECT s.lsoa_code, r.quantity, SUM(r.value), COUNT(*) FROM reading r "  # noqa: S608
    "JOIN sensor s ON s.device_id = r.device_id "
    "WHERE r.quantity IN ('people_in', 'pm2_5', 'pm10', 'no2') "
    f"AND s.lsoa_code IN ({_in_list(LSOAS)}) "
    "AND r.received_at >= :since AND r.received_at < :until GROUP BY s.lsoa_code, r.quantity"
)


def bounds(dialect: str) -> dict[str, Any]:
    since = datetime.combine(SINCE, datetime.min.time(), UTC)
    until = datetime.combine(UNTIL + timedelta(days=1), datetime.min.time(), UTC)
    now = datetime.now(UTC)
    if dialect == "sqlite":
        return {k: _sqlite_value(v) for k, v in (("since", since), ("until", until), ("now", now))}
    return {"since": since, "until": until, "now": now}


def raw_query(engine: sa.Engine, statement: str) -> Callable[[], list[tuple[Any, ...]]]:
    """One hand-written statement, run on a pooled connection as a resolver would."""
    text = sa.text(statement)
    used = {k: v for k, v in bounds(engine.dialect.name).items() if f":{k}" in statement}

    def run() -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text, used)]

    return run


@dataclass
class Node:
    """One node's enforced app, and the same schema without enforcement, for timing."""

    name: str
    query: str
    app: Starlette
    plain: Starlette
    engine: sa.Engine
    context: Callable[[], NodeContext]


def bare_permit(purpose: str) -> Permit:
    return Permit(purpose=purpose, fields=frozenset(), policy_version="none (unenforced)")


def decided_permit(node: str, query: str, purpose: str, requester: Requester) -> Permit:
    """The Permit the shipped policy gives ``query``: its obligations, without the node app."""
    schema = subgraph_schema(node)
    access = operation_access(schema._schema, parse(query), schema.entity_key_fields)
    runtime = PolicyRuntime(shipped_policy, lambda: "shipped")
    request = AccessRequest(
        purpose=purpose,
        node=node,
        fields=access.data_fields,
        requester=requester,
        aggregate=access.is_aggregate,
    )
    return runtime.decide(request)


def with_permit(node: Node, permit: Permit) -> Callable[[], Awaitable[dict[str, Any]]]:
    """The query through ``schema.execute`` under ``permit``: obligations, nothing else."""
    schema = subgraph_schema(node.name)

    async def run() -> dict[str, Any]:
        context = node.context()
        context.permit = permit
        result = await schema.execute(node.query, variable_values=AREAS, context_value=context)
        assert not result.errors, result.errors
        return {"data": result.data}

    return run


PLANNER = Requester(agency="council", roles=("analyst",), client_id="analyst-cli")
RESEARCHER = Requester(agency="university", roles=("researcher",), client_id="research-cli")
OBLIGATIONS_ONLY = "obligations only: schema.execute, decided Permit"


def plain_app(node: str, context: Callable[[], NodeContext]) -> Starlette:
    """The node's schema behind a plain route: GraphQL over HTTP with no enforcement."""
    schema = subgraph_schema(node)

    async def graphql(request: Request) -> JSONResponse:
        query, variables, operation = await read_graphql_request(request)
        result = await schema.execute(
            query, variable_values=variables, context_value=context(), operation_name=operation
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        return JSONResponse(body)

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


@contextlib.contextmanager
def identity_server(folder: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A live identity server (uvicorn, in a thread); yields its URL and client secrets."""
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = IdentitySettings(
        issuer=url,
        audiences=tuple(node_audience(n) for n in ("council", "health")),
        data_dir=folder,
        access_token_lifetime_seconds=3600,
    )
    service = IdentityService(settings)
    secrets_by_client = create_demo_accounts(service).client_secrets
    server = uvicorn.Server(
        uvicorn.Config(create_identity_app(settings, service), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield url, secrets_by_client
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def token(url: str, secrets_by_client: dict[str, str], client: str, purpose: str) -> str:
    answer = httpx.post(
        f"{url}/token",
        data={"grant_type": "client_credentials", "scope": purpose},
        auth=(client, secrets_by_client[client]),
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


@dataclass
class Variant:
    name: str
    run: Callable[[], Awaitable[Any]]
    samples: list[float] = field(default_factory=list)


async def measure(variants: list[Variant], repeat: int, warmup: int = 2) -> None:
    """Time every variant ``repeat`` times, interleaved, after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for variant in variants:
            await variant.run()
    for _ in range(repeat):
        for variant in variants:
            started = time.perf_counter()
            await variant.run()
            variant.samples.append(time.perf_counter() - started)


def entities(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert not body.get("errors"), json.dumps(body.get("errors"))[:500]
    return {row["code"]: row for row in body["data"]["_entities"]}


def close_counts(
    protected: dict[str, int | None], exact: dict[str, int], tolerance: int = 10
) -> None:
    """Disclosure control suppresses small cells, perturbs and rounds the rest: near exact."""
    for code, value in exact.items():
        got = protected.get(code)
        if got is None:  # suppressed: only a small cell may be (minimum cell size 10)
            assert value < 10 + tolerance, (code, value)
        else:
            assert abs(got - value) <= tolerance, (code, got, value)


@dataclass
class Result:
    backend: str
    query: str
    rows: list[tuple[str, float]]
    ratios: list[tuple[str, float, str]]


async def node_benchmark(
    backend: str,
    urls: dict[str, str],
    data_dir: Path,
    identity: tuple[str, dict[str, str]],
    repeat: int,
    profile: bool,
) -> list[Result]:
    issuer_url, client_secrets = identity
    issuers = [
        IssuerSetting(
            issuer=issuer_url,
            jwks_url=f"{issuer_url}/jwks.json",
            agencies=["council", "health", "social-care", "housing", "university", "public"],
        )
    ]
    keys = node_keys(data_dir)
    results = []
    async with contextlib.AsyncExitStack() as stack:
        nodes = {}
        for name in ("health", "council"):
            settings = load_settings(
                NodeSettings,
                environ={},
                node_id=name,
                agency=name,
                data_dir=data_dir,
                database_url=urls[name],
                issuers=issuers,
                rate_limit_per_minute=10**9,
                rate_limit_burst=10**9,
            )
            app = create_node_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            engine = create_store_engine(urls[name])
            stack.callback(engine.dispose)

            def context(engine=engine, name=name, purpose="service-planning") -> NodeContext:
                return NodeContext(
                    engine=engine, permit=bare_permit(purpose), node_id=name, keys=keys
                )

            nodes[name] = Node(
                name,
                HEALTH_QUERY if name == "health" else COUNCIL_QUERY,
                app,
                plain_app(name, context),
                engine,
                context,
            )

        async def client(app: Starlette) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app)
            made = httpx.AsyncClient(transport=transport, base_url="http://node")
            await stack.enter_async_context(made)
            return made

        planner = token(issuer_url, client_secrets, "analyst-cli", "service-planning")
        researcher = token(issuer_url, client_secrets, "research-cli", "research")

        for name, node in nodes.items():
            schema = subgraph_schema(name)
            enforced_client, plain_client = await client(node.app), await client(node.plain)
            payload = {"query": node.query, "variables": AREAS}

            def enforced(c=enforced_client, t=planner, p=payload, purpose="service-planning"):
                headers = {"Authorization": f"Bearer {t}", "Purpose": purpose}
                return _post(c, p, headers)

            async def unenforced(s=schema, n=node):
                result = await s.execute(n.query, variable_values=AREAS, context_value=n.context())
                assert not result.errors, result.errors
                return {"data": result.data}

            def over_http(c=plain_client, p=payload):
                return _post(c, p, {})

            statement = (
                RAW_ENCOUNTERS.format(filters="") if name == "health" else RAW_AREA_STATISTICS
            )
            raw = raw_query(node.engine, statement)

            async def raw_sql(raw=raw):
                return raw()

            variants = [
                Variant("raw SQL, one hand-written statement", raw_sql),
                Variant("unenforced: schema.execute, bare Permit", unenforced),
                Variant("unenforced over HTTP (same ASGI transport)", over_http),
                Variant(
                    OBLIGATIONS_ONLY,
                    with_permit(
                        node, decided_permit(name, node.query, "service-planning", PLANNER)
                    ),
                ),
                Variant("enforced: node app, token + decision + audit", enforced),
            ]
            if name == "council":
                raw_readings = raw_query(node.engine, RAW_READINGS)

                async def readings_sql(run=raw_readings):
                    return run()

                variants.insert(1, Variant("raw SQL over raw readings (no roll-up)", readings_sql))
            await check_planning(name, variants, raw, raw_readings if name == "council" else None)
            await measure(variants, repeat)
            results.append(summarise(backend, f"planning, {name} node", variants))

            if name == "health":
                if profile:
                    await profiled(enforced, 20)
                results.append(
                    await research(backend, node, schema, enforced_client, researcher, repeat)
                )
    return results


async def _post(client: httpx.AsyncClient, payload: dict, headers: dict) -> dict[str, Any]:
    answer = await client.post("/graphql", json=payload, headers=headers)
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()


async def check_planning(name: str, variants: list[Variant], raw, raw_readings) -> None:
    """Every variant answers the same question: compare their answers once, before timing."""
    answers = {v.name: await v.run() for v in variants}
    plain = entities(answers["unenforced: schema.execute, bare Permit"])
    enforced = entities(answers["enforced: node app, token + decision + audit"])
    if name == "health":
        exact = dict.fromkeys(LSOAS, 0) | dict(raw())
        assert {code: row["encounterCount"] for code, row in plain.items()} == exact
        close_counts({code: row["encounterCount"] for code, row in enforced.items()}, exact)
        return
    statistics_ = raw()
    footfall = {code: int(t) for code, quantity, t, _n in statistics_ if quantity == "people_in"}
    assert {c: r["footfall"] for c, r in plain.items() if r["footfall"] is not None} == footfall
    close_counts({c: r["footfall"] for c, r in enforced.items()}, footfall)
    assert all(enforced[c]["footfall"] is None for c in LSOAS if c not in footfall)
    counted = {(code, quantity): int(n) for code, quantity, _total, n in statistics_}
    assert {(c, q): int(n) for c, q, _t, n in raw_readings()} == counted


async def research(
    backend: str, node: Node, schema, enforced_client, researcher: str, repeat: int
) -> Result:
    """The research query: encounter counts under the consent and opt-out row filters."""
    payload = {"query": node.query, "variables": AREAS}
    headers = {"Authorization": f"Bearer {researcher}", "Purpose": "research"}

    async def enforced():
        return await _post(enforced_client, payload, headers)

    async def unenforced():
        context = NodeContext(
            engine=node.engine,
            permit=bare_permit("research"),
            node_id="health",
            keys=node.context().keys,
        )
        result = await schema.execute(node.query, variable_values=AREAS, context_value=context)
        assert not result.errors, result.errors
        return {"data": result.data}

    unfiltered = raw_query(node.engine, RAW_ENCOUNTERS.format(filters=""))
    filtered = raw_query(node.engine, RAW_ENCOUNTERS.format(filters=RESEARCH_FILTERS))

    async def raw_unfiltered():
        return unfiltered()

    async def raw_filtered():
        return filtered()

    variants = [
        Variant("raw SQL, no row filters", raw_unfiltered),
        Variant("raw SQL + consent EXISTS + opt-out NOT EXISTS", raw_filtered),
        Variant("unenforced: schema.execute, bare Permit", unenforced),
        Variant(
            OBLIGATIONS_ONLY,
            with_permit(node, decided_permit("health", node.query, "research", RESEARCHER)),
        ),
        Variant("enforced: node app, research token", enforced),
    ]
    exact = dict.fromkeys(LSOAS, 0) | dict(filtered())
    answer = entities(await enforced())
    close_counts({code: row["encounterCount"] for code, row in answer.items()}, exact)
    await measure(variants, repeat)
    return summarise(backend, "research, health node", variants)


def summarise(backend: str, query: str, variants: list[Variant]) -> Result:
    medians = {v.name: statistics.median(v.samples) for v in variants}
    rows = list(medians.items())
    enforced = next(m for n, m in medians.items() if n.startswith("enforced"))
    plain = medians["unenforced: schema.execute, bare Permit"]
    obliged = medians[OBLIGATIONS_ONLY]
    ratios = [
        ("enforced / unenforced", enforced / plain, "target ≤ 1.2"),
        ("obligations only / unenforced", obliged / plain, "row filters, SDC"),
        ("enforced / obligations only", enforced / obliged, "token, decision, audit, HTTP"),
    ]
    http = medians.get("unenforced over HTTP (same ASGI transport)")
    if http:
        ratios.append(("enforced / unenforced over HTTP", enforced / http, "enforcement alone"))
    raw = next(m for n, m in medians.items() if n.startswith("raw SQL"))
    ratios.append(("enforced / raw SQL", enforced / raw, ""))
    if query.startswith("research"):
        filtered = medians["raw SQL + consent EXISTS + opt-out NOT EXISTS"]
        ratios.append(("raw SQL: with filters / without", filtered / raw, "the filters alone"))
    return Result(backend, query, rows, ratios)


async def profiled(enforced: Callable[[], Awaitable[Any]], count: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        await enforced()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    # The enforcement point's own steps, by cumulative time (the project's code, validation).
    stats.sort_stats("cumulative").print_stats(
        r"main/(federation|policies|trust|datatrust)/|validation/validate", 25
    )
    console.print(f"[bold]cProfile of {count} enforced planning requests (health)[/]")
    console.print(out.getvalue(), markup=False, highlight=False)


def print_results(results: list[Result], sizes: dict[str, dict[str, int]]) -> None:
    for backend, counts in sizes.items():
        console.print(f"[bold]{backend}[/]: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    for result in results:
        table = Table(title=f"{result.backend}: {result.query}", title_justify="left")
        table.add_column("variant")
        table.add_column("median", justify="right")
        table.add_column("note")
        for name, seconds in result.rows:
            table.add_row(name, f"{seconds * 1000:.2f} ms", "")
        table.add_section()
        for name, ratio, note in result.ratios:
            if note.startswith("target"):
                note += " ✓" if ratio <= 1.2 else " ✗"
            table.add_row(name, f"{ratio:.2f}x", note)
        console.print(table)


# --- main ------------------------------------------------------------------------------------


def run_backend(
    backend: str, plan: Plan, folks: People, args, identity, sizes: dict[str, dict[str, int]]
) -> list[Result]:
    with tempfile.TemporaryDirectory() as folder:
        stores = Stores(backend, Path(folder), args.postgres)
        try:
            urls = {name: stores.url(name) for name in ("council", "health")}
            counts: dict[str, int] = {}
            started = time.perf_counter()
            for name, url in urls.items():
                engine = create_store_engine(url)
                try:
                    counts |= load(engine, name, plan, folks)
                finally:
                    engine.dispose()
            console.print(f"{backend}: loaded in {time.perf_counter() - started:.1f} s")
            sizes[backend] = counts
            data_dir = Path(folder) / "trust"
            return asyncio.run(
                node_benchmark(backend, urls, data_dir, identity, args.repeat, args.profile)
            )
        finally:
            if backend == "postgresql":
                stores.drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=11, help="timed runs of each query variant")
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profile", action="store_true", help="cProfile enforced requests")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        print_decisions(decision_latency(args.decisions, Path(folder)))

    plan = Plan(readings=args.readings, persons=args.persons)
    started = time.perf_counter()
    folks = people(plan)
    console.print(
        f"generated {plan.persons:,} people, {len(folks.encounters):,} encounters, "
        f"{len(folks.consents):,} consents, {len(folks.opt_outs):,} opt-outs, "
        f"{plan.sensor_pairs * 2} sensors in {time.perf_counter() - started:.1f} s"
    )
    backends = ["sqlite"] + ([] if args.skip_postgres else ["postgresql"])
    results: list[Result] = []
    sizes: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as folder, identity_server(Path(folder)) as identity:
        for backend in backends:
            results += run_backend(backend, plan, folks, args, identity, sizes)
    print_results(results, sizes)


if __name__ == "__main__":
    main()
