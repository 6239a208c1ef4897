"""Each demo purpose at the health and social-care nodes: the right fields, rows and forms.

Real node applications on stores loaded through ingest, real tokens from a live identity
server, the shipped demo agreements. Every assertion compares with what the store holds,
so a filter that did not run, a mask that leaked or a form that was not applied fails.
"""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest
import sqlalchemy as sa

from datatrust import _prepare
from datatrust.demo import coventry_lsoas
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import AuditEvent, create_store_engine
from datatrust.trust import give_consent, load_opt_out_list, withdraw_consent
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

RESEARCH = "research-cli"
PLANNING = "analyst-cli"
CARE = "care-cli"
FEATURED = [lsoa.code for lsoa in coventry_lsoas()[:5]]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("trust")


@pytest.fixture(scope="module")
def identity(tmp_path_factory, data_dir):
    key = data_dir / "keys" / "pseudonym.key"  # citizens' tokens name their pseudonym
    with trust_identity(tmp_path_factory.mktemp("identity"), person_key_file=key) as running:
        yield running


@pytest.fixture(scope="module")
def trust(data_dir, identity):
    """Health and social-care nodes of one trust (one data dir: the same trust keys)."""
    sources = _prepare.write_demo_files(data_dir)
    clients = {}
    with (
        _node(data_dir, "health", sources, identity) as health,
        _node(data_dir, "social-care", sources, identity) as care,
    ):
        clients["health"], clients["social-care"] = health, care
        yield clients


class _node:
    def __init__(self, data_dir, node_id, sources, identity):
        self.settings = load_settings(
            NodeSettings,
            environ={},
            node_id=node_id,
            agency=node_id,
            data_dir=data_dir,
            issuers=identity.issuers,
        )
        _prepare.prepare_demo_node(
            data_dir, node_id, self.settings.effective_database_url, sources[node_id]
        )
        self.identity = identity
        self._context = app_client(create_node_app(self.settings))

    def __enter__(self):
        self.client = self._context.__enter__()
        self.client.settings = self.settings
        self.client.identity = self.identity
        return self.client

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)


def ask(node, query, client, purpose, variables=None):
    response = node.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers=node.identity.headers_for(client, purpose),
    )
    return response.status_code, response.json()


def db(node) -> sqlite3.Connection:
    return sqlite3.connect(node.settings.effective_database_url.removeprefix("sqlite:///"))


def engine_of(node) -> sa.Engine:
    return create_store_engine(node.settings.effective_database_url)


def research_cohort(node, table="person") -> set[str]:
    """Who the research agreement lets through, computed independently in SQL."""
    with db(node) as connection:
        rows = connection.execute(
            f"SELECT DISTINCT t.pseudonym FROM {table} t "  # noqa: S608 - fixed names
            "JOIN consent c ON c.pseudonym = t.pseudonym AND c.purpose_id = 'research' "
            "AND c.state = 'ConsentGiven' "
            "WHERE t.pseudonym NOT IN (SELECT pseudonym FROM national_opt_out)"
        )
        return {row[0] for row in rows}


PATIENTS = (
    "{ patients(first: 1000) { pseudonym birthYear areaCode encounters { start classCode } } }"
)


# -- research: a consented, opted-out-excluded, pseudonymised, masked cohort ------------------


def test_research_sees_exactly_the_consented_cohort_in_pseudonymised_form(trust):
    health = trust["health"]
    status, body = ask(health, PATIENTS, RESEARCH, "research")
    assert status == 200, body
    people = body["data"]["patients"]
    expected = research_cohort(health)
    assert 0 < len(people) == len(expected)
    with db(health) as connection:
        everyone = connection.execute("SELECT COUNT(*) FROM person").fetchone()[0]
    assert len(people) < everyone  # some refused consent or opted out
    assert all(p["pseudonym"].startswith("r-") for p in people)  # never the trust pseudonym
    assert all(p["areaCode"] is None for p in people)  # masked: never leaves the node
    assert any(p["birthYear"] for p in people)  # identifiable under the agreement


def test_research_records_the_returned_subjects_in_the_audit_ledger(trust):
    health = trust["health"]
    ask(health, "query Cohort " + PATIENTS, RESEARCH, "research")
    engine = engine_of(health)
    with engine.connect() as connection:
        entry = connection.execute(
            sa.select(AuditEvent)
            .where(AuditEvent.operation == "Cohort")
            .order_by(AuditEvent.seq.desc())
        ).first()
    assert entry.outcome == "permit"
    assert entry.agreement == "dsa-research-cohort"
    assert (entry.agency, entry.aggregate) == ("university", False)
    subjects = set(__import__("json").loads(entry.subjects))
    assert subjects == research_cohort(health)
    assert entry.subject_count == len(subjects)
    assert entry.opt_out_list_date is not None


