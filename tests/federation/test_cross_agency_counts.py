"""Cross-agency counts: people known to health and social care, per area, no identities shared.

Real health and social-care nodes on stores loaded through ingest, the real trust gateway
(its own policy check and audit ledger), real tokens from a live identity server. Every
byte the gateway receives from the nodes goes through a recording transport, so the tests
can show what crossed; the counts are checked against a brute-force count computed
straight from the two nodes' databases. In process there is no mutual TLS, so ``AsPeer``
puts the caller's directory entry where ``RequireDirectoryPeer`` would (the ASGI scope),
and a node answers ``overlapTokens`` only when that is the gateway. The last tests run a
whole trust (``datatrust up``): an analyst calling a node directly with the local tools'
certificate is refused, and the gateway process's memory holds no pseudonym the nodes
hold.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from datatrust import _prepare
from datatrust.federation.gateway._overlap import (
    combine_counts,
    new_query_id,
    protect_count,
)
from datatrust.federation.subgraphs._overlap import _decoys, _Keyed, token_of
from datatrust.gateway import create_trust_gateway
from datatrust.network import DirectoryPeer
from datatrust.node import create_node_app
from datatrust.settings import GatewaySettings, NodeSettings, load_settings
from datatrust.store import create_store_engine
from datatrust.trust import AuditEntry, read_audit_entries
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

NODES = ("health", "social-care")
URLS = {node: f"http://{node}.test/graphql" for node in NODES}
AGREEMENTS = Path(__file__).resolve().parents[2] / "policies" / "data" / "agreements.json"
PLANNING = "dsa-planning-area-statistics"
COUNTS = """query($nodes: [String!]!, $combine: CrossAgencyCombine!, $since: Date, $until: Date) {
  crossAgencyCounts(nodes: $nodes, combine: $combine, since: $since, until: $until) {
    areaCode count suppressed
  }
}"""
NODE_QUERY = (
    "query($q: String!, $since: Date, $until: Date, $byArea: Boolean!, $padded: Boolean! = false) "
    "{ overlapTokens(queryId: $q, since: $since, until: $until, byArea: $byArea, "
    "padded: $padded) "
    "{ keyCheck minCellSize roundTo areas { code tokens } } }"
)
GATEWAY = DirectoryPeer("gateway", "gateway")
TOOL = DirectoryPeer("tool", "tool")
MEMBER = DirectoryPeer("member", "council", "council")


class AsPeer:
    """A node app called as if over mutual TLS by ``peer`` (None: no TLS at all).

    ``RequireDirectoryPeer`` puts the peer the trust directory accepted in
    ``scope["state"]["peer"]``; this wrapper puts a directory entry in the same place for
    an in-process app. It is test code: a served node gets its peer from the directory
    check alone, and nothing a client sends reaches that slot.
    """

    def __init__(self, app: Any, peer: DirectoryPeer | None) -> None:
        self.app, self.peer = app, peer

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and self.peer is not None:
            scope = {**scope, "state": {**(scope.get("state") or {}), "peer": self.peer}}
        await self.app(scope, receive, send)


class Recorder(httpx.AsyncBaseTransport):
    """Routes the gateway's calls to the node apps and keeps every byte they answer."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps
        self.received = bytearray()
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.removesuffix(".test")
        body = json.loads(await request.aread())
        self.asked.append((host, body))
        response = await httpx.ASGITransport(app=self.apps[host]).handle_async_request(request)
        content = await response.aread()
        self.received += content
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def overlap_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(host, body) for host, body in self.asked if "overlapTokens" in body["query"]]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("trust")


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as running:
        yield running


@pytest.fixture(scope="module")
def trust(data_dir, identity):
    """Health and social care (one data dir: one trust's keys) behind the trust gateway."""
    sources = _prepare.write_demo_files(data_dir)
    apps, clients, settings = {}, {}, {}
    for node in NODES:
        settings[node] = load_settings(
            NodeSettings,
            environ={},
            node_id=node,
            agency=node,
            data_dir=data_dir,
            issuers=identity.issuers,
        )
        _prepare.prepare_demo_node(
            data_dir, node, settings[node].effective_database_url, sources[node]
        )
        apps[node] = create_node_app(settings[node])
    recorder = Recorder({node: AsPeer(app, GATEWAY) for node, app in apps.items()})
    gateway_settings = load_settings(
        GatewaySettings, environ={}, data_dir=data_dir, nodes=URLS, issuers=identity.issuers
    )
    gateway_app = create_trust_gateway(gateway_settings)
    gateway_app.state.gateway.client_factory = lambda: httpx.AsyncClient(transport=recorder)
    with (
        app_client(apps["health"]) as clients["health"],
        app_client(apps["social-care"]) as clients["social-care"],
        app_client(gateway_app) as gateway,
    ):
        yield _Trust(data_dir, identity, recorder, gateway, apps, settings)


