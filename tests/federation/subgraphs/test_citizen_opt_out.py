"""registerOptOut / removeOptOut at the nodes' /consent API, and the row filter that honours them.

Real health and social-care node applications on stores loaded through ingest, real
tokens from a live identity server (citizens through the authorization-code flow), the
shipped Polar rules and demo agreements. Whether someone is in a research answer is read
from the answer itself: the node hands out each person's pseudonym under the research
agreement, which the test computes with the trust's key.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime

import pytest

from datatrust.adapters import is_valid_nhs_number
from datatrust.errors import AccessDenied
from datatrust.federation.subgraphs._pseudonyms import PseudonymCodec
from datatrust.node import node_keys
from datatrust.policies import Requester
from datatrust.policies._platform import CitizenOptOutOf, PlatformAuthorizer
from datatrust.store import create_store_engine
from datatrust.trust import (
    citizen_opt_out,
    load_opt_out_list,
    load_or_create_key,
    person_pseudonym,
    register_citizen_opt_out,
)
from datatrust.trust.identity._accounts import DEMO_CITIZEN_NHS_NUMBER
from tests.policies.test_purposes_at_nodes import _node, ask, db
from tests.trust_identity import trust_identity

RESEARCH_AGREEMENT = "dsa-research-cohort"
READ = "{ optOut { optedOut since changed history { action actor at source } } }"
REGISTER = "mutation { registerOptOut { optedOut since changed history { action actor } } }"
REMOVE = "mutation { removeOptOut { optedOut since changed history { action actor } } }"
COHORT = {
    "health": ("{ patients(first: 1000) { pseudonym } }", "patients"),
    "social-care": ("{ careRecipients(first: 1000) { pseudonym } }", "careRecipients"),
}


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
    from datatrust import _prepare

    sources = _prepare.write_demo_files(data_dir)
    with (
        _node(data_dir, "health", sources, identity) as health,
        _node(data_dir, "social-care", sources, identity) as care,
    ):
        yield {"health": health, "social-care": care}


def pseudonym_of(trust, nhs_number: str) -> str:
    key = load_or_create_key(trust["health"].settings.data_dir / "keys" / "pseudonym.key")
    return person_pseudonym(key, nhs_number)


def research_pseudonyms(trust, node_id: str) -> set[str]:
    """The research agreement's pseudonyms in the node's answer to a real research query."""
    query, field = COHORT[node_id]
    status, body = ask(trust[node_id], query, "research-cli", "research")
    assert (status, body.get("errors")) == (200, None), body
    return {person["pseudonym"] for person in body["data"][field]}


def as_research_sees(trust, pseudonym: str) -> str:
    codec = PseudonymCodec(node_keys(trust["health"].settings.data_dir).pseudonym_key)
    return codec.encode(pseudonym, RESEARCH_AGREEMENT)


def call(node, token: str, query: str, variables: dict | None = None) -> tuple[int, dict]:
    response = node.post(
        "/consent",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code, response.json()


def citizen_rows(node, pseudonym: str) -> tuple[list, list]:
    """What the node's store holds: (current opt-out rows, history rows) for the person."""
    with db(node) as connection:
        current = connection.execute(
            "SELECT pseudonym FROM citizen_opt_out WHERE pseudonym = ?", (pseudonym,)
        ).fetchall()
        history = connection.execute(
            "SELECT action FROM citizen_opt_out_event WHERE pseudonym = ? ORDER BY id",
            (pseudonym,),
        ).fetchall()
    return current, [row[0] for row in history]


def national_list(node) -> list[str]:
    with db(node) as connection:
        return [row[0] for row in connection.execute("SELECT pseudonym FROM national_opt_out")]


@pytest.fixture(scope="module")
def both(trust, identity):
    """A second citizen in the research cohort at both nodes, signed in as themself."""
    with db(trust["health"]) as health, db(trust["social-care"]) as care:
        at_health = _cohort(health, "person")
        at_care = _cohort(care, "care_episode")
    number = next(
        number
        for number in (f"999{n:07d}" for n in range(0, 200_000))
        if is_valid_nhs_number(number)
        and number != DEMO_CITIZEN_NHS_NUMBER
        and pseudonym_of(trust, number) in at_health & at_care
    )
    service = identity.live.service
    identity.live.accounts.passwords["both-nodes"] = service.add_person(
        "both-nodes", name="Bo Both", agency="public", roles=["citizen"], nhs_number=number
    )
    return pseudonym_of(trust, number), identity.person_token("both-nodes")


