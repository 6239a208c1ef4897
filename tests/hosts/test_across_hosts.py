"""A three-agency trust across hosts: demo queries, mutual TLS, and a node lost three ways.

Each part runs in its own network namespace (see ``conftest.py``), so the faults are real
ones: a node process killed while it holds a request, its host cut off (link down), its
link throttled until its answers come after the gateway's timeout. Each time the answer
keeps the other agencies' fields and names the missing node, the node's fields come back
when it does, and no audit entry is lost: every answer that carried a node's data has that
node's entry for its request id, and each ledger's chain still verifies.
"""

from __future__ import annotations

import signal
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from datatrust._audit_cli import part_settings, verify_ledgers
from datatrust.network import client_ssl_context
from datatrust.store import create_store_engine
from datatrust.trust import read_audit_entries

from ._netns import link_down, slow_link
from .conftest import NODES, HostedTrust

QUERY_NODES = {"example": NODES, "research": ("health", "social-care")}
"""The nodes each demo query asks (the research join starts at health's patients)."""
STABLE_FIELDS = ("code", "name", "encounterCount", "openCareEpisodes")
"""Fields no live source changes: the council's live feed ran while ``up`` did."""


def request_ids_audited(trust: HostedTrust, node: str) -> list[str | None]:
    """The request id of each entry in the node's ledger, oldest first."""
    engine = create_store_engine(part_settings(trust.data_dir, node).effective_database_url)
    try:
        return [entry.request_id for _, _, entry in read_audit_entries(engine)]
    finally:
        engine.dispose()


def node_errors(body: dict, node: str) -> list[dict]:
    return [e for e in body.get("errors", []) if e.get("extensions", {}).get("node") == node]