class _Trust:
    def __init__(self, data_dir, identity, recorder, gateway, apps, settings) -> None:
        self.data_dir = data_dir
        self.identity = identity
        self.recorder = recorder
        self.gateway = gateway
        self.apps = apps  # their lifespans (store migration) run in the fixture
        self.settings = settings

    def counts(self, client="analyst-cli", purpose="service-planning", **variables):
        variables = {"nodes": list(NODES), "combine": "INTERSECTION", **variables}
        response = self.gateway.post(
            "/graphql",
            json={"query": COUNTS, "variables": variables},
            headers=self.identity.headers_for(client, purpose),
        )
        return response.status_code, response.json()

    def ask_node(
        self, node, variables, client="analyst-cli", purpose="service-planning", peer=GATEWAY
    ):
        """Call ``node``'s overlapTokens directly, over mutual TLS as ``peer`` (the gateway
        unless told otherwise: these calls stand in for the gateway's)."""

        headers = self.identity.headers_for(client, purpose)

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=AsPeer(self.apps[node], peer))
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as client_:
                body = {"query": NODE_QUERY, "variables": variables}
                return await client_.post("/graphql", json=body, headers=headers)

        response = asyncio.run(call())
        return response.status_code, response.json()

    def database(self, node: str) -> sqlite3.Connection:
        url = self.settings[node].effective_database_url
        return sqlite3.connect(url.removeprefix("sqlite:///"))

    def pseudonyms(self) -> set[bytes]:
        """Every trust pseudonym either node holds, as the hex the gateway must never see."""
        found: set[str] = set()
        for node in NODES:
            with self.database(node) as db:
                for table in ("person", "encounter", "care_episode", "consent"):
                    rows = db.execute(f"SELECT pseudonym FROM {table}")  # noqa: S608
                    found.update(p for (p,) in rows if p)
        assert len(found) > 1000, "the demo nodes hold the people the test looks for"
        return {p[2:].encode() for p in found}


# -- brute force: straight from the two nodes' databases ------------------------------------


def planning_agreement() -> dict[str, Any]:
    agreements = json.loads(AGREEMENTS.read_text())["agreements"]
    return next(a for a in agreements if a["id"] == PLANNING)


def node_cohort(
    trust: _Trust, node: str, since: date | None, until: date | None
) -> dict[str, str | None]:
    """Each person of ``node``'s cohort and the area of their latest record that has one,
    under the agreement's own rules (its dates; consent and opt-out where it says so)."""
    agreement = planning_agreement()
    table, when = (
        ("encounter", "started_at") if node == "health" else ("care_episode", "started_on")
    )
    first = max(d for d in (since, date.fromisoformat(agreement["start"])) if d)
    last = min(d for d in (until, date.fromisoformat(agreement["end"])) if d)
    where = [f"t.pseudonym IS NOT NULL AND date(t.{when}) BETWEEN ? AND ?"]
    if agreement["consent_required"]:
        where.append(
            "t.pseudonym IN (SELECT pseudonym FROM consent WHERE purpose_id = 'service-planning' "
            "AND state = 'ConsentGiven')"
        )
    if agreement["national_data_opt_out_applies"]:
        where.append("t.pseudonym NOT IN (SELECT pseudonym FROM national_opt_out)")
    sql = (
        f"SELECT t.pseudonym, t.lsoa_code FROM {table} t WHERE {' AND '.join(where)} "  # noqa: S608
        f"ORDER BY t.{when}, t.id"
    )
    people: dict[str, str | None] = {}
    with trust.database(node) as db:
        for pseudonym, area in db.execute(sql, (first.isoformat(), last.isoformat())):
            if area is not None or pseudonym not in people:
                people[pseudonym] = area
    return people