def _cohort(connection: sqlite3.Connection, table: str) -> set[str]:
    rows = connection.execute(
        f"SELECT DISTINCT t.pseudonym FROM {table} t "  # noqa: S608 - fixed names
        "JOIN consent c ON c.pseudonym = t.pseudonym AND c.purpose_id = 'research' "
        "AND c.state = 'ConsentGiven' "
        "WHERE t.pseudonym NOT IN (SELECT pseudonym FROM national_opt_out) "
        "AND t.pseudonym NOT IN (SELECT pseudonym FROM citizen_opt_out)"
    )
    return {row[0] for row in rows}


# -- the citizen's own record, and its history ------------------------------------------------


def test_a_citizen_registers_and_removes_their_own_opt_out_and_the_next_query_honours_each(
    trust, identity
):
    health = trust["health"]
    me = pseudonym_of(trust, DEMO_CITIZEN_NHS_NUMBER)
    mine = as_research_sees(trust, me)
    token = identity.person_token("citizen")
    assert mine in research_pseudonyms(trust, "health")  # consented, not opted out

    status, body = call(health, token, READ)
    assert (status, body["data"]["optOut"]) == (
        200,
        {"optedOut": False, "since": None, "changed": False, "history": []},
    )

    status, body = call(health, token, REGISTER)
    answer = body["data"]["registerOptOut"]
    assert (status, answer["optedOut"], answer["changed"]) == (200, True, True)
    assert [h["action"] for h in answer["history"]] == ["OptOutRegistered"]
    assert answer["history"][0]["actor"].startswith("public/")
    assert mine not in research_pseudonyms(trust, "health")  # the very next query

    # Registering again changes nothing and adds no history: a retry is safe.
    status, body = call(health, token, REGISTER)
    assert body["data"]["registerOptOut"]["changed"] is False
    assert citizen_rows(health, me) == ([(me,)], ["OptOutRegistered"])

    status, body = call(health, token, REMOVE)
    answer = body["data"]["removeOptOut"]
    assert (answer["optedOut"], answer["changed"], answer["since"]) == (False, True, None)
    assert [h["action"] for h in answer["history"]] == ["OptOutRegistered", "OptOutRemoved"]
    assert mine in research_pseudonyms(trust, "health")  # back, as they still consent

    status, body = call(health, token, REMOVE)
    assert body["data"]["removeOptOut"]["changed"] is False
    assert citizen_rows(health, me) == ([], ["OptOutRegistered", "OptOutRemoved"])
    status, body = call(health, token, READ)
    history = body["data"]["optOut"]["history"]
    assert [h["action"] for h in history] == ["OptOutRegistered", "OptOutRemoved"]
    assert all(h["source"] == "graphql via portal" for h in history)


def test_the_ledger_records_each_opt_out_change_as_a_permitted_request(trust, identity):
    health = trust["health"]
    call(health, identity.person_token("citizen"), REGISTER)
    call(health, identity.person_token("citizen"), REMOVE)
    with db(health) as connection:
        rows = connection.execute(
            "SELECT fields, outcome FROM audit_event WHERE fields LIKE '%OptOut%' "
            "ORDER BY seq DESC LIMIT 2"
        ).fetchall()
    assert [(("removeOptOut" in f), o) for f, o in rows] == [(True, "permit"), (False, "permit")]


@pytest.mark.parametrize("argument", ["pseudonym", "person", "subject"])
def test_another_persons_id_is_never_accepted_even_if_sent(trust, identity, argument):
    health = trust["health"]
    with db(health) as connection:
        other = sorted(_cohort(connection, "person"))[0]
    token = identity.person_token("citizen")
    for mutation in ("registerOptOut", "removeOptOut"):
        query = f"mutation($p: ID) {{ {mutation}({argument}: $p) {{ optedOut }} }}"
        _, body = call(health, token, query, {"p": other})
        assert body.get("data") is None
        assert body["errors"][0]["message"] == (
            f"Unknown argument '{argument}' on field 'ConsentMutation.{mutation}'."
        )
    assert citizen_rows(health, other) == ([], [])


