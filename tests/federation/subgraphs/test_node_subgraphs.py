"""Each node's subgraph through its real Starlette app, on a store loaded through ingest."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from datatrust import _prepare
from datatrust.demo import coventry_lsoas
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import AuditEvent, create_store_engine
from datatrust.trust import verify_audit_chain
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

HEALTH_SDL = '''\
schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@inaccessible", "@key", "@shareable"]) {
  query: Query
}

"""An ONS 2021 Lower layer Super Output Area."""
type Area @key(fields: "code") {
  code: ID!

  """Encounters of the area's residents in the period; null if suppressed."""
  encounterCount(since: Date = null, until: Date = null): Int
}

"""
One area's opaque values (people, and decoys if padded); no area: all people.
"""
type AreaTokens @inaccessible @shareable {
  code: ID
  tokens: OverlapValues!
}

"""Date (isoformat)"""
scalar Date

"""Date with time (isoformat)"""
scalar DateTime

"""A hospital encounter (FHIR R4 Encounter) of one person."""
type Encounter {
  """When the encounter started (UTC)."""
  start: DateTime!

  """When it ended (UTC), if it has."""
  end: DateTime

  """FHIR Encounter.class code, e.g. EMER, IMP, AMB."""
  classCode: String!

  """FHIR Encounter.status, e.g. finished."""
  status: String!
}

"""
A node's answer to a cross-agency count: its cohort as per-query values.
"""
type OverlapTokens @inaccessible @shareable {
  """Equal at every node exactly when all derived the same query key."""
  keyCheck: String!

  """The deciding agreement's minimum cell."""
  minCellSize: Int!

  """The deciding agreement's rounding base."""
  roundTo: Int!
  areas: [AreaTokens!]!
}

"""
Opaque values, each 128 bits in base64url (22 characters), sorted: a JSON array of strings, as [String!]! would be. One scalar rather than a list, so a list of tens of thousands of values is serialised once instead of value by value.
"""
scalar OverlapValues @inaccessible

"""A person the hospital holds records about."""
type Person @key(fields: "pseudonym") {
  """The person's pseudonym, in the form the agreement gives."""
  pseudonym: ID!

  """Year of birth."""
  birthYear: Int

  """Administrative gender (FHIR)."""
  gender: String

  """The LSOA of the person's address."""
  areaCode: String

  """The person's encounters in the period."""
  encounters(since: Date = null, until: Date = null): [Encounter!]!
}

type Query {
  _entities(representations: [_Any!]!): [_Entity]!
  _service: _Service!

  """
  This node's cohort for a cross-agency count, as values keyed for one query id; for the gateway only (see docs/cross-agency-counts.md).
  """
  overlapTokens(queryId: String!, since: Date = null, until: Date = null, byArea: Boolean! = true, padded: Boolean! = false): OverlapTokens! @inaccessible @shareable

  """
  Patients the purpose may see (consent, opt-outs applied), by pseudonym.
  """
  patients(first: Int! = 100, after: ID = null): [Person!]!
}

scalar _Any

union _Entity = Area | Person