def brute_force(trust: _Trust, combine: str, since=None, until=None) -> dict[str, int]:
    """People per area: INTERSECTION over every area health has records in (padded
    answers list them all), UNION over the areas of either cohort."""
    health, care = (node_cohort(trust, node, since, until) for node in NODES)
    if combine == "INTERSECTION":
        with trust.database("health") as db:
            rows = db.execute(
                "SELECT DISTINCT lsoa_code FROM encounter WHERE lsoa_code IS NOT NULL"
            )
            counts = {code: 0 for (code,) in rows}
        for person, area in health.items():
            if area is not None and person in care:
                counts[area] += 1
        return counts
    counts = {area: 0 for area in {*health.values(), *care.values()} if area is not None}
    for person in {*health, *care}:
        area = health.get(person) or care.get(person)
        if area is not None:
            counts[area] += 1
    return counts


def published(counts: dict[str, int]) -> list[dict[str, Any]]:
    disclosure = planning_agreement()["disclosure"]
    protected = [
        (
            code,
            protect_count(
                n, min_cell=disclosure["min_cell_size"], round_to=disclosure["rounding_base"]
            ),
        )
        for code, n in sorted(counts.items())
    ]
    return [{"areaCode": c, "count": v, "suppressed": v is None} for c, v in protected]


_HEX_MASK = bytes(0x78 if chr(b) in "0123456789abcdef" else 0x2E for b in range(256))
"""Maps each lower-case hex digit to ``x`` and every other byte to ``.``."""
_HEX_RUN = b"x" * 32


def hits(blob: bytes, pseudonyms: set[bytes]) -> set[bytes]:
    """The pseudonyms (their 32 hex digits) found anywhere in ``blob``.

    A pseudonym can only sit in a run of at least 32 hex digits. Such runs are found at C
    speed (one ``translate`` of the blob, then ``find`` for 32 marks in a row), so Python
    looks only at the few candidate runs, and at every 32-digit window of each: a
    pseudonym inside a longer run of hex digits is found too.
    """
    mask = blob.translate(_HEX_MASK)
    found: set[bytes] = set()
    at = 0
    while (start := mask.find(_HEX_RUN, at)) != -1:
        end = mask.find(b".", start + 32)
        end = len(mask) if end == -1 else end
        run = bytes(blob[start:end])
        found |= pseudonyms.intersection(run[i : i + 32] for i in range(len(run) - 31))
        at = end
    return found


# -- counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("combine", "period"),
    [
        ("INTERSECTION", {}),
        ("INTERSECTION", {"since": "2026-08-15", "until": "2026-10-20"}),
        ("UNION", {}),
    ],
)
def test_counts_match_a_brute_force_count_over_both_databases_with_suppression(
    trust, combine, period
):
    status, body = trust.counts(combine=combine, **period)
    assert (status, body.get("errors")) == (200, None), body
    since, until = (
        date.fromisoformat(period[k]) if k in period else None for k in ("since", "until")
    )
    expected = published(brute_force(trust, combine, since, until))
    assert body["data"]["crossAgencyCounts"] == expected
    assert any(c["count"] for c in expected), "some cells are shown"
    assert any(c["suppressed"] for c in expected), "some cells are suppressed"
    note = body["extensions"]["disclosureControl"]["crossAgencyCounts"]
    assert (note["minCellSize"], note["roundedTo"]) == (10, 5)
    assert note["suppressedCells"] == sum(c["suppressed"] for c in expected)


def test_the_nodes_values_combine_to_exactly_the_brute_force_counts(trust):
    """Below disclosure control: the true counts from the values equal the databases'."""
    query_id = new_query_id()
    answers = []
    for index, node in enumerate(NODES):
        variables = {"q": query_id, "byArea": index == 0, "padded": True}
        status, body = trust.ask_node(node, variables)
        assert (status, body.get("errors")) == (200, None), body
        envelope = body["data"]["overlapTokens"]
        answers.append([(a["code"], a["tokens"]) for a in envelope["areas"]])
    assert combine_counts(answers, "INTERSECTION") == brute_force(trust, "INTERSECTION")
    assert max(combine_counts(answers, "INTERSECTION").values()) >= 10


