"""When the client goes away mid-request, the node calls still in flight are cancelled.

The test speaks ASGI to the gateway directly, as a server would: it sends the request body,
then ``http.disconnect`` once node ``b`` has received its ``_entities`` call, which stalls
until cancelled. The fake transport records the cancellation.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from datatrust.federation.gateway import create_gateway_app

from ._subgraphs import URLS, Network

pytestmark = pytest.mark.anyio

DEMO = "{ areas { code encounterCount } }"


@dataclass
class StallingNetwork(Network):
    """Node ``stall`` holds data calls until cancelled, and records that it was."""

    stall: str | None = "b"
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: list[str] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.removesuffix(".test")
        if host == self.stall and "_service" not in json.loads(await request.aread())["query"]:
            self.stalled.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(host)
                raise
        return await super().handle_async_request(request)


def http_scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway.test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"purpose", b"planning"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway.test", 80),
    }


async def test_a_client_that_goes_away_cancels_the_node_calls_in_flight() -> None:
    network = StallingNetwork()
    app = create_gateway_app(
        URLS,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        timeout_seconds=60.0,  # far longer than the test: only the disconnect can end the call
        startup_wait_seconds=0.0,
    )
    body = json.dumps({"query": DEMO}).encode()
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await network.stalled.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with app.router.lifespan_context(app):
        async with asyncio.timeout(30):  # a guard against hanging, not a timing assertion
            await app(http_scope(body), receive, send)
        network.stall = None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            after = await client.post("/graphql", json={"query": DEMO})
            metrics = (await client.get("/metrics")).text
    assert (network.cancelled, sent[0]["type"], sent[0]["status"]) == (
        ["b"],
        "http.response.start",
        499,
    )
    assert (after.status_code, after.json()) == (
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
    assert 'datatrust_gateway_requests_total{outcome="cancelled",purpose="unverified"} 1.0' in (
        metrics
    )


async def test_a_client_that_stays_gets_its_answer_and_nothing_is_cancelled() -> None:
    network = StallingNetwork(stall=None)
    app = create_gateway_app(
        URLS, client_factory=lambda: httpx.AsyncClient(transport=network), startup_wait_seconds=0.0
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client,
    ):
        response = await client.get("/graphql", params={"query": DEMO})
    assert (response.status_code, network.cancelled) == (200, [])
