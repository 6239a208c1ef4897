"""The trust gateway's own audit entry: written while the nodes answer, never skipped.

The gateway decides before calling any node, but writes a permit's entry in a worker thread
while the plan's node calls run, and answers no data until that write has succeeded. These
tests run the real trust gateway (its policy, its SQLite ledger) in front of a real health
node, with tokens from a live identity server; the gateway's calls reach the node through
a transport that notes each one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from datatrust import _prepare
from datatrust.gateway import create_trust_gateway
from datatrust.node import create_node_app
from datatrust.settings import GatewaySettings, NodeSettings, load_settings
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

QUERY = "{ patients(first: 5) { birthYear } }"
RESEARCH = ("research-cli", "research")


class NodeCalls(httpx.AsyncBaseTransport):
    """Routes the gateway's calls to the health node; notes each data query it answers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.answered: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        asks_sdl = b"_service" in request.content
        response = await httpx.ASGITransport(app=self.app).handle_async_request(request)
        content = await response.aread()
        if not asks_sdl:
            self.answered.append(response.status_code)
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@pytest.fixture(scope="module")
def trust(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("trust")
    with trust_identity(tmp_path_factory.mktemp("identity")) as identity:
        sources = _prepare.write_demo_files(data_dir)
        node_settings = load_settings(
            NodeSettings,
            environ={},
            node_id="health",
            agency="health",
            data_dir=data_dir,
            issuers=identity.issuers,
        )
        _prepare.prepare_demo_node(
            data_dir, "health", node_settings.effective_database_url, sources["health"]
        )
        node = create_node_app(node_settings)
        calls = NodeCalls(node)
        settings = load_settings(
            GatewaySettings,
            environ={},
            data_dir=data_dir,
            nodes={"health": "http://health.test/graphql"},
            issuers=identity.issuers,
        )
        gateway_app = create_trust_gateway(settings)
        gateway_app.state.gateway.client_factory = lambda: httpx.AsyncClient(transport=calls)
        with app_client(node), app_client(gateway_app) as gateway:
            yield _Trust(
                gateway,
                identity,
                calls,
                Path(settings.effective_database_url.removeprefix("sqlite:///")),
            )


class _Trust:
    def __init__(self, gateway, identity, calls: NodeCalls, ledger: Path) -> None:
        self.gateway, self.identity, self.calls, self.ledger = gateway, identity, calls, ledger

    def ask(self, client: str, purpose: str, headers: dict[str, str] | None = None):
        response = self.gateway.post(
            "/graphql",
            json={"query": QUERY},
            headers=headers if headers is not None else self.identity.headers_for(client, purpose),
        )
        return response.status_code, response.json()

    def entries(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.ledger) as db:
            return db.execute("SELECT outcome, code FROM audit_event ORDER BY seq").fetchall()


def test_a_permitted_request_is_answered_and_audited_exactly_once(trust):
    before = trust.entries()
    status, body = trust.ask(*RESEARCH)
    assert status == 200, body
    assert body["data"]["patients"], body
    assert trust.entries()[len(before) :] == [("permit", "OK")]
    assert trust.entries()[: len(before)] == before


def test_a_refusal_is_audited_and_no_node_is_asked(trust):
    before, asked = trust.entries(), len(trust.calls.answered)
    status, body = trust.ask(*RESEARCH, headers={"Purpose": "research"})  # no token
    assert status == 401, body
    assert body["data"] is None
    assert trust.entries()[len(before) :] == [("deny", "UNAUTHENTICATED")]
    assert len(trust.calls.answered) == asked


def test_a_ledger_that_cannot_be_written_answers_store_unavailable_and_no_data(trust):
    """As a full disk: the store refuses every new entry. The permit was decided and the
    node may well have answered meanwhile, but no data leaves without its audit entry.
    (That the write runs alongside the node calls, and that data waits for it, is shown
    deterministically in ``test_permitted.py``: in one process the node's own audit write
    shares the ledger module's lock with the gateway's.)"""
    before = trust.entries()
    with sqlite3.connect(trust.ledger) as db:
        db.execute(
            "CREATE TRIGGER ledger_full BEFORE INSERT ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    try:
        status, body = trust.ask(*RESEARCH)
        assert status == 503, body
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE"
        assert "audit ledger could not be written" in body["errors"][0]["message"]
        assert trust.entries() == before
    finally:
        with sqlite3.connect(trust.ledger) as db:
            db.execute("DROP TRIGGER ledger_full")
    status, body = trust.ask(*RESEARCH)
    assert status == 200, body
    assert trust.entries()[len(before) :] == [("permit", "OK")]


def test_a_request_over_a_limit_is_audited_as_refused_and_no_node_is_asked(trust):
    """Refused before the decision, but still one deny entry, naming the caller's client."""
    before, asked = trust.entries(), len(trust.calls.answered)
    too_deep = "{ __schema { " + "types { fields { type { " * 8 + "name" + " } } }" * 8 + " } }"
    response = trust.gateway.post(
        "/graphql",
        json={"query": too_deep},
        headers=trust.identity.headers_for(*RESEARCH),
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert trust.entries()[len(before) :] == [("deny", "QUERY_TOO_COMPLEX")]
    with sqlite3.connect(trust.ledger) as db:
        client = db.execute("SELECT client_id FROM audit_event ORDER BY seq DESC").fetchone()[0]
    assert client == RESEARCH[0]
    assert len(trust.calls.answered) == asked
    status, body = trust.ask(*RESEARCH)
    assert status == 200, body