def test_social_care_research_joins_on_the_same_agreement_pseudonyms(trust):
    status, health = ask(
        trust["health"], "{ patients(first: 1000) { pseudonym } }", RESEARCH, "research"
    )
    status2, care = ask(
        trust["social-care"], "{ careRecipients(first: 1000) { pseudonym } }", RESEARCH, "research"
    )
    assert (status, status2) == (200, 200)
    shared = {p["pseudonym"] for p in health["data"]["patients"]} & {
        p["pseudonym"] for p in care["data"]["careRecipients"]
    }
    assert shared  # the same person has the same research pseudonym at both nodes
    assert len(care["data"]["careRecipients"]) == len(
        research_cohort(trust["social-care"], "care_episode")
    )


def test_a_research_pseudonym_resolves_through_entities_and_a_trust_pseudonym_does_not(trust):
    health = trust["health"]
    _, body = ask(health, "{ patients(first: 1) { pseudonym } }", RESEARCH, "research")
    research_pseudonym = body["data"]["patients"][0]["pseudonym"]
    trust_pseudonym = sorted(research_cohort(health))[0]
    query = (
        "query($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on Person { pseudonym birthYear } } }"
    )
    representations = [
        {"__typename": "Person", "pseudonym": research_pseudonym},
        {"__typename": "Person", "pseudonym": trust_pseudonym},
    ]
    status, body = ask(health, query, RESEARCH, "research", {"r": representations})
    assert status == 200, body
    first, second = body["data"]["_entities"]
    assert first["pseudonym"] == research_pseudonym
    assert second is None


@pytest.mark.parametrize(
    "query",
    [
        "{ patients { a: areaCode } }",
        "fragment F on Person { areaCode } { patients { ...F } }",
        "{ patients { ... on Person { x: areaCode } } }",
        "query($n: Int!) { patients(first: $n) { areaCode } }",
    ],
    ids=["alias", "fragment", "inline fragment", "variables"],
)
def test_no_route_through_the_document_reaches_a_masked_field(trust, query):
    status, body = ask(trust["health"], query, RESEARCH, "research", {"n": 5})
    assert status == 200, body
    values = [value for person in body["data"]["patients"] for value in person.values()]
    assert values
    assert all(value is None for value in values)


def test_a_masked_field_is_null_through_a_hand_made_entities_call(trust):
    health = trust["health"]
    _, body = ask(health, "{ patients(first: 3) { pseudonym } }", RESEARCH, "research")
    representations = [
        {"__typename": "Person", "pseudonym": p["pseudonym"]} for p in body["data"]["patients"]
    ]
    query = (
        "query($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on Person { hidden: areaCode } } }"
    )
    status, body = ask(health, query, RESEARCH, "research", {"r": representations})
    assert status == 200
    assert body["data"]["_entities"] == [{"hidden": None}] * 3


@pytest.mark.parametrize(
    "query",
    [
        "{ patients { encounters { s: status } } }",
        "fragment E on Encounter { status } { patients { encounters { ...E } } }",
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { gender "
        "encounters { end } } } }",
        "{ patients { pseudonym } _entities(representations: []) "
        "{ ... on Area { encounterCount } } }",
    ],
    ids=["alias", "fragment", "entities", "aggregate beside records"],
)
def test_no_route_through_the_document_reaches_an_unagreed_field(trust, query):
    variables = {"r": [{"__typename": "Person", "pseudonym": "r-x"}]}
    status, body = ask(trust["health"], query, RESEARCH, "research", variables)
    assert status == 403, body
    assert body["data"] is None
    assert "dsa-research-cohort" in body["errors"][0]["message"]


def test_withdrawing_consent_or_opting_out_changes_the_very_next_research_query(trust):
    for node_id, root in (("health", "patients"), ("social-care", "careRecipients")):
        node = trust[node_id]
        query = f"{{ {root}(first: 1000) {{ pseudonym }} }}"
        before = len(ask(node, query, RESEARCH, "research")[1]["data"][root])
        cohort = sorted(research_cohort(node, "person" if node_id == "health" else "care_episode"))
        engine = engine_of(node)
        withdraw_consent(
            engine, pseudonym=cohort[0], controller=node_id, purpose="research", actor="test"
        )
        after_withdrawal = len(ask(node, query, RESEARCH, "research")[1]["data"][root])
        with engine.connect() as connection:
            listed = [
                r[0] for r in connection.execute(sa.text("SELECT pseudonym FROM national_opt_out"))
            ]
        load_opt_out_list(engine, [*listed, cohort[1]], checked_on=date.today(), source="test")
        after_opt_out = len(ask(node, query, RESEARCH, "research")[1]["data"][root])
        assert (after_withdrawal, after_opt_out) == (before - 1, before - 2), node_id
        # Consent given again (and the list reloaded) brings them back on the next query.
        give_consent(
            engine,
            pseudonym=cohort[0],
            controller=node_id,
            purpose="research",
            lawful_basis="6(1)(a)",
            source="test",
            actor="test",
        )
        load_opt_out_list(engine, listed, checked_on=date.today(), source="test")
        assert len(ask(node, query, RESEARCH, "research")[1]["data"][root]) == before


def test_research_area_counts_count_only_the_cohort(trust):
    health = trust["health"]
    query = (
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { encounterCount } } }"
    )
    variables = {"r": [{"__typename": "Area", "code": c} for c in FEATURED]}
    _, research = ask(health, query, RESEARCH, "research", variables)
    _, planning = ask(health, query, PLANNING, "service-planning", variables)
    research_total = sum(e["encounterCount"] or 0 for e in research["data"]["_entities"])
    planning_total = sum(e["encounterCount"] or 0 for e in planning["data"]["_entities"])
    assert 0 < research_total < planning_total