def test_staff_and_systems_cannot_register_or_remove_anyones_opt_out(trust, identity):
    health = trust["health"]
    for token in (
        identity.person_token("health-dpo"),  # a DPO of the very node: still not the person
        identity.live.client_credentials(client="research-cli", scope="research")["access_token"],
    ):
        _, body = call(health, token, REGISTER)
        assert body.get("data") is None, body
        assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
        assert "only the person themself may register their opt-out" in body["errors"][0]["message"]
    with db(health) as connection:
        assert connection.execute("SELECT count(*) FROM citizen_opt_out").fetchone() == (0,)


def test_polar_lets_only_the_person_themself_read_register_or_remove_it() -> None:
    rules = PlatformAuthorizer()
    me = Requester(subject="u-1", agency="public", person="p-" + "1" * 32, client_id="portal")
    dpo = Requester(subject="u-2", agency="health", roles=("dpo",), client_id="console")
    mine = CitizenOptOutOf("p-" + "1" * 32, "health")
    theirs = CitizenOptOutOf("p-" + "2" * 32, "health")
    for action in ("read", "register", "remove"):
        assert rules.is_allowed(me, action, mine) is True
        assert rules.is_allowed(me, action, theirs) is False
        assert rules.is_allowed(dpo, action, mine) is False
    with pytest.raises(AccessDenied, match="only the person themself may register their opt-out"):
        rules.authorize(me, "register", theirs)


# -- the national list and the citizen's own choice -------------------------------------------


def test_a_reload_of_the_national_list_keeps_the_citizens_own_choice(trust, identity):
    health = trust["health"]
    engine = create_store_engine(health.settings.effective_database_url)
    me = pseudonym_of(trust, DEMO_CITIZEN_NHS_NUMBER)
    mine = as_research_sees(trust, me)
    token = identity.person_token("citizen")
    listed = national_list(health)
    assert me not in listed
    try:
        call(health, token, REGISTER)
        # The NHS's next list does not name them (they opted out here, not nationally).
        load = load_opt_out_list(
            engine, listed, checked_on=date.today(), source="test: next NHS list"
        )
        assert (load.added, load.removed) == (0, 0)
        assert citizen_opt_out(engine, me).is_opted_out is True
        assert mine not in research_pseudonyms(trust, "health")

        # Later they are on the national list too; removing their own leaves that in force.
        load_opt_out_list(engine, [*listed, me], checked_on=date.today(), source="test: NHS")
        call(health, token, REMOVE)
        assert mine not in research_pseudonyms(trust, "health")
        load_opt_out_list(engine, listed, checked_on=date.today(), source="test: NHS again")
        assert mine in research_pseudonyms(trust, "health")
    finally:
        engine.dispose()


def test_a_citizen_opt_out_applies_only_to_agreements_the_national_opt_out_applies_to(trust):
    """Direct care has no opt-out filter, so an opt-out never hides a patient from their care."""
    health = trust["health"]
    engine = create_store_engine(health.settings.effective_database_url)
    me = pseudonym_of(trust, DEMO_CITIZEN_NHS_NUMBER)
    try:
        register_citizen_opt_out(engine, me, actor="test", source="test", now=datetime.now(UTC))
        status, body = ask(health, COHORT["health"][0], "care-cli", "direct-care")
        assert (status, body.get("errors")) == (200, None), body
        assert me in {p["pseudonym"] for p in body["data"]["patients"]}
        assert as_research_sees(trust, me) not in research_pseudonyms(trust, "health")
    finally:
        from datatrust.trust import remove_citizen_opt_out

        remove_citizen_opt_out(engine, me, actor="test", source="test")
        engine.dispose()


# -- every node that applies the filter -------------------------------------------------------


def test_the_opt_out_is_held_per_node_and_each_node_applies_its_own(trust, both):
    person, token = both
    seen = as_research_sees(trust, person)
    assert all(seen in research_pseudonyms(trust, n) for n in ("health", "social-care"))

    _, body = call(trust["health"], token, REGISTER)
    assert body["data"]["registerOptOut"]["optedOut"] is True
    assert seen not in research_pseudonyms(trust, "health")
    # Social care applies only what it holds: the portal registers at every node for this.
    assert seen in research_pseudonyms(trust, "social-care")

    _, body = call(trust["social-care"], token, REGISTER)
    assert body["data"]["registerOptOut"]["optedOut"] is True
    assert all(seen not in research_pseudonyms(trust, n) for n in ("health", "social-care"))

    for node_id in ("health", "social-care"):
        _, body = call(trust[node_id], token, REMOVE)
        assert body["data"]["removeOptOut"]["changed"] is True
    assert all(seen in research_pseudonyms(trust, n) for n in ("health", "social-care"))