def test_a_padded_intersection_hides_each_nodes_cohort_sizes(trust):
    query_id = new_query_id()
    sizes = []
    for node in NODES:
        _, body = trust.ask_node(node, {"q": query_id, "byArea": node == "health"})
        sizes.append({len(a["tokens"]) for a in body["data"]["overlapTokens"]["areas"]})
    assert sizes[1] == {len(node_cohort(trust, "social-care", None, None))}  # unpadded: exact
    trust.recorder.asked.clear()
    status, body = trust.counts()
    assert status == 200, body
    for host, call in trust.recorder.overlap_calls():
        assert call["variables"]["padded"] is True, host
    answered = json.loads(_last_answers(trust)["health"])["data"]["overlapTokens"]["areas"]
    lengths = {len(a["tokens"]) for a in answered}
    assert all(n >= 32 and n & (n - 1) == 0 for n in lengths), lengths  # powers of two
    assert len(answered) == _coverage(trust, "health")


# -- what crosses to the gateway ------------------------------------------------------------


def test_no_pseudonym_crosses_to_the_gateway_or_into_its_logs(trust, caplog):
    pseudonyms = trust.pseudonyms()
    trust.recorder.received.clear()
    with caplog.at_level(logging.DEBUG):
        for combine in ("INTERSECTION", "UNION"):
            status, body = trust.counts(combine=combine)
            assert (status, body.get("errors")) == (200, None), body
    received = bytes(trust.recorder.received)
    assert b'"overlapTokens"' in received
    assert len(received) > 50_000
    assert hits(received, pseudonyms) == set()
    assert hits(caplog.text.encode(), pseudonyms) == set()
    assert hits(json.dumps(body).encode(), pseudonyms) == set()
    # The detector finds a pseudonym when there is one to find.
    some = next(iter(pseudonyms))
    assert hits(b'{"pseudonym": "p-' + some + b'"}', pseudonyms) == {some}
    assert hits(b"\x00ab12" + some + b"9f\x00" + some[:31], pseudonyms) == {some}  # in a run


def test_the_same_cohort_gives_unrelated_values_under_two_query_ids(trust):
    answers = []
    for _ in range(2):
        _, body = trust.ask_node("health", {"q": new_query_id(), "byArea": False})
        answers.append(set(body["data"]["overlapTokens"]["areas"][0]["tokens"]))
    assert len(answers[0]) == len(answers[1]) == len(node_cohort(trust, "health", None, None))
    assert answers[0].isdisjoint(answers[1])


def test_a_replayed_query_id_is_refused_by_the_node_and_audited(trust):
    query_id = new_query_id()
    first = trust.ask_node("social-care", {"q": query_id, "byArea": True})
    assert (first[0], first[1].get("errors")) == (200, None)
    answered = _last_audit(trust, "social-care")
    assert (answered.outcome, answered.agreement) == ("permit", PLANNING)
    assert answered.row_count > 0
    assert f"queryId {query_id}" in answered.reasons  # links the entry to the gateway's call
    stale = new_query_id(now=0)
    for asked, says in (
        (query_id, "this queryId has been answered already"),
        (stale, "older than 300 s"),
    ):
        before = _audit_count(trust, "social-care")
        status, body = trust.ask_node("social-care", {"q": asked, "byArea": True})
        assert (status, body["data"]) == (403, None), body
        assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
        assert says in body["errors"][0]["message"]
        entry = _last_audit(trust, "social-care")
        assert _audit_count(trust, "social-care") == before + 1
        assert (entry.outcome, entry.code, entry.row_count) == ("deny", "ACCESS_DENIED", 0)
        assert says in entry.reason
        assert f"queryId {asked}" in entry.reasons
        assert entry.agreement == PLANNING  # the policy permitted; the query id did not


