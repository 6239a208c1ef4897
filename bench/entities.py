"""One ``_entities`` call of 10, 100 and 1,000 representations at a node, against plain SQL.

python bench/entities.py [--repeat N] [--skip-postgres] [--postgres ADMIN_URL]

The health node runs as its real application (``create_node_app``, in process over
httpx's ASGI transport) on the demo store, with a real access token from a live identity
server: parsing, validation, the cached decision, row filters, disclosure control and the
audit write all count. Two calls:

* ``Area``: ``encounterCount`` for N areas under service-planning (one aggregate query);
* ``Person``: ``birthYear`` and ``encounters`` for N people under research (the people and
  their encounters: two queries, with the consent and opt-out filters).

The baseline is the same store read written by hand and run on the raw DB-API connection
(no ORM, no GraphQL, no HTTP). A second table compares the two ways of passing a batch of
keys: one bound parameter per key (``IN (?, ?, ...)``) and the one parameter the node uses
(``json_each`` on SQLite, ``= ANY`` on PostgreSQL). Figures are medians; ratios > 1 mean
slower than the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from policy import identity_server, token

from datatrust import _prepare
from datatrust._identity_cli import DEMO_AGENCIES
from datatrust.demo import coventry_lsoas
from datatrust.federation.subgraphs._pseudonyms import PseudonymCodec
from datatrust.node import create_node_app, node_keys
from datatrust.settings import IssuerSetting, NodeSettings, load_settings

SIZES = (10, 100, 1000)
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AREA_QUERY = (
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { code encounterCount } } }"
)
PERSON_QUERY = (
    "query($r: [_Any!]!) { _entities(representations: $r) "
    "{ ... on Person { pseudonym birthYear encounters { start classCode } } } }"
)
RESEARCH = (
    "AND EXISTS (SELECT 1 FROM consent c WHERE c.pseudonym = {t}.pseudonym "
    "AND c.purpose_id = 'research' AND c.state = 'ConsentGiven' "
    "AND (c.expires_at IS NULL OR c.expires_at > {now})) "
    "AND NOT EXISTS (SELECT 1 FROM national_opt_out o WHERE o.pseudonym = {t}.pseudonym)"
)


def placeholders(kind: str, count: int) -> str:
    return ", ".join(["?" if kind == "sqlite" else "%s"] * count)


def direct_reads(kind: str, codes: list[str], people: list[str]) -> dict[str, list[str]]:
    """The store reads of each call, written by hand with one parameter per key."""
    now = "?" if kind == "sqlite" else "%s"
    areas = (
        "SELECT lsoa_code, COUNT(id), COUNT(DISTINCT pseudonym) FROM encounter "  # noqa: S608
        f"WHERE lsoa_code IN ({placeholders(kind, len(codes))}) GROUP BY lsoa_code"
    )
    person = (
        "SELECT p.pseudonym, p.birth_year, p.gender, p.lsoa_code FROM person p "  # noqa: S608
        f"WHERE p.pseudonym IN ({placeholders(kind, len(people))}) "
        + RESEARCH.format(t="p", now=now)
    )
    encounters = (
        "SELECT e.pseudonym, e.started_at, e.class_code FROM encounter e "  # noqa: S608
        f"WHERE e.pseudonym IN ({placeholders(kind, len(people))}) "
        + RESEARCH.format(t="e", now=now)
        + " ORDER BY e.pseudonym, e.started_at"
    )
    return {"Area": [areas], "Person": [person, encounters]}


def one_parameter(kind: str) -> str:
    keys = "SELECT value FROM json_each(?)" if kind == "sqlite" else None
    where = f"lsoa_code IN ({keys})" if keys else "lsoa_code = ANY(%s)"
    return (
        "SELECT lsoa_code, COUNT(id), COUNT(DISTINCT pseudonym) FROM encounter "  # noqa: S608
        f"WHERE {where} GROUP BY lsoa_code"
    )


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def timed(call: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    for _ in range(2):
        await call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def timed_sync(call: Callable[[], object], repeat: int) -> list[float]:
    for _ in range(2):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


@contextlib.contextmanager
def store(kind: str, folder: Path, admin: str):
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'health.db'}"
        return
    name = f"datatrust_bench_entities_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        server = admin.split("://", 1)[1].rsplit("/", 1)[0]
        yield f"postgresql+psycopg://{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def raw_connection(url: str):
    if url.startswith("sqlite"):
        import sqlite3

        return sqlite3.connect(url.removeprefix("sqlite:///"))
    return psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))


async def bench(kind: str, folder: Path, admin: str, identity, repeat: int) -> list[tuple]:
    url_identity, secrets_by_client = identity
    with store(kind, folder, admin) as url:
        sources = _prepare.write_demo_files(folder)
        _prepare.prepare_demo_node(folder, "health", url, sources["health"])
        settings = load_settings(
            NodeSettings,
            environ={},
            node_id="health",
            agency="NHS",
            data_dir=folder,
            database_url=url,
            issuers=[
                IssuerSetting(
                    issuer=url_identity,
                    jwks_url=f"{url_identity}/jwks.json",
                    agencies=list(DEMO_AGENCIES),
                )
            ],
        )
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            people = list(connection.execute(sa.text("SELECT pseudonym FROM person")).scalars())
        engine.dispose()
        people = sorted(people)[:1000]
        codes = [lsoa.code for lsoa in coventry_lsoas()]
        codes += [f"E0199{n:04d}" for n in range(1000 - len(codes))]
        codec = PseudonymCodec(node_keys(folder).pseudonym_key)
        research = [codec.encode(p, "dsa-research-cohort") for p in people]
        headers = {
            "Area": {
                "Authorization": "Bearer "
                + token(url_identity, secrets_by_client, "analyst-cli", "service-planning"),
                "Purpose": "service-planning",
            },
            "Person": {
                "Authorization": "Bearer "
                + token(url_identity, secrets_by_client, "research-cli", "research"),
                "Purpose": "research",
            },
        }
        app = create_node_app(settings)
        rows = []
        raw = raw_connection(url)
        now = "2100-01-01T00:00:00+00:00"
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://node"
            ) as client,
        ):
            for type_name, query in (("Area", AREA_QUERY), ("Person", PERSON_QUERY)):
                for size in SIZES:
                    if type_name == "Area":
                        variables = [{"__typename": "Area", "code": c} for c in codes[:size]]
                    else:
                        variables = [
                            {"__typename": "Person", "pseudonym": p} for p in research[:size]
                        ]
                    payload = {"query": query, "variables": {"r": variables}}

                    async def call(payload=payload, type_name=type_name) -> None:
                        answer = await client.post(
                            "/graphql", json=payload, headers=headers[type_name]
                        )
                        body = answer.json()
                        if answer.status_code != 200 or body.get("errors"):
                            raise RuntimeError(f"the node refused the benchmark call: {body}")

                    statements = direct_reads(kind, codes[:size], people[:size])[type_name]
                    keys = codes[:size] if type_name == "Area" else people[:size]

                    def direct(statements=statements, keys=keys, type_name=type_name) -> None:
                        cursor = raw.cursor()
                        for statement in statements:
                            parameters = keys if type_name == "Area" else [*keys, now]
                            cursor.execute(statement, parameters)
                            cursor.fetchall()
                        raw.rollback()

                    node = median_ms(await timed(call, repeat))
                    baseline = median_ms(timed_sync(direct, repeat))
                    rows.append((kind, type_name, size, node, baseline))
            batch_rows = []
            for size in (*SIZES, 10_000):
                keys = (codes * (size // len(codes) + 1))[:size]
                unique = [f"{c}-{n}" for n, c in enumerate(keys)]
                each = (
                    "SELECT lsoa_code, COUNT(id), COUNT(DISTINCT pseudonym) "  # noqa: S608
                    f"FROM encounter WHERE lsoa_code IN ({placeholders(kind, size)}) "
                    "GROUP BY lsoa_code"
                )
                one = one_parameter(kind)
                single = json.dumps(unique) if kind == "sqlite" else unique

                def run(statement, parameters) -> None:
                    cursor = raw.cursor()
                    cursor.execute(statement, parameters)
                    cursor.fetchall()
                    raw.rollback()

                per_key = median_ms(timed_sync(lambda e=each, u=unique: run(e, u), repeat))
                one_ms = median_ms(timed_sync(lambda o=one, s=single: run(o, [s]), repeat))
                batch_rows.append((kind, size, per_key, one_ms))
        raw.close()
        return rows, batch_rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--postgres", default=ADMIN, help="admin URL for a throwaway database")
    arguments = parser.parse_args()
    kinds = ["sqlite"] if arguments.skip_postgres else ["sqlite", "postgresql"]
    calls, batches = [], []
    with tempfile.TemporaryDirectory() as folder, identity_server(Path(folder)) as identity:
        for kind in kinds:
            root = Path(folder) / kind
            root.mkdir()
            rows, batch_rows = await bench(
                kind, root, arguments.postgres, identity, arguments.repeat
            )
            calls += rows
            batches += batch_rows
    print("_entities at the health node (median ms) vs the same reads in SQL")
    print(f"{'store':<11}{'type':<8}{'reps':>6}{'node':>10}{'direct':>10}{'ratio':>8}")
    for kind, type_name, size, node, baseline in calls:
        print(
            f"{kind:<11}{type_name:<8}{size:>6}{node:>10.2f}{baseline:>10.2f}"
            f"{node / baseline:>8.1f}"
        )
    print("\nbatch of keys: one parameter per key vs one parameter for all (median ms)")
    print(f"{'store':<11}{'keys':>7}{'per key':>10}{'one':>10}{'ratio':>8}")
    for kind, size, per_key, one in batches:
        print(f"{kind:<11}{size:>7}{per_key:>10.2f}{one:>10.2f}{one / per_key:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