def answered_in_full(trust: HostedTrust, asked: list, seconds: float = 45.0) -> dict:
    """The first answer without errors within ``seconds`` (a node coming back takes a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        _, body = ask(trust, asked)
        if "errors" not in body or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


@pytest.fixture(scope="module")
def asked() -> list[tuple[str, str, dict]]:
    """Every (query name, request id, answer) the fault tests got, for the audit check."""
    return []


@pytest.fixture(scope="module")
def full(hosted: HostedTrust, asked: list) -> dict:
    body = answered_in_full(hosted, asked)
    assert "errors" not in body, body["errors"]
    return body


def ask(trust: HostedTrust, asked: list, name: str = "example") -> tuple[str, dict]:
    request_id, body = trust.ask(name)
    asked.append((name, request_id, body))
    return request_id, body


def assert_partial_without(node: str, body: dict, full: dict) -> None:
    """The other nodes' fields as in the full answer; the node's fields null; it is named."""
    field = {"council": "footfall", "health": "encounterCount", "social-care": "openCareEpisodes"}
    assert body["status"] == 200, body
    assert node_errors(body, node), body.get("errors")
    assert all(node in e["message"] for e in node_errors(body, node)), body["errors"]
    for area, whole in zip(body["data"]["areas"], full["data"]["areas"], strict=True):
        assert area[field[node]] is None
        assert {k: v for k, v in area.items() if k != field[node]} == {
            k: v for k, v in whole.items() if k != field[node]
        }


def assert_nothing_lost(trust: HostedTrust, asked: list, before: dict[str, list]) -> None:
    """Each ledger kept every earlier entry, verifies, and has an entry per answer with data."""
    for node in NODES:
        after = request_ids_audited(trust, node)
        assert after[: len(before[node])] == before[node], f"{node}: an earlier entry changed"
        answered = {
            request_id
            for name, request_id, body in asked
            if node in QUERY_NODES[name] and body["status"] == 200 and not node_errors(body, node)
        }
        assert answered - set(after) == set(), f"{node}: answers with data but no audit entry"
        assert len(after) - len(before[node]) >= len(answered - set(before[node]))
    checks = verify_ledgers(trust.data_dir)
    assert all(check.is_intact for check in checks), checks


@pytest.fixture
def ledgers(hosted: HostedTrust) -> dict[str, list]:
    return {node: request_ids_audited(hosted, node) for node in NODES}


def test_the_demo_queries_across_hosts_answer_as_on_one_machine(hosted: HostedTrust) -> None:
    example_id, example = hosted.ask("example")
    assert (example["status"], example.get("errors")) == (200, None), example
    areas = example["data"]["areas"]
    reference = hosted.reference["example"]["data"]["areas"]
    assert len(areas) == 5
    assert [{k: a[k] for k in STABLE_FIELDS} for a in areas] == [
        {k: a[k] for k in STABLE_FIELDS} for a in reference
    ]
    assert all(isinstance(a["footfall"], int) and a["airQuality"]["pm25Mean"] for a in areas)

    research_id, research = hosted.ask("research")
    assert (research["status"], research.get("errors")) == (200, None), research
    assert research["data"] == hosted.reference["research"]["data"]
    assert research["data"]["patients"]
    assert any(p["careEpisodes"] for p in research["data"]["patients"])

    _, refused = hosted.ask("research", client="analyst-cli")
    assert refused["status"] == 403, refused
    assert refused["data"] is None

    for name, request_id in (("example", example_id), ("research", research_id)):
        for node in QUERY_NODES[name]:
            assert request_id in request_ids_audited(hosted, node), (name, node)


def test_the_gateway_reaches_each_node_from_its_own_address_over_mutual_tls(
    hosted: HostedTrust,
) -> None:
    seen: dict[str, set[str]] = {node: set() for node in NODES}
    for _ in range(3):  # the gateway may close an idle connection between two looks
        _, body = hosted.ask()
        assert "errors" not in body, body["errors"]
        for node in NODES:
            seen[node] |= hosted.peers(node)
        if all(hosted.address("gateway") in peers for peers in seen.values()):
            break
    for node, peers in seen.items():
        assert hosted.address("gateway") in peers, (node, peers)
        assert not {"127.0.0.1", "::1"} & peers

    tool = hosted.run["tls"]
    with_certificate = client_ssl_context(Path(tool["cert"]), Path(tool["key"]), Path(tool["ca"]))
    without_certificate = ssl.create_default_context(cafile=tool["ca"])
    for node in NODES:
        url = hosted.node_url(node, "/readyz")
        # the node's certificate is checked against its host's address (check_hostname on)
        assert httpx.get(url, verify=with_certificate, timeout=10).status_code == 200
        with pytest.raises(httpx.TransportError):
            httpx.get(url, verify=without_certificate, timeout=10)


def test_a_node_killed_mid_query_costs_its_fields_until_restarted(
    hosted: HostedTrust, full: dict, asked: list, ledgers: dict
) -> None:
    health = hosted.processes["health"]
    health.send_signal(signal.SIGSTOP)  # it holds the request: the kernel takes it, it never reads
    with ThreadPoolExecutor(1) as pool:
        try:
            pending = pool.submit(ask, hosted, asked)
            deadline = time.monotonic() + 20
            while hosted.unread_bytes("health") == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert hosted.unread_bytes("health") > 0, "the request never reached health's host"
        finally:
            hosted.kill("health")
        killed_id, body = pending.result()
    assert_partial_without("health", body, full)
    assert killed_id not in request_ids_audited(hosted, "health")  # never read, never answered

    hosted.start("health")
    hosted.wait_ready(("health",))
    assert answered_in_full(hosted, asked) == full
    ask(hosted, asked)
    assert_nothing_lost(hosted, asked, ledgers)


def test_a_partitioned_node_costs_its_fields_until_its_link_is_back(
    hosted: HostedTrust, full: dict, asked: list, ledgers: dict
) -> None:
    with link_down(hosted.network.hosts["health"]):
        cut_id, body = ask(hosted, asked)
    assert_partial_without("health", body, full)
    assert cut_id not in request_ids_audited(hosted, "health")  # it never got there
    assert all(cut_id in request_ids_audited(hosted, n) for n in ("council", "social-care"))

    assert answered_in_full(hosted, asked) == full
    ask(hosted, asked)
    assert_nothing_lost(hosted, asked, ledgers)


def test_a_node_on_a_slow_link_costs_its_fields_until_the_link_is_fast_again(
    hosted: HostedTrust, full: dict, asked: list, ledgers: dict
) -> None:
    with slow_link(hosted.network.hosts["health"]) as qdisc:
        _, body = ask(hosted, asked)
    assert qdisc in ("netem", "tbf")
    assert_partial_without("health", body, full)
    messages = " ".join(e["message"] for e in node_errors(body, "health"))
    assert "timed out" in messages or "within" in messages, messages

    assert answered_in_full(hosted, asked) == full
    ask(hosted, asked)
    assert_nothing_lost(hosted, asked, ledgers)
