"""A node closing a kept-alive connection just as the gateway reuses it costs nothing.

Benchmarking saw "node 'council' could not be reached (RemoteProtocolError)" after ~5 s
idle: httpx kept idle connections exactly as long as uvicorn's keep-alive, so a query
could be sent on a connection the node was closing. A merely short server keep-alive does
not force that race (httpcore notices a connection already closed and opens another); it
needs the close to come as the request lands. So the node here is real uvicorn, on
loopback, whose keep-alive timer fires the moment the next request arrives on an idle
connection, every time: the worst case of a keep-alive shorter than the gateway's reuse.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from datatrust.federation.gateway import Gateway

from ._subgraphs import subgraph_app

pytestmark = pytest.mark.anyio

QUERY = "{ areas { code name footfall } }"


@dataclass
class Node:
    url: str
    closed_as_request_landed: list[int] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)  # every GraphQL query the app saw

    def answered_for_clients(self) -> list[str]:
        """The queries the app saw, apart from the gateway's own SDL fetches."""
        return [query for query in self.queries if "_service" not in query]


def _keep_alive_ends_as_request_lands(node: Node) -> type[H11Protocol]:
    class KeepAliveEndsAsRequestLands(H11Protocol):
        """uvicorn's HTTP/1.1, its keep-alive timer firing just before a request on an idle
        connection is read: the node closes the connection without answering."""

        def data_received(self, data: bytes) -> None:
            if self.timeout_keep_alive_task is not None:  # idle after an answered request
                node.closed_as_request_landed.append(len(data))
                self.timeout_keep_alive_handler()
                return
            super().data_received(data)

    return KeepAliveEndsAsRequestLands


def _recording(app: ASGIApp, node: Node, break_queries: bool) -> ASGIApp:
    """Records each GraphQL body; with ``break_queries``, a query (not the SDL fetch) gets
    its response head and half its body, then the connection drops."""

    async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        node.queries.append(json.loads(body)["query"])
        if break_queries and b"_service" not in body:
            headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"data":', "more_body": True})
            raise RuntimeError("the node fails part-way through its answer")

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return recorder


@contextmanager
def running_node(*, race: bool, break_queries: bool = False) -> Iterator[Node]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    node = Node(f"http://127.0.0.1:{sock.getsockname()[1]}/graphql")
    config = uvicorn.Config(
        _recording(subgraph_app("a"), node, break_queries),
        http=_keep_alive_ends_as_request_lands(node) if race else "h11",
        # The real timer never fires during the test; the protocol above stands for it.
        timeout_keep_alive=60,
        log_level="critical",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test node did not start within 10 seconds")
        time.sleep(0.01)
    try:
        yield node
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def test_a_query_on_a_connection_the_node_closes_is_sent_again_and_answered() -> None:
    with running_node(race=True) as node:
        gateway = Gateway({"a": node.url}, startup_wait_seconds=5)
        try:
            await gateway.start()  # the SDL fetch leaves a kept-alive connection in the pool
            result = await gateway.answer(QUERY, None, None, {})
        finally:
            await gateway.close()
    assert "errors" not in result, result
    assert [area["code"] for area in result["data"]["areas"]] == ["E01009522", "S01008417"]
    assert len(node.closed_as_request_landed) == 1, "the race was not staged"
    assert len(node.answered_for_clients()) == 1  # the dropped request never reached the app


async def test_a_node_failing_after_its_answer_began_is_not_asked_again() -> None:
    with running_node(race=False, break_queries=True) as node:
        gateway = Gateway({"a": node.url}, startup_wait_seconds=5)
        try:
            await gateway.start()
            result = await gateway.answer(QUERY, None, None, {})
        finally:
            await gateway.close()
    assert result["data"] == {"areas": None}
    assert "node 'a' could not be reached (RemoteProtocolError)" in result["errors"][0]["message"]
    assert len(node.answered_for_clients()) == 1  # a response had begun: never repeated
