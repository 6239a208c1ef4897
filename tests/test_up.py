"""``datatrust up`` as a user runs it: a subprocess on free loopback ports."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from datatrust._demo_trust import EXAMPLE_PURPOSE, EXAMPLE_QUERY, example_curl
from datatrust._ingest_cli import LIVE_TOPICS
from datatrust.settings import GATEWAY_AUDIENCE
from tests._trust import Trust, datatrust_env, datatrust_token, post, token, tool_tls

pytestmark = pytest.mark.slow

TABLES = (
    "sensor",
    "reading",
    "access_point",
    "wifi_session",
    "person",
    "encounter",
    "care_episode",
)


def row_counts(data_dir: Path) -> dict[str, dict[str, int]]:
    counts = {}
    for node in ("council", "health", "social-care"):
        with sqlite3.connect(data_dir / f"{node}.db") as db:
            counts[node] = {
                t: db.execute(f"select count(*) from {t}").fetchone()[0]  # noqa: S608
                for t in TABLES
            }
    return counts


@pytest.fixture(scope="module")
def trust(tmp_path_factory):
    running = Trust(tmp_path_factory.mktemp("trust"))
    running.token = token(running, "service-planning research")
    # (purpose, client) -> token, for the demo clients' tests; analyst-cli's allows both.
    running.tokens = {("service-planning", "analyst-cli"): running.token}
    yield running
    if running.process.poll() is None:
        running.stop()


def test_the_printed_example_query_gets_fields_from_all_three_nodes(trust):
    assert trust.curl == example_curl(trust.run["gateway"], str(trust.data_dir))
    result = subprocess.run(
        ["bash", "-c", trust.curl],
        capture_output=True,
        text=True,
        check=True,
        env=datatrust_env(),
    )
    body = json.loads(result.stdout)
    assert "errors" not in body
    areas = body["data"]["areas"]
    assert len(areas) == 5
    assert all(a["code"].startswith("E01") and a["name"].startswith("Coventry ") for a in areas)
    assert any(a["footfall"] for a in areas), "council footfall"
    assert any(a["airQuality"] and a["airQuality"]["pm25Mean"] for a in areas), "council air"
    assert any(a["encounterCount"] for a in areas), "health encounters"
    assert any(a["openCareEpisodes"] for a in areas), "social-care episodes"


def test_run_json_names_the_gateway_and_every_node(trust):
    base = trust.base_port
    live = trust.run.pop("mqtt", None)  # present when the local broker answers
    assert live in (None, {"broker": "mqtt://127.0.0.1:1883", "topics": list(LIVE_TOPICS)})
    assert trust.run == {
        "identity": f"http://127.0.0.1:{base + 4}",
        "portal": f"http://127.0.0.1:{base + 5}",
        "console": f"http://127.0.0.1:{base + 5}/console/",
        "explorer": f"http://127.0.0.1:{base + 5}/explorer/",
        "gateway": f"http://127.0.0.1:{base}/graphql",
        "nodes": {
            "council": f"https://127.0.0.1:{base + 1}/graphql",
            "health": f"https://127.0.0.1:{base + 2}/graphql",
            "social-care": f"https://127.0.0.1:{base + 3}/graphql",
        },
        "tls": {
            "ca": str(trust.data_dir / "tls" / "ca.pem"),
            "cert": str(trust.data_dir / "tls" / "tool.pem"),
            "key": str(trust.data_dir / "tls" / "tool.key"),
        },
    }


def test_status_shows_every_part_ready(trust):
    result = subprocess.run(
        [sys.executable, "-m", "datatrust", "status", "--data-dir", str(trust.data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ready") == 4  # the gateway and three nodes


DATA_QUERY = "{ areas(first: 2) { code footfall } }"
ENTITIES_QUERY = (
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { code %s } } }"
)
ENTITY_FIELD = {
    "health": "encounterCount",
    "social-care": "openCareEpisodes",
    "council": "footfall",
}
REFUSALS = [
    (None, 400, "PURPOSE_MISSING", "no purpose declared"),
    ("marketing", 400, "PURPOSE_UNKNOWN", "unknown purpose 'marketing'"),
    (
        "research",
        403,
        "ACCESS_DENIED",
        "no agreement in force lets agency 'council' with these roles use data held at node",
    ),
]


@pytest.mark.parametrize(("purpose", "status", "code", "message"), REFUSALS)
def test_the_gateway_refuses_with_a_clear_error_and_no_data(trust, purpose, status, code, message):
    response = post(trust.run["gateway"], DATA_QUERY, purpose, bearer=trust.token)
    assert response.status_code == status
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code
    assert message in body["errors"][0]["message"]


@pytest.mark.parametrize("node", ["council", "health", "social-care"])
@pytest.mark.parametrize(("purpose", "status", "code", "message"), REFUSALS)
def test_each_node_refuses_a_direct_entities_call_too(trust, node, purpose, status, code, message):
    query = ENTITIES_QUERY % ENTITY_FIELD[node]
    representations = [{"__typename": "Area", "code": "E01009522"}]
    response = post(
        trust.run["nodes"][node],
        query,
        purpose,
        {"r": representations},
        bearer=trust.token,
        verify=tool_tls(trust.run),
    )
    assert response.status_code == status
    body = response.json()
    assert body == {"data": None, "errors": body["errors"]}
    assert body["errors"][0]["extensions"]["code"] == code
    assert message in body["errors"][0]["message"]


@pytest.mark.parametrize("part", ["gateway", "council", "health", "social-care"])
def test_every_part_refuses_a_request_without_a_token_with_401(trust, part):
    url = trust.run["gateway"] if part == "gateway" else trust.run["nodes"][part]
    query = DATA_QUERY if part in ("gateway", "council") else ENTITIES_QUERY % ENTITY_FIELD[part]
    response = post(url, query, "service-planning", {"r": []}, verify=tool_tls(trust.run))
    assert response.status_code == 401
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("node", ["council", "health", "social-care"])
def test_a_node_serves_only_mutual_tls_clients(trust, node):
    ca_only = ssl.create_default_context(cafile=trust.run["tls"]["ca"])
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
        post(
            trust.run["nodes"][node],
            DATA_QUERY,
            "service-planning",
            bearer=trust.token,
            verify=ca_only,
        )


def forged_tokens(trust: Trust) -> dict[str, str]:
    """Tokens an attacker can make without the issuer's key, each a known attack."""
    now = int(time.time())
    claims = {
        "iss": trust.run["identity"],
        "sub": "analyst-cli",
        "client_id": "analyst-cli",
        "aud": [GATEWAY_AUDIENCE],
        "exp": now + 300,
        "iat": now,
        "jti": "forged",
        "agency": "council",
        "roles": ["analyst"],
        "purposes": ["service-planning"],
    }
    stranger = ECKey.generate_key("P-256", auto_kid=True)

    def signed(header: dict) -> str:
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", **header}, claims, stranger)

    def unsigned(header: dict) -> str:
        def part(data: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        return f"{part(header)}.{part(claims)}."

    return {
        "malformed": "not-a-token",
        "alg none": unsigned({"alg": "none", "typ": "at+jwt", "kid": "k1"}),
        "unknown key": signed({"kid": stranger.kid}),
        "jku header": signed({"kid": stranger.kid, "jku": "https://attacker.example/jwks"}),
        "kid with path characters": signed({"kid": "../../keys/signing"}),
    }


@pytest.mark.parametrize(
    "kind", ["malformed", "alg none", "unknown key", "jku header", "kid with path characters"]
)
def test_the_gateway_refuses_a_forged_token_and_audits_it(trust, kind):
    ledger = trust.data_dir / "gateway.db"
    with sqlite3.connect(ledger) as db:
        before = db.execute("select count(*) from audit_event").fetchone()[0]
    response = post(
        trust.run["gateway"], DATA_QUERY, "service-planning", bearer=forged_tokens(trust)[kind]
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    with sqlite3.connect(ledger) as db:
        rows = db.execute("select outcome, code from audit_event order by seq").fetchall()[before:]
    assert rows == [("deny", "UNAUTHENTICATED")]


def test_a_token_is_refused_for_a_purpose_it_does_not_allow(trust):
    research_only = token(trust, "research")
    response = post(trust.run["gateway"], DATA_QUERY, "service-planning", bearer=research_only)
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == (
        "access denied: your access token does not allow purpose 'service-planning' "
        "(it allows: research)"
    )


def test_a_node_answers_a_direct_entities_call_for_service_planning(trust):
    representations = [{"__typename": "Area", "code": "E01009522"}]
    response = post(
        trust.run["nodes"]["health"],
        ENTITIES_QUERY % "encounterCount",
        "service-planning",
        {"r": representations},
        bearer=trust.token,
        verify=tool_tls(trust.run),
    )
    assert response.status_code == 200
    (entity,) = response.json()["data"]["_entities"]
    assert entity["code"] == "E01009522"
    assert isinstance(entity["encounterCount"], int)


def test_a_request_id_is_in_the_audit_entry_of_the_gateway_and_every_node_it_asked(trust):
    request_id = f"test-up:{os.getpid()}.{time.monotonic_ns()}"
    response = httpx.post(
        trust.run["gateway"],
        json={"query": EXAMPLE_QUERY},
        headers={
            "Purpose": EXAMPLE_PURPOSE,
            "Authorization": f"Bearer {trust.token}",
            "X-Request-Id": request_id,
        },
        timeout=30,
    )
    assert (response.status_code, "errors" in response.json()) == (200, False)
    assert response.headers["x-request-id"] == request_id
    recorded = {}
    for part in ("gateway", "council", "health", "social-care"):
        with sqlite3.connect(trust.data_dir / f"{part}.db") as db:
            recorded[part] = db.execute(
                "select outcome, purpose from audit_event where request_id = ?", (request_id,)
            ).fetchall()
    # One entry per call: the council is called twice (the areas' keys, then its footfall
    # and air quality alongside the other nodes' counts: the gateway's keys-first plan).
    calls = {"gateway": 1, "council": 2, "health": 1, "social-care": 1}
    assert recorded == {part: [("permit", EXAMPLE_PURPOSE)] * n for part, n in calls.items()}


def test_introspection_at_the_gateway_needs_a_token_and_a_purpose_it_allows(trust):
    query = '{ __type(name: "Area") { name } }'
    ledger = trust.data_dir / "gateway.db"
    with sqlite3.connect(ledger) as db:
        before = db.execute("select count(*) from audit_event").fetchone()[0]
    answers = [
        post(trust.run["gateway"], query, "service-planning"),
        post(trust.run["gateway"], query, "service-planning", bearer=token(trust, "research")),
        post(trust.run["gateway"], query, "service-planning", bearer=trust.token),
    ]
    assert [(a.status_code, a.json()["data"]) for a in answers] == [
        (401, None),
        (403, None),
        (200, {"__type": {"name": "Area"}}),
    ]
    with sqlite3.connect(ledger) as db:
        rows = db.execute("select outcome, code, fields from audit_event order by seq").fetchall()
    assert rows[before:] == [
        ("deny", "UNAUTHENTICATED", '["Query.__type"]'),
        ("deny", "ACCESS_DENIED", '["Query.__type"]'),
        ("permit", "OK", '["Query.__type"]'),
    ]


POLICY_V1 = "v1 (agreements 2026-11-26, purposes 2026-11-01)"


def test_every_part_names_policy_version_1_published_on_first_run(trust):
    nodes = {
        node: httpx.get(url.replace("/graphql", "/readyz"), verify=tool_tls(trust.run)).json()
        for node, url in trust.run["nodes"].items()
    }
    assert nodes == {
        node: {"status": "ready", "node": node, "policy_version": POLICY_V1, "policy_problem": None}
        for node in ("council", "health", "social-care")
    }
    gateway = httpx.get(trust.run["gateway"].replace("/graphql", "/readyz")).json()
    assert (gateway["status"], gateway["policy_version"]) == ("ready", POLICY_V1)
    manifest = json.loads(
        (trust.data_dir / "policies" / "versions" / "1" / "manifest.json").read_text()
    )
    assert (manifest["kind"], manifest["author"]) == ("initial", "datatrust init")


def ask(trust: Trust, part: str, query: str, purpose: str, client: str, variables=None) -> dict:
    """The JSON answer of ``part`` (the gateway or a node, directly) to a demo client's query."""
    url = trust.run["gateway"] if part == "gateway" else trust.run["nodes"][part]
    if (purpose, client) not in trust.tokens:
        trust.tokens[purpose, client] = token(trust, purpose, client)
    response = post(
        url,
        query,
        purpose,
        variables,
        bearer=trust.tokens[purpose, client],
        verify=tool_tls(trust.run),
    )
    body = response.json()
    body["status"] = response.status_code
    return body


def research_cohort(trust: Trust, node: str) -> set[str]:
    """Trust pseudonyms of those the research agreement lets through, computed in SQL."""
    table = "person" if node == "health" else "care_episode"
    with sqlite3.connect(trust.data_dir / f"{node}.db") as db:
        rows = db.execute(
            f"SELECT DISTINCT t.pseudonym FROM {table} t "  # noqa: S608 - fixed names
            "JOIN consent c ON c.pseudonym = t.pseudonym AND c.purpose_id = 'research' "
            "AND c.state = 'ConsentGiven' "
            "WHERE t.pseudonym NOT IN (SELECT pseudonym FROM national_opt_out)"
        )
        return {row[0] for row in rows}


def everyone(trust: Trust, node: str) -> set[str]:
    table = "person" if node == "health" else "care_episode"
    with sqlite3.connect(trust.data_dir / f"{node}.db") as db:
        rows = db.execute(
            f"SELECT DISTINCT pseudonym FROM {table} WHERE pseudonym IS NOT NULL"  # noqa: S608
        )
        return {row[0] for row in rows}


RESEARCH_JOIN = (
    "{ patients(first: 1000) { pseudonym birthYear areaCode careEpisodes { serviceType start } } }"
)
CARE_RECIPIENTS = "{ careRecipients(first: 1000) { pseudonym careEpisodes { start } } }"


@pytest.fixture(scope="module")
def research(trust) -> dict[str, list[dict]]:
    """The research answers: the join at the gateway, and each node's own people directly."""
    gateway = ask(trust, "gateway", RESEARCH_JOIN, "research", "research-cli")
    health = ask(
        trust,
        "health",
        RESEARCH_JOIN.replace(" careEpisodes { serviceType start }", ""),
        "research",
        "research-cli",
    )
    care = ask(trust, "social-care", CARE_RECIPIENTS, "research", "research-cli")
    for body in (gateway, health, care):
        assert (body["status"], body.get("errors")) == (200, None), body
    return {
        "gateway": gateway["data"]["patients"],
        "health": health["data"]["patients"],
        "social-care": care["data"]["careRecipients"],
    }


def test_research_through_the_gateway_gets_the_consented_cohort_pseudonymised(trust, research):
    people = research["gateway"]
    cohort = research_cohort(trust, "health")
    assert 0 < len(people) == len(cohort) < len(everyone(trust, "health"))
    assert all(p["pseudonym"].startswith("r-") for p in people)  # never the trust pseudonym
    assert not {p["pseudonym"] for p in people} & everyone(trust, "health")
    assert all(p["areaCode"] is None for p in people)  # masked at the node
    assert all(isinstance(p["birthYear"], int) for p in people)


def test_research_at_each_node_directly_gets_the_same_people_as_through_the_gateway(
    trust, research
):
    assert research["health"] == [
        {k: v for k, v in p.items() if k != "careEpisodes"} for p in research["gateway"]
    ]
    recipients = research["social-care"]
    assert 0 < len(recipients) == len(research_cohort(trust, "social-care"))
    assert all(p["pseudonym"].startswith("r-") for p in recipients)


def test_the_gateway_joins_care_episodes_only_of_people_consented_at_social_care(trust, research):
    consented_there = {p["pseudonym"]: p for p in research["social-care"]}
    joined = [p for p in research["gateway"] if p["careEpisodes"]]
    assert joined, "some of the cohort have care episodes"
    for person in joined:
        assert person["pseudonym"] in consented_there
        starts = [e["start"] for e in consented_there[person["pseudonym"]]["careEpisodes"]]
        assert [e["start"] for e in person["careEpisodes"]] == starts
    assert any(e["serviceType"] for p in joined for e in p["careEpisodes"])


def is_disclosure_controlled(count: int | None) -> bool:
    """Suppressed (null), zero, or at least the minimum cell size and rounded to 5."""
    return count is None or count == 0 or (count >= 10 and count % 5 == 0)


def test_service_planning_gets_suppressed_and_rounded_counts_through_the_gateway(trust):
    query = "{ areas(first: 1000) { code encounterCount openCareEpisodes } }"
    body = ask(trust, "gateway", query, "service-planning", "analyst-cli")
    assert (body["status"], body.get("errors")) == (200, None), body
    counts = [a[f] for a in body["data"]["areas"] for f in ("encounterCount", "openCareEpisodes")]
    assert all(is_disclosure_controlled(c) for c in counts), counts
    assert None in counts, "small cells are suppressed, not shown"
    assert any(c and c >= 10 for c in counts)


@pytest.mark.parametrize(
    ("node", "field"), [("health", "encounterCount"), ("social-care", "openCareEpisodes")]
)
def test_service_planning_gets_suppressed_and_rounded_counts_at_each_node(trust, node, field):
    codes = [
        a["code"]
        for a in ask(
            trust, "gateway", "{ areas(first: 1000) { code } }", "service-planning", "analyst-cli"
        )["data"]["areas"]
    ]
    body = ask(
        trust,
        node,
        ENTITIES_QUERY % field,
        "service-planning",
        "analyst-cli",
        {"r": [{"__typename": "Area", "code": c} for c in codes]},
    )
    assert body["status"] == 200, body
    counts = [e[field] for e in body["data"]["_entities"]]
    assert all(is_disclosure_controlled(c) for c in counts), counts
    assert body["extensions"]["disclosureControl"]["suppressedCells"] == counts.count(None)


def test_service_planning_cannot_read_records(trust):
    body = ask(trust, "gateway", "{ patients { birthYear } }", "service-planning", "analyst-cli")
    assert (body["status"], body["data"]) == (403, None)
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_direct_care_gets_identifiable_records_through_the_gateway_and_at_the_node(trust):
    query = "{ patients(first: 1000) { pseudonym areaCode careEpisodes { start end } } }"
    gateway = ask(trust, "gateway", query, "direct-care", "care-cli")
    node = ask(
        trust, "health", query.replace(" careEpisodes { start end }", ""), "direct-care", "care-cli"
    )
    assert (gateway["status"], gateway.get("errors"), node["status"]) == (200, None, 200), gateway
    people = gateway["data"]["patients"]
    assert {p["pseudonym"] for p in people} == everyone(trust, "health")  # no consent filter
    assert any(p["areaCode"] for p in people)
    assert node["data"]["patients"] == [
        {"pseudonym": p["pseudonym"], "areaCode": p["areaCode"]} for p in people
    ]
    with_care = {p["pseudonym"] for p in people if p["careEpisodes"]}
    assert with_care == everyone(trust, "social-care") & everyone(trust, "health")


def safeguarding_token(trust: Trust) -> str:
    """A token for safeguarding from a social-care system registered with the live identity server.

    No demo client may ask for safeguarding; one is registered here, as an operator would,
    so the refusal tested is the nodes' and the gateway's, not the identity server's.
    """
    from datatrust._identity_cli import _identity_settings
    from datatrust.settings import IdentityServerSettings, load_settings
    from datatrust.trust.identity import IdentityService

    config = trust.data_dir / "config" / "identity.toml"
    settings = load_settings(IdentityServerSettings, toml_path=config, environ={})
    secret = IdentityService(_identity_settings(settings)).register_client(
        "safeguarding-team",
        agency="social-care",
        purposes=["safeguarding"],
        roles=["safeguarding-lead"],
    )
    response = httpx.post(
        f"{trust.run['identity']}/token",
        data={"grant_type": "client_credentials", "scope": "safeguarding"},
        auth=("safeguarding-team", secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.mark.parametrize("part", ["gateway", "social-care"])
def test_safeguarding_is_refused_while_its_agreement_is_a_draft(trust, part):
    if ("safeguarding", "safeguarding-team") not in trust.tokens:
        trust.tokens["safeguarding", "safeguarding-team"] = safeguarding_token(trust)
    url = trust.run["gateway"] if part == "gateway" else trust.run["nodes"][part]
    query = "{ careRecipients(first: 5) { pseudonym careEpisodes { serviceType } } }"
    response = post(
        url,
        query,
        "safeguarding",
        bearer=trust.tokens["safeguarding", "safeguarding-team"],
        verify=tool_tls(trust.run),
    )
    assert response.status_code == 403
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"] | {"reasons": None} == {
        "code": "ACCESS_DENIED",
        "purpose": "safeguarding",
        "node": part,
        "policy_version": POLICY_V1,
        "reasons": None,
    }
    assert body["errors"][0]["message"] == (
        "access denied: agreement dsa-safeguarding-referrals would apply but is draft, not "
        "active; no agreement in force lets agency 'social-care' with these roles use "
        f"data held at node '{part}' for purpose 'safeguarding' (policy {POLICY_V1})"
    )


def test_datatrust_token_refuses_a_demo_client_a_purpose_it_may_not_ask_for(trust):
    refused = datatrust_token(trust, "service-planning", "research-cli")
    assert refused.returncode == 2
    assert (
        "the identity server refused a token for purpose 'service-planning' to client "
        "'research-cli': client 'research-cli' may not ask for service-planning; it may ask "
        "for: research"
    ) in " ".join(refused.stderr.split())


def test_sigint_stops_every_process_and_a_second_up_duplicates_nothing(trust):
    children = trust.children()
    # Three nodes, the gateway, the identity server and the citizen portal, plus the MQTT
    # subscriber and the demo feed when the broker answers.
    assert len(children) == (8 if "Live feed on" in "".join(trust.output) else 6), children
    assert trust.stop(signal.SIGINT) == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"child {pid} still running"
    assert not (trust.data_dir / "run.json").exists()

    before = row_counts(trust.data_dir)
    assert all(before["council"][t] for t in ("sensor", "reading", "access_point", "wifi_session"))
    assert before["health"]["person"]
    assert before["health"]["encounter"]
    assert before["social-care"]["care_episode"]
    again = Trust(trust.data_dir)
    try:
        assert row_counts(trust.data_dir) == before
    finally:
        assert again.stop(signal.SIGTERM) == 0


def test_a_port_already_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "datatrust",
                "up",
                "--data-dir",
                str(tmp_path),
                "--base-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use, and the gateway needs it" in (
        " ".join(result.stderr.split())
    )