@pytest.mark.parametrize(
    "peer", [TOOL, MEMBER, None], ids=["the tools' certificate", "a node's", "no mutual TLS"]
)
def test_only_the_gateway_may_ask_a_node_for_its_values(trust, peer):
    query_id = new_query_id()
    for node in NODES:
        before = _audit_count(trust, node)
        status, body = trust.ask_node(
            node, {"q": query_id, "byArea": True, "padded": False}, peer=peer
        )
        assert (status, body["data"]) == (403, None), body
        error = body["errors"][0]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "overlapTokens answers the trust's gateway only" in error["message"]
        who = f"{peer.kind} {peer.name!r}" if peer else "without a trust-directory certificate"
        assert who in error["message"]
        entry = _last_audit(trust, node)
        assert _audit_count(trust, node) == before + 1
        assert (entry.outcome, entry.code) == ("deny", "FORBIDDEN")
        assert (entry.row_count, entry.subject_count, entry.subjects) == (0, 0, ())
        assert entry.client_id == "analyst-cli"
    # The refusal came before the query id was taken: the gateway may still use it.
    for index, node in enumerate(NODES):
        status, body = trust.ask_node(node, {"q": query_id, "byArea": index == 0}, peer=GATEWAY)
        assert (status, body.get("errors")) == (200, None), body
        assert body["data"]["overlapTokens"]["areas"]
        assert _last_audit(trust, node).outcome == "permit"


def test_a_caller_without_a_permitted_purpose_is_refused_at_every_node_and_nothing_counted(
    trust,
):
    # Research may use health and care data, but no agreement shares the cohort's values.
    trust.recorder.asked.clear()
    status, body = trust.counts(client="research-cli", purpose="research")
    assert status == 403, body
    assert body["data"] is None
    assert trust.recorder.overlap_calls() == []  # the gateway refused before asking anyone
    query_id = new_query_id()
    for node in NODES:
        before = _audit_count(trust, node)
        status, body = trust.ask_node(
            node, {"q": query_id, "byArea": True}, client="research-cli", purpose="research"
        )
        assert (status, body["data"]) == (403, None), body
        assert (
            f"does not share field AreaTokens.code at node '{node}'"
            in (body["errors"][0]["message"])
        )
        entry = _last_audit(trust, node)
        assert _audit_count(trust, node) == before + 1
        assert (entry.outcome, entry.row_count, entry.subject_count) == ("deny", 0, 0)


def test_without_the_gateways_own_check_every_node_refuses_and_the_error_names_both(trust):
    from datatrust.federation.gateway import create_gateway_app

    app = create_gateway_app(
        URLS,
        client_factory=lambda: httpx.AsyncClient(transport=trust.recorder),
        startup_wait_seconds=0,
    )
    trust.recorder.asked.clear()
    with app_client(app) as gateway:
        response = gateway.post(
            "/graphql",
            json={"query": COUNTS, "variables": {"nodes": list(NODES), "combine": "UNION"}},
            headers=trust.identity.headers_for("research-cli", "research"),
        )
    body = response.json()
    assert body["data"] == {"crossAgencyCounts": None}
    error = body["errors"][0]
    assert error["message"].startswith("cross-agency count not made, nothing was counted; ")
    assert set(error["extensions"]["nodes"]) == set(NODES)
    assert {d["code"] for d in error["extensions"]["nodes"].values()} == {"ACCESS_DENIED"}
    assert sorted(host for host, _ in trust.recorder.overlap_calls()) == sorted(NODES)


def test_an_unknown_or_single_node_and_a_mixed_operation_are_refused_before_any_call(trust):
    trust.recorder.asked.clear()
    status, body = trust.counts(nodes=["health", "council"])
    assert (status, body["data"]) == (400, None)
    assert "node 'council' takes no part in cross-agency counts" in body["errors"][0]["message"]
    status, body = trust.counts(nodes=["health"])
    assert (status, body["data"]) == (400, None)
    assert "at least two different nodes" in body["errors"][0]["message"]
    response = trust.gateway.post(
        "/graphql",
        json={
            "query": '{ crossAgencyCounts(nodes: ["health", "social-care"]) { count } '
            "patients(first: 1) { birthYear } }"
        },
        headers=trust.identity.headers_for("analyst-cli", "service-planning"),
    )
    message = response.json()["errors"][0]["message"]
    assert "must be alone in its operation; ask for patients" in message
    assert trust.recorder.overlap_calls() == []


def test_a_query_that_only_mentions_the_field_in_a_comment_is_planned_as_usual(trust):
    """Only a selected crossAgencyCounts is the gateway's own; a comment naming it is not."""
    response = trust.gateway.post(
        "/graphql",
        json={"query": "# not crossAgencyCounts\n{ patients(first: 2) { birthYear } }"},
        headers=trust.identity.headers_for("research-cli", "research"),
    )
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    assert len(body["data"]["patients"]) == 2


