"""A ``Permitted`` answer from the authorize hook: its record is written while nodes answer.

The hook decides before any node call; a permit's (blocking) record then runs in a worker
thread alongside the plan, and the gateway answers the nodes' data only once the record has
been written. Here the record waits until every node of the plan has answered, so a
gateway that wrote first and called the nodes after would never see them answer.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from datatrust.errors import StoreError
from datatrust.federation.gateway import create_gateway_app
from datatrust.federation.gateway._gateway import Permitted

from ._subgraphs import URLS, Network

pytestmark = pytest.mark.anyio

DEMO = "{ areas { code encounterCount } }"
PLAN_CALLS = 2  # areas at one node, then encounterCount for them through _entities


class Answered:
    """A node app that counts the responses it has finished sending."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.count += 1


class Nodes:
    def __init__(self, network: Network) -> None:
        self.apps = {name: Answered(app) for name, app in network.apps.items()}
        network.apps = self.apps  # type: ignore[assignment]
        self.network = network

    def answered(self) -> int:
        return sum(app.count for app in self.apps.values())

    def wait_for(self, count: int, seconds: float = 5.0) -> bool:
        deadline = time.monotonic() + seconds
        while self.answered() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True


async def _ask(network: Network, authorize: Any) -> httpx.Response:
    app = create_gateway_app(
        URLS,
        authorize=authorize,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        timeout_seconds=5.0,
        startup_wait_seconds=0.0,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        return await client.post("/graphql", json={"query": DEMO}, headers={"Purpose": "p"})


async def test_the_record_is_written_while_the_nodes_answer_and_the_data_waits_for_it() -> None:
    network = Network()
    nodes = Nodes(network)
    written: list[str] = []
    threads: list[threading.Thread] = []

    def authorize(purpose: str | None, fields: frozenset[tuple[str, str]], headers) -> Permitted:
        startup = nodes.answered()  # the SDL fetches

        def record() -> None:
            threads.append(threading.current_thread())
            if not nodes.wait_for(startup + PLAN_CALLS):
                raise StoreError("the nodes were not asked while the record was written")
            written.append(purpose or "")

        return Permitted(record)

    response = await _ask(network, authorize)
    assert (response.status_code, response.json()) == (
        200,
        {
            "data": {
                "areas": [
                    {"code": "E01009522", "encounterCount": 42},
                    {"code": "S01008417", "encounterCount": 5},
                ]
            }
        },
    )
    assert written == ["p"]  # exactly one record per request
    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()


async def test_a_record_that_fails_after_the_nodes_answered_answers_no_data() -> None:
    network = Network()
    nodes = Nodes(network)

    def authorize(purpose: str | None, fields: frozenset[tuple[str, str]], headers) -> Permitted:
        startup = nodes.answered()

        def record() -> None:
            nodes.wait_for(startup + PLAN_CALLS)
            raise StoreError("request refused: the gateway's audit ledger could not be written")

        return Permitted(record)

    response = await _ask(network, authorize)
    assert len(network.queries("a")) + len(network.queries("b")) == PLAN_CALLS
    assert (response.status_code, response.json()) == (
        503,
        {
            "data": None,
            "errors": [
                {
                    "message": "request refused: the gateway's audit ledger could not be written",
                    "extensions": {"code": "STORE_UNAVAILABLE"},
                }
            ],
        },
    )


async def test_awaiting_a_permitted_writes_its_record_in_a_thread() -> None:
    """Callers that must record before calling any node (cross-agency counts) await it."""
    threads: list[threading.Thread] = []
    await Permitted(lambda: threads.append(threading.current_thread()))
    assert len(threads) == 1
    assert threads[0] is not threading.current_thread()
