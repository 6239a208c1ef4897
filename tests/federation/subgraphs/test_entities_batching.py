"""An ``_entities`` call costs one store query per field batch, whatever its size.

Each node runs as its real app on a store loaded through ingest (SQLite and PostgreSQL),
and every SQL statement its engine executes during one ``_entities`` call is recorded
(SQLAlchemy ``before_cursor_execute``) and sorted into:

* **data reads**: statements reading agency data (``person``, ``encounter``,
  ``care_episode``, ``reading_hourly``, ``wifi_daily``). The permit's consent and opt-out
  filters are semi- and anti-joins inside these statements, never separate queries.
  Expected: exactly one per field batch (one per DataLoader), e.g. council ``Area``
  ``footfall`` + ``airQuality`` read ``reading_hourly`` twice and ``wifiSessions`` reads
  ``wifi_daily`` once; ``Person`` at health reads ``person`` once (resolving the references)
  and ``encounter`` once.
* **per-request statements**: the opt-out list's date for the audit entry (one read of
  ``opt_out_list``) and the audit ledger append (read the chain's last hash, insert, read
  the new seq). Policy decisions come from the runtime, not the store.

Every statement count, of either kind, is the same for 10, 100 and 1,000 representations.
On SQLite the node's connections get a variable limit of 999 (what SQLite builds before
3.32 allow), so a batch of 1,000 keys must not bind one parameter per key.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from contextlib import contextmanager
from hashlib import sha256

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from datatrust import _prepare
from datatrust.demo import coventry_lsoas
from datatrust.federation.subgraphs._pseudonyms import PseudonymCodec
from datatrust.node import create_node_app, node_keys
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import CareEpisode, Person, create_store_engine
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

SIZES = (10, 100, 1000)
DATA_TABLES = frozenset({"person", "encounter", "care_episode", "reading_hourly", "wifi_daily"})
PER_REQUEST = Counter(
    {
        ("SELECT", "opt_out_list"): 1,
        ("SELECT", "audit_event"): 1,  # the chain's newest hash, once per commit
        ("INSERT", "audit_event"): 1,
    }
)
LEDGER_LOCK = Counter({("SELECT", ""): 1})
"""PostgreSQL only: ``pg_advisory_xact_lock``, which keeps processes sharing a ledger in line."""
RESEARCH_AGREEMENT = "dsa-research-cohort"
OLD_SQLITE_VARIABLE_LIMIT = 999
_TABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE)\b.*?\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.S)

CASES = {
    "council Area": (
        "council",
        "service-planning",
        "Area",
        "code name footfall wifiSessions airQuality { pm25Mean no2Mean readingCount }",
        {("SELECT", "reading_hourly"): 2, ("SELECT", "wifi_daily"): 1},
    ),
    "health Area": (
        "health",
        "service-planning",
        "Area",
        "code encounterCount",
        {("SELECT", "encounter"): 1},
    ),
    "social-care Area": (
        "social-care",
        "service-planning",
        "Area",
        "code openCareEpisodes",
        {("SELECT", "care_episode"): 1},
    ),
    "health Person": (
        "health",
        "research",
        "Person",
        "pseudonym birthYear areaCode encounters { start classCode }",
        {("SELECT", "person"): 1, ("SELECT", "encounter"): 1},
    ),
    "social-care Person": (
        "social-care",
        "research",
        "Person",
        "pseudonym careEpisodes { serviceType start }",
        {("SELECT", "care_episode"): 1},
    ),
}


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as running:
        yield running


@contextmanager
def serve(node_id, store_url, data_dir, identity):
    sources = _prepare.write_demo_files(data_dir)
    _prepare.prepare_demo_node(data_dir, node_id, store_url, sources[node_id])
    settings = load_settings(
        NodeSettings,
        environ={},
        node_id=node_id,
        agency=node_id,
        data_dir=data_dir,
        database_url=store_url,
        issuers=identity.issuers,
    )
    with app_client(create_node_app(settings)) as client:
        yield client


@contextmanager
def statements_of(store_url):
    """Every statement the engines on ``store_url``'s database run, as (verb, first table)."""
    database = sa.make_url(store_url).database
    seen: list[tuple[str, str]] = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if connection.engine.url.database != database:
            return
        if connection.dialect.name == "sqlite":
            connection.connection.dbapi_connection.setlimit(
                sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, OLD_SQLITE_VARIABLE_LIMIT
            )
        found = _TABLE.match(statement)
        seen.append((found[1].upper(), found[2]) if found else (statement.split()[0].upper(), ""))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def representations(type_name, node_id, store_url, data_dir) -> list[dict]:
    """1,000 distinct, well-formed representations; those the store knows come first."""
    if type_name == "Area":
        codes = [lsoa.code for lsoa in coventry_lsoas()]
        codes += [f"E0199{n:04d}" for n in range(1000 - len(codes))]  # areas with no data
        return [{"__typename": "Area", "code": code} for code in codes]
    engine = create_store_engine(store_url)
    column = Person.pseudonym if node_id == "health" else CareEpisode.pseudonym
    with engine.connect() as connection:
        known = list(
            connection.execute(
                sa.select(column).where(column.is_not(None)).distinct().order_by(column)
            ).scalars()
        )
    engine.dispose()
    strangers = [f"p-{sha256(str(n).encode()).hexdigest()[:32]}" for n in range(1000)]
    people = (known + strangers)[:1000]
    codec = PseudonymCodec(node_keys(data_dir).pseudonym_key)
    return [
        {"__typename": "Person", "pseudonym": codec.encode(p, RESEARCH_AGREEMENT)} for p in people
    ]


@pytest.mark.parametrize("case", list(CASES))
def test_an_entities_call_costs_one_query_per_field_batch_at_any_size(
    case, store_url, tmp_path, identity
):
    node_id, purpose, type_name, fields, data_reads = CASES[case]
    query = (
        "query($r: [_Any!]!) { _entities(representations: $r) "
        f"{{ ... on {type_name} {{ {fields} }} }} }}"
    )
    client = identity.headers_for(
        "research-cli" if purpose == "research" else "analyst-cli", purpose
    )
    with serve(node_id, store_url, tmp_path / "data", identity) as node:
        every = representations(type_name, node_id, store_url, tmp_path / "data")
        answers, counted = {}, {}
        for size in SIZES:
            with statements_of(store_url) as seen:
                response = node.post(
                    "/graphql",
                    json={"query": query, "variables": {"r": every[:size]}},
                    headers=client,
                )
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body["errors"][:3]
            answers[size] = body["data"]["_entities"]
            counted[size] = Counter(s for s in seen if s[0] != "BEGIN")

    for size in SIZES:
        data = Counter({s: n for s, n in counted[size].items() if s[1] in DATA_TABLES})
        assert dict(data) == data_reads, (size, counted[size])
        per_request = PER_REQUEST + (
            LEDGER_LOCK if store_url.startswith("postgresql") else Counter()
        )
        assert counted[size] - data == per_request, (size, counted[size])
        assert len(answers[size]) == size
        # Batching changes the cost, never the answer.
        assert answers[size][:10] == answers[10]
    key = "code" if type_name == "Area" else "pseudonym"
    assert [e[key] for e in answers[1000]] == [r[key] for r in every]
    assert _has_data(answers[1000]), "the known entities should carry data from the store"


def _has_data(entities: list[dict]) -> bool:
    return any(
        value not in (None, [], 0)
        for entity in entities
        for name, value in entity.items()
        if name not in ("code", "name", "pseudonym")
    )