def test_the_overlap_field_is_not_in_the_gateways_api_schema(trust):
    response = trust.gateway.post(
        "/graphql",
        json={"query": '{ overlapTokens(queryId: "x") { keyCheck } }'},
        headers=trust.identity.headers_for("analyst-cli", "service-planning"),
    )
    assert response.status_code == 400
    assert "Cannot query field 'overlapTokens' on type 'Query'" in response.text


# -- a whole trust (datatrust up): direct calls and the gateway process's memory ------------


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """One whole trust as a user runs it, for the tests below."""
    from tests._trust import Trust

    running = Trust(tmp_path_factory.mktemp("up"))
    try:
        yield running
    finally:
        running.stop()


def test_an_analyst_calling_a_node_directly_with_the_tools_certificate_is_refused(up):
    """The hole this closes: any directory certificate plus an analyst's token could ask a
    node for exact per-area values (byArea, unpadded) and skip disclosure control."""
    from tests._trust import post, token, tool_tls

    bearer = token(up, "service-planning", "analyst-cli")
    variables = {"q": new_query_id(), "byArea": True, "padded": False}
    for node in NODES:
        engine = create_store_engine(f"sqlite:///{up.data_dir / f'{node}.db'}")
        try:
            before = len(read_audit_entries(engine))
            response = post(
                up.run["nodes"][node],
                NODE_QUERY,
                "service-planning",
                variables,
                bearer=bearer,
                verify=tool_tls(up.run),
            )
            assert response.status_code == 403, response.text
            body = response.json()
            assert body["data"] is None
            error = body["errors"][0]
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert "overlapTokens answers the trust's gateway only" in error["message"]
            assert "from tool 'tool'" in error["message"]
            entries = read_audit_entries(engine)
        finally:
            engine.dispose()
        assert len(entries) == before + 1
        entry = entries[-1][2]
        assert (entry.outcome, entry.code, entry.row_count) == ("deny", "FORBIDDEN", 0)
        assert entry.client_id == "analyst-cli"
    # The gateway, whose certificate the nodes accept for this, still gets its counts.
    response = post(
        up.run["gateway"],
        COUNTS,
        "service-planning",
        {"nodes": list(NODES), "combine": "INTERSECTION"},
        bearer=bearer,
        verify=tool_tls(up.run),
    )
    assert (response.status_code, response.json().get("errors")) == (200, None), response.text
    assert any(c["count"] for c in response.json()["data"]["crossAgencyCounts"])


def test_a_running_gateways_memory_holds_no_pseudonym_and_no_overlap_key(up):
    from tests._trust import post, token, tool_tls

    running = up
    bearer = token(running, "service-planning", "analyst-cli")
    for combine in ("INTERSECTION", "UNION"):
        response = post(
            running.run["gateway"],
            COUNTS,
            "service-planning",
            {"nodes": list(NODES), "combine": combine},
            bearer=bearer,
            verify=tool_tls(running.run),
        )
        assert response.status_code == 200, response.text
        assert any(c["count"] for c in response.json()["data"]["crossAgencyCounts"])
    data_dir = running.data_dir
    pseudonyms = set()
    for node in NODES:
        with sqlite3.connect(data_dir / f"{node}.db") as db:
            for table in ("person", "encounter", "care_episode"):
                rows = db.execute(f"SELECT pseudonym FROM {table}")  # noqa: S608
                pseudonyms.update(p[2:].encode() for (p,) in rows if p)
    assert len(pseudonyms) > 1000
    key = (data_dir / "keys" / "overlap.key").read_text().strip()
    secrets_ = {"key (hex)": key.encode(), "key": bytes.fromhex(key), "token": bearer.encode()}
    found, seen, scanned, skipped = set(), set(), 0, 0
    for chunk, left in _memory(_gateway_pid(running)):
        scanned, skipped = scanned + len(chunk), skipped + left
        found |= hits(chunk, pseudonyms)
        seen |= {name for name, value in secrets_.items() if value in chunk}
    assert scanned > 10_000_000
    assert skipped < 1_000_000  # next to nothing resident is left unread
    assert "token" in seen  # the scan reads what the gateway holds: the caller's token
    assert found == set()
    assert seen == {"token"}  # never the overlap key
    # Control: once a purpose that may see trust pseudonyms (direct care) has had some
    # through the gateway, the same scan finds them, so an empty scan above means none.
    care = post(
        running.run["gateway"],
        "{ patients(first: 50) { pseudonym } }",
        "direct-care",
        bearer=token(running, "direct-care", "care-cli"),
        verify=tool_tls(running.run),
    )
    assert care.status_code == 200, care.text
    shown = {p["pseudonym"][2:].encode() for p in care.json()["data"]["patients"]}
    after = set()
    for chunk, _ in _memory(_gateway_pid(running)):
        after |= hits(chunk, shown)
    assert after == shown
    log = (data_dir / "logs" / "gateway.log").read_bytes()
    assert hits(log, pseudonyms) == set()


