"""The consent API's ``dataUses`` and ``myRecords``: the citizen's own ledger entries and counts.

Real node applications (health, social care) on stores loaded through ingest, tokens from
a live identity server, the shipped agreements. Every answer is compared with what the
node's store holds, and Polar must refuse any pseudonym but the token's own.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from datatrust import _prepare
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings
from datatrust.trust import load_or_create_key, person_pseudonym
from datatrust.trust.identity._accounts import DEMO_CITIZEN_NHS_NUMBER
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

USES = (
    "query($p: ID, $since: DateTime) { dataUses(pseudonym: $p, since: $since) "
    "{ seq at node agency clientId purpose operation fields agreement policyVersion } }"
)
RECORDS = "{ myRecords { kind count } }"
RESEARCH = "{ patients(first: 1000) { pseudonym birthYear encounters { start } } }"
CARE = "{ careRecipients(first: 1000) { pseudonym careEpisodes { eventType } } }"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("trust")


@pytest.fixture(scope="module")
def identity(tmp_path_factory, data_dir):
    key = data_dir / "keys" / "pseudonym.key"
    with trust_identity(tmp_path_factory.mktemp("identity"), person_key_file=key) as running:
        yield running


@pytest.fixture(scope="module")
def nodes(data_dir, identity):
    sources = _prepare.write_demo_files(data_dir)
    clients = {}
    contexts = []
    for node_id in ("health", "social-care"):
        settings = load_settings(
            NodeSettings,
            environ={},
            node_id=node_id,
            agency=node_id,
            data_dir=data_dir,
            issuers=identity.issuers,
        )
        _prepare.prepare_demo_node(
            data_dir, node_id, settings.effective_database_url, sources[node_id]
        )
        context = app_client(create_node_app(settings))
        client = context.__enter__()
        client.db = settings.effective_database_url.removeprefix("sqlite:///")
        clients[node_id] = client
        contexts.append(context)
    try:
        yield clients
    finally:
        for context in contexts:
            context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def me(data_dir) -> str:
    key = load_or_create_key(data_dir / "keys" / "pseudonym.key")
    return person_pseudonym(key, DEMO_CITIZEN_NHS_NUMBER)


@pytest.fixture(scope="module")
def citizen(identity) -> str:
    return identity.person_token("citizen")


def call(node, token, query, variables=None):
    response = node.post(
        "/consent",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code, response.json()


def ask(node, identity, client, purpose, query):
    response = node.post(
        "/graphql", json={"query": query}, headers=identity.headers_for(client, purpose)
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def ledger_uses(db: str, pseudonym: str) -> list[int]:
    """The seqs of permitted entries naming ``pseudonym`` among their subjects, newest first."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT seq, subjects FROM audit_event WHERE outcome = 'permit' ORDER BY seq DESC"
        ).fetchall()
    return [seq for seq, subjects in rows if pseudonym in json.loads(subjects or "[]")]


def test_the_ledger_holds_trust_pseudonyms_even_when_the_recipient_got_the_agreements_form(
    nodes, identity, citizen, me
):
    health = nodes["health"]
    answer = ask(health, identity, "research-cli", "research", RESEARCH)
    given = {p["pseudonym"] for p in answer["patients"]}
    assert all(p.startswith("r-") for p in given)  # the agreement's own pseudonyms
    assert me not in given
    # ... and yet the ledger keys the entry by the trust pseudonym, the token's person claim.
    assert ledger_uses(health.db, me)
    status, body = call(health, citizen, USES)
    assert status == 200, body
    uses = body["data"]["dataUses"]
    assert [u["seq"] for u in uses] == ledger_uses(health.db, me)
    research = uses[0]
    assert (research["agency"], research["clientId"], research["purpose"]) == (
        "university",
        "research-cli",
        "research",
    )
    assert research["agreement"] == "dsa-research-cohort"
    assert "Person.birthYear" in research["fields"]
    assert research["node"] == "health"


def test_uses_come_newest_first_and_since_keeps_the_later_ones(nodes, identity, citizen, me):
    care = nodes["social-care"]
    ask(care, identity, "care-cli", "direct-care", CARE)
    at_care = call(care, citizen, USES)[1]["data"]["dataUses"]
    # Direct care returned others' care records; the demo citizen has none at social care,
    # so none of those entries is theirs.
    with sqlite3.connect(care.db) as connection:
        (someone,) = connection.execute(
            "SELECT pseudonym FROM care_episode WHERE pseudonym IS NOT NULL LIMIT 1"
        ).fetchone()
    assert ledger_uses(care.db, someone)
    assert at_care == []
    assert ledger_uses(care.db, me) == []
    health = nodes["health"]
    ask(health, identity, "care-cli", "direct-care", "{ patients(first: 1000) { gender } }")
    uses = call(health, citizen, USES)[1]["data"]["dataUses"]
    assert len(uses) >= 2
    assert [u["at"] for u in uses] == sorted((u["at"] for u in uses), reverse=True)
    assert uses[0]["purpose"] == "direct-care"
    later = call(health, citizen, USES, {"since": uses[0]["at"]})[1]["data"]["dataUses"]
    assert [u["seq"] for u in later] == [uses[0]["seq"]]