# -- service planning: aggregates only, disclosure-controlled ---------------------------------


def test_planning_gets_area_counts_never_below_the_threshold_and_rounded(trust):
    codes = [lsoa.code for lsoa in coventry_lsoas()]
    query = (
        "query($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on Area { code encounterCount } } }"
    )
    status, body = ask(
        trust["health"],
        query,
        PLANNING,
        "service-planning",
        {"r": [{"__typename": "Area", "code": c} for c in codes]},
    )
    assert status == 200
    values = [e["encounterCount"] for e in body["data"]["_entities"]]
    published = [v for v in values if v]
    assert published
    assert all(v >= 10 and v % 5 == 0 for v in published)
    assert None in values  # small areas are suppressed, not shown as 0
    assert body["extensions"]["disclosureControl"]["suppressedCells"] == values.count(None)


def test_a_suppressed_cell_cannot_be_recomputed_from_overlapping_periods_in_one_response(trust):
    query = (
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { "
        'month: encounterCount(since: "2026-10-01", until: "2026-10-31") '
        'rest: encounterCount(since: "2026-10-02", until: "2026-10-31") '
        'day: encounterCount(since: "2026-10-01", until: "2026-10-01") } } }'
    )
    codes = [lsoa.code for lsoa in coventry_lsoas()]
    status, body = ask(
        trust["health"],
        query,
        PLANNING,
        "service-planning",
        {"r": [{"__typename": "Area", "code": c} for c in codes]},
    )
    assert status == 200
    for area in body["data"]["_entities"]:
        if area["day"] is None and any(v is not None for v in area.values()):
            pytest.fail(f"a suppressed day beside published periods: {area}")


def test_planning_cannot_read_records(trust):
    status, body = ask(trust["health"], "{ patients { birthYear } }", PLANNING, "service-planning")
    assert status == 403
    assert (
        "dsa-planning-area-statistics does not share field Person.birthYear"
        in (body["errors"][0]["message"])
    )


# -- direct care: identifiable, no consent filter; draft and absent agreements ----------------


def test_direct_care_sees_every_patient_identifiably(trust):
    health = trust["health"]
    status, body = ask(
        health, "{ patients(first: 1000) { pseudonym areaCode } }", CARE, "direct-care"
    )
    assert status == 200, body
    with db(health) as connection:
        everyone = {r[0] for r in connection.execute("SELECT pseudonym FROM person")}
    assert {p["pseudonym"] for p in body["data"]["patients"]} == everyone
    assert any(p["areaCode"] for p in body["data"]["patients"])


def test_a_draft_agreement_and_a_purpose_without_one_are_refused(trust, identity):
    query = "{ careRecipients { careEpisodes { serviceType } } }"
    status, _ = ask(trust["social-care"], query, CARE, "direct-care")
    assert status == 200  # direct care: the in-force agreement covers it
    for purpose in ("safeguarding", "official-statistics", "commissioning"):
        token = identity.token(None)
        response = trust["social-care"].post(
            "/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {token}", "Purpose": purpose},
        )
        assert response.status_code == 403, purpose


# -- the ledger: nothing leaves unaudited -------------------------------------------------