def test_the_fast_keyed_hash_gives_exactly_the_hmac_values():
    """The node hashes each cohort with precomputed HMAC states: the same values as
    ``hmac.new`` for any key (a long one too, which HMAC hashes first) and pseudonym."""
    for key in (os.urandom(32), b"k", os.urandom(100)):
        pseudonyms = [os.urandom(16).hex() for _ in range(50)] + ["", "\u00e9\u4e2d"]
        assert _Keyed(key).tokens(pseudonyms) == [token_of(key, p) for p in pseudonyms]
    decoys = _decoys(1000)
    assert len(set(decoys)) == 1000
    assert {len(value) for value in decoys} == {len(token_of(b"k", "x"))} == {22}


# -- helpers --------------------------------------------------------------------------------


def _last_answers(trust: _Trust) -> dict[str, bytes]:
    """The latest overlapTokens answer each node gave, as received (raw bytes)."""
    found: dict[str, bytes] = {}
    for chunk in bytes(trust.recorder.received).split(b'{"data":'):
        if b'"overlapTokens"' in chunk:
            text = b'{"data":' + chunk
            envelope = json.loads(text)["data"]["overlapTokens"]
            node = "health" if any(a["code"] for a in envelope["areas"]) else "social-care"
            found[node] = text
    return found


def _coverage(trust: _Trust, node: str) -> int:
    with trust.database(node) as db:
        return db.execute("SELECT count(DISTINCT lsoa_code) FROM encounter").fetchone()[0]


def _audit_count(trust: _Trust, node: str) -> int:
    with trust.database(node) as db:
        return db.execute("SELECT count(*) FROM audit_event").fetchone()[0]


def _last_audit(trust: _Trust, node: str) -> AuditEntry:
    engine = create_store_engine(trust.settings[node].effective_database_url)
    try:
        return read_audit_entries(engine)[-1][2]
    finally:
        engine.dispose()


def _gateway_pid(running) -> int:
    for pid in running.children():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"serve" in cmdline and b"gateway" in cmdline:
            return pid
    raise AssertionError("no gateway process among datatrust up's children")


MAX_REGION_BYTES = 1 << 30
"""Regions larger than this are address space a native library reserved (over 100 GB here,
a few kB of it resident): read only when their resident part is worth it."""


def _memory(pid: int, chunk: int = 1 << 24, overlap: int = 64):
    """Every resident, readable region of ``pid``'s memory, in overlapping chunks (as root).

    Yields ``(chunk, skipped)``: ``skipped`` counts resident bytes left unread (in huge
    reserved regions), so the caller can check that next to nothing was left out.
    """
    try:
        smaps = Path(f"/proc/{pid}/smaps").read_text().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb")  # noqa: SIM115
    except PermissionError as error:
        reason = f"cannot read the gateway's memory ({error}); run the tests as root"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
        pytest.skip(reason)
    regions, head = [], None
    for line in smaps:
        parts = line.split()
        if len(parts) >= 5 and "-" in parts[0] and ":" not in parts[0]:
            head = parts
        elif line.startswith("Rss:") and head is not None:
            regions.append((head, int(parts[1]) * 1024))
    with mem:
        for head, resident in regions:
            start, end = (int(x, 16) for x in head[0].split("-"))
            special = len(head) > 5 and head[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]")
            if "r" not in head[1] or special or resident == 0:
                continue
            if end - start > MAX_REGION_BYTES:
                yield b"", resident
                continue
            at = start
            while at < end:
                try:
                    mem.seek(max(start, at - overlap))
                    data = mem.read(min(end, at + chunk) - max(start, at - overlap))
                except (OSError, ValueError, OverflowError):
                    data = b""
                yield data, 0
                at += chunk