type _Service {
  sdl: String!
}'''  # noqa: E501 - the SDL as served

ENTITIES = (
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { code encounterCount } } }"
)


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as running:
        yield running


@pytest.fixture(scope="module")
def health(tmp_path_factory, identity):
    data_dir = tmp_path_factory.mktemp("health")
    sources = _prepare.write_demo_files(data_dir)
    settings = load_settings(
        NodeSettings,
        environ={},
        node_id="health",
        agency="NHS",
        data_dir=data_dir,
        issuers=identity.issuers,
    )
    _prepare.prepare_demo_node(
        data_dir, "health", settings.effective_database_url, sources["health"]
    )
    with app_client(create_node_app(settings)) as client:
        client.settings = settings
        client.identity = identity
        yield client


def graphql(client, query, purpose="service-planning", variables=None):
    headers = client.identity.headers(purpose)
    return client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )


def test_the_subgraph_publishes_its_federation_2_7_sdl_without_a_purpose(health):
    response = graphql(health, "{ _service { sdl } }", purpose=None)
    assert response.status_code == 200
    assert response.json()["data"]["_service"]["sdl"] == HEALTH_SDL


def test_entities_for_many_areas_cost_one_store_query(health):
    engine = create_store_engine(health.settings.effective_database_url)
    codes = [lsoa.code for lsoa in coventry_lsoas()][:20]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "FROM encounter" in statement:
            statements.append(statement)

    # The node's own engine is separate; listen on every engine of the process.
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", count)
    try:
        response = graphql(
            health, ENTITIES, variables={"r": [{"__typename": "Area", "code": c} for c in codes]}
        )
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert response.status_code == 200
    entities = response.json()["data"]["_entities"]
    assert [e["code"] for e in entities] == codes
    assert sum(e["encounterCount"] or 0 for e in entities) > 0
    assert len(statements) == 1
    engine.dispose()


def test_a_bad_representation_fails_alone_and_the_others_are_answered(health):
    representations = [
        {"__typename": "Area", "code": "E01009522"},
        {"__typename": "Hospital", "code": "RKB"},
        {"__typename": "Area", "code": "E01009522", "extra": 1},
        {"__typename": "Area", "code": "not-a-code"},
    ]
    body = graphql(health, ENTITIES, variables={"r": representations}).json()
    entities = body["data"]["_entities"]
    assert entities[0]["code"] == "E01009522"
    assert entities[1:] == [None, None, None]
    messages = {tuple(e["path"]): e["message"] for e in body["errors"]}
    assert messages == {
        ("_entities", 1): "representations[1]: unknown entity type 'Hospital'; "
        "this subgraph resolves: Area, Person",
        ("_entities", 2): "representations[2]: Area is looked up by exactly its key (code); "
        "got fields code, extra",
        ("_entities", 3): "representations[3]: Area.code 'not-a-code' is not a GSS "
        "small-area code such as E01009522",
    }


def test_every_decision_is_in_the_audit_ledger_and_the_chain_verifies(health):
    engine = create_store_engine(health.settings.effective_database_url)
    with engine.connect() as connection:
        before = len(connection.execute(select(AuditEvent.seq)).all())
    graphql(health, ENTITIES, purpose="research", variables={"r": []})
    graphql(health, ENTITIES, variables={"r": [{"__typename": "Area", "code": "E01009522"}]})
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                AuditEvent.outcome, AuditEvent.purpose, AuditEvent.code, AuditEvent.fields
            ).order_by(AuditEvent.seq)
        ).all()[before:]
    assert [tuple(r) for r in rows] == [
        (
            "deny",
            "research",
            "ACCESS_DENIED",
            '["Area.code", "Area.encounterCount", "Query._entities"]',
        ),
        (
            "permit",
            "service-planning",
            "OK",
            '["Area.code", "Area.encounterCount", "Query._entities"]',
        ),
    ]
    checked, broken = verify_audit_chain(engine)
    assert broken is None
    assert checked >= 2
    engine.dispose()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not JSON"),
        (b"[]", "request body must be a JSON object"),
        (b'{"query": ""}', "request has no 'query'"),
        (b'{"query": "{ nope }"}', "Cannot query field 'nope' on type 'Query'."),
        (b'{"query": "{ _entities("}', "query does not parse"),
    ],
)
def test_a_bad_request_gets_400_with_the_problem_named_never_500(health, body, message):
    response = health.post("/graphql", content=body, headers={"Purpose": "service-planning"})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert message in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_health_readiness_and_metrics_answer(health):
    assert health.get("/healthz").json() == {"status": "ok", "node": "health"}
    ready = health.get("/readyz").json()
    assert (ready["status"], ready["node"], ready["policy_problem"]) == ("ready", "health", None)
    assert ready["policy_version"].startswith("shipped (agreements")
    metrics = health.get("/metrics").text
    assert (
        'datatrust_graphql_requests_total{component="node:health",outcome="denied",purpose="research"}'
        in metrics
    )


@pytest.mark.parametrize(
    ("authorization", "purpose", "status", "code", "message"),
    [
        (None, "service-planning", 401, "UNAUTHENTICATED", "no access token"),
        ("Bearer not.a-token", "service-planning", 401, "UNAUTHENTICATED", "is malformed"),
        ("Basic dXNlcjpwdw==", "service-planning", 401, "UNAUTHENTICATED", "is not 'Bearer"),
        (
            "research-token",
            "service-planning",
            403,
            "ACCESS_DENIED",
            "your access token does not allow purpose 'service-planning' (it allows: research)",
        ),
    ],
)
def test_a_node_refuses_bad_or_missing_tokens_and_audits_each_refusal(
    health, authorization, purpose, status, code, message
):
    if authorization == "research-token":
        authorization = f"Bearer {health.identity.token('research')}"
    headers = {"Purpose": purpose} | ({"Authorization": authorization} if authorization else {})
    engine = create_store_engine(health.settings.effective_database_url)
    with engine.connect() as connection:
        before = len(connection.execute(select(AuditEvent.seq)).all())
    response = health.post(
        "/graphql",
        json={"query": ENTITIES, "variables": {"r": [{"__typename": "Area", "code": "E01009522"}]}},
        headers=headers,
    )
    assert response.status_code == status
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code
    assert message in body["errors"][0]["message"]
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditEvent.outcome, AuditEvent.code).order_by(AuditEvent.seq)
        ).all()[before:]
    assert [tuple(r) for r in rows] == [("deny", code)]
    engine.dispose()