def test_a_ledger_that_cannot_be_written_fails_the_request_and_returns_no_data(trust):
    health = trust["health"]
    with db(health) as connection:  # the store refuses every new audit entry, as a full disk
        connection.execute(
            "CREATE TRIGGER ledger_full BEFORE INSERT ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    try:
        for client, purpose, query in (
            (RESEARCH, "research", PATIENTS),
            (PLANNING, "service-planning", "{ patients { birthYear } }"),  # a refusal too
        ):
            response = health.post(
                "/graphql",
                json={"query": query},
                headers=health.identity.headers_for(client, purpose),
            )
            body = response.json()
            assert response.status_code >= 500, body
            assert body["data"] is None
            assert "audit ledger could not be written" in body["errors"][0]["message"]
    finally:
        with db(health) as connection:
            connection.execute("DROP TRIGGER ledger_full")
    status, _ = ask(health, PATIENTS, RESEARCH, "research")
    assert status == 200


# -- the consent API: Polar decides who may change whose consent ------------------------------


GIVE = 'mutation($p: ID) { giveConsent(purpose: "research", pseudonym: $p) { state } }'
WITHDRAW = 'mutation($p: ID) { withdrawConsent(purpose: "research", pseudonym: $p) { state } }'


def consent_call(node, token, query, pseudonym=None):
    response = node.post(
        "/consent",
        json={"query": query, "variables": {"p": pseudonym}},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code, response.json()


def test_a_citizen_withdraws_their_own_research_consent_and_the_next_query_excludes_them(
    trust, identity
):
    from datatrust.trust import load_or_create_key, person_pseudonym
    from datatrust.trust.identity._accounts import DEMO_CITIZEN_NHS_NUMBER

    health = trust["health"]
    key = load_or_create_key(health.settings.data_dir / "keys" / "pseudonym.key")
    me = person_pseudonym(key, DEMO_CITIZEN_NHS_NUMBER)
    assert me in research_cohort(health)  # the demo citizen consented
    token = identity.person_token("citizen")
    status, body = consent_call(health, token, WITHDRAW)
    assert (status, body.get("errors")) == (200, None)
    assert body["data"]["withdrawConsent"]["state"] == "ConsentWithdrawn"
    assert me not in research_cohort(health)
    _, cohort = ask(health, PATIENTS, RESEARCH, "research")
    assert len(cohort["data"]["patients"]) == len(research_cohort(health))
    # They may not touch anyone else's consent.
    other = sorted(research_cohort(health))[0]
    status, body = consent_call(health, token, WITHDRAW, other)
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert other in research_cohort(health)
    status, body = consent_call(health, token, GIVE)
    assert body["data"]["giveConsent"]["state"] == "ConsentGiven"
    assert me in research_cohort(health)


def test_staff_record_consent_only_for_their_own_agency_and_the_ledger_has_it(trust, identity):
    health = trust["health"]
    with db(health) as connection:
        someone = connection.execute(
            "SELECT pseudonym FROM person WHERE pseudonym NOT IN "
            "(SELECT pseudonym FROM consent) ORDER BY pseudonym LIMIT 1"
        ).fetchone()[0]
    health_dpo = identity.person_token("health-dpo")
    council_dpo = identity.person_token("dpo")
    status, body = consent_call(health, council_dpo, GIVE, someone)
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    status, body = consent_call(health, health_dpo, GIVE, someone)
    assert (status, body["data"]["giveConsent"]["state"]) == (200, "ConsentGiven")
    with db(health) as connection:
        outcomes = connection.execute(
            "SELECT outcome FROM audit_event WHERE fields LIKE '%giveConsent%' "
            "ORDER BY seq DESC LIMIT 2"
        ).fetchall()
    assert [row[0] for row in outcomes] == ["permit", "deny"]
    status, body = consent_call(health, health_dpo, WITHDRAW, someone)
    assert body["data"]["withdrawConsent"]["state"] == "ConsentRevoked"


def test_polar_refuses_a_dpo_querying_data_even_for_a_purpose_their_token_names(trust, identity):
    token = identity.person_token("dpo", scope="openid service-planning")
    response = trust["health"].post(
        "/graphql",
        json={"query": "{ _entities(representations: []) { ... on Area { encounterCount } } }"},
        headers={"Authorization": f"Bearer {token}", "Purpose": "service-planning"},
    )
    assert response.status_code == 403
    assert "may not query" in response.json()["errors"][0]["message"]


def test_commissioning_gets_the_planning_agreements_aggregates_and_no_records(trust):
    query = (
        "query($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on Area { openCareEpisodes } } }"
    )
    variables = {"r": [{"__typename": "Area", "code": c} for c in FEATURED]}
    status, body = ask(trust["social-care"], query, PLANNING, "commissioning", variables)
    assert status == 200, body
    values = [e["openCareEpisodes"] for e in body["data"]["_entities"]]
    assert any(values)
    assert all(v is None or (v >= 10 and v % 5 == 0) for v in values)
    status, body = ask(
        trust["social-care"], "{ careRecipients { pseudonym } }", PLANNING, "commissioning"
    )
    assert status == 403
    assert "dsa-planning-area-statistics" in body["errors"][0]["message"]