def test_a_citizen_naming_another_persons_pseudonym_is_refused_by_polar(
    nodes, identity, citizen, me
):
    health = nodes["health"]
    with sqlite3.connect(health.db) as connection:
        others = [
            row[0]
            for row in connection.execute(
                "SELECT pseudonym FROM person WHERE pseudonym != ? ORDER BY pseudonym LIMIT 3",
                (me,),
            )
        ]
    output_form = ask(health, identity, "research-cli", "research", RESEARCH)["patients"][0]
    for other in [*others, output_form["pseudonym"], me.upper(), f"{me} ", "p-" + "0" * 32]:
        _status, body = call(health, citizen, USES, {"p": other})
        assert body["data"] is None, other
        assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED", other
        assert "may not read the access log" in body["errors"][0]["message"]
    # Their own pseudonym named outright is them: allowed, and the same answer.
    assert (
        call(health, citizen, USES, {"p": me})[1]["data"]["dataUses"]
        == (call(health, citizen, USES)[1]["data"]["dataUses"])
    )


def test_staff_read_another_persons_log_only_as_their_own_agencys_dpo(nodes, identity, me):
    health = nodes["health"]
    council_dpo = identity.person_token("dpo")
    body = call(health, council_dpo, USES, {"p": me})[1]
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    health_dpo = identity.person_token("health-dpo")
    body = call(health, health_dpo, USES, {"p": me})[1]
    assert [u["seq"] for u in body["data"]["dataUses"]] == ledger_uses(health.db, me)
    researcher = identity.headers_for("research-cli", "research")["Authorization"].split()[1]
    body = call(health, researcher, USES, {"p": me})[1]
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_without_a_person_or_a_token_there_is_nothing_to_read(nodes, identity):
    health = nodes["health"]
    response = health.post("/consent", json={"query": USES})
    assert response.status_code == 401
    analyst = identity.token("service-planning")
    body = call(health, analyst, RECORDS)[1]
    assert body["data"] is None
    assert "sign in as the person" in body["errors"][0]["message"]


def test_reading_ones_uses_is_audited_but_names_no_subject(nodes, citizen, me):
    health = nodes["health"]
    before = ledger_uses(health.db, me)
    call(health, citizen, USES)
    call(health, citizen, RECORDS)
    with sqlite3.connect(health.db) as connection:
        rows = connection.execute(
            "SELECT requester, fields, subjects, outcome FROM audit_event ORDER BY seq DESC LIMIT 2"
        ).fetchall()
    assert "ConsentQuery.myRecords" in json.loads(rows[0][1])
    assert "ConsentQuery.dataUses" in json.loads(rows[1][1])
    assert all(r[0].startswith("public/") for r in rows)
    assert all(json.loads(r[2]) == [] and r[3] == "permit" for r in rows)
    assert ledger_uses(health.db, me) == before


def test_my_records_counts_what_each_store_holds_about_the_citizen(nodes, citizen, me):
    for node_id, node in nodes.items():
        with sqlite3.connect(node.db) as connection:
            expected = {
                kind: connection.execute(
                    f"SELECT count(*) FROM {table} WHERE pseudonym = ?",  # noqa: S608 - fixed
                    (me,),
                ).fetchone()[0]
                for kind, table in (
                    ("person", "person"),
                    ("encounter", "encounter"),
                    ("care-episode", "care_episode"),
                )
            }
        status, body = call(node, citizen, RECORDS)
        assert status == 200, body
        got = {r["kind"]: r["count"] for r in body["data"]["myRecords"]}
        assert got == {k: v for k, v in expected.items() if v}, node_id
    assert {r["kind"] for r in call(nodes["health"], citizen, RECORDS)[1]["data"]["myRecords"]} >= {
        "encounter"
    }


def test_polar_lets_only_the_person_count_their_records():
    from datatrust.policies import Requester
    from datatrust.policies._platform import PersonRecordsAt, PlatformAuthorizer

    rules = PlatformAuthorizer()
    mine = Requester(subject="c", agency="public", roles=(), person="p-" + "a" * 32)
    dpo = Requester(subject="d", agency="health", roles=("dpo",))
    assert rules.is_allowed(mine, "count", PersonRecordsAt("p-" + "a" * 32, "health"))
    assert not rules.is_allowed(mine, "count", PersonRecordsAt("p-" + "b" * 32, "health"))
    assert not rules.is_allowed(dpo, "count", PersonRecordsAt("p-" + "a" * 32, "health"))
    assert not rules.is_allowed(mine, "read", PersonRecordsAt("p-" + "a" * 32, "health"))
