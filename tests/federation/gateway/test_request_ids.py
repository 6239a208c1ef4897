"""One request id per request: the caller's if sane, else a new one; on every node call,
in the authorize hook's headers (the trust gateway's audit entry) and in the response."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette

from ._subgraphs import Network

pytestmark = pytest.mark.anyio

DEMO = "{ areas { code name encounterCount openCareEpisodes } }"
NEW_ID = re.compile(r"[0-9a-f]{32}")


def data_call_ids(network: Network) -> list[tuple[str, str | None]]:
    return [
        (call.host, call.headers.get("x-request-id"))
        for call in network.calls
        if "_service" not in call.body["query"]
    ]


@pytest.fixture
def hook_headers(app: Starlette) -> list[dict[str, str]]:
    """The headers the authorize hook is given, per request."""
    seen: list[dict[str, str]] = []
    inner = app.state.gateway.authorize

    def authorize(purpose, fields, headers) -> None:
        seen.append(dict(headers))
        inner(purpose, fields, headers)

    app.state.gateway.authorize = authorize
    return seen


async def test_the_callers_request_id_reaches_every_node_the_hook_and_the_response(
    gateway: httpx.AsyncClient, network: Network, hook_headers: list[dict[str, str]]
) -> None:
    given = "analyst-7:2026-11-26T10.15_a"
    response = await gateway.post(
        "/graphql", json={"query": DEMO}, headers={"Purpose": "planning", "X-Request-Id": given}
    )
    assert (response.status_code, response.headers["x-request-id"]) == (200, given)
    assert data_call_ids(network) == [("a", given), ("b", given), ("c", given)]
    assert [headers["x-request-id"] for headers in hook_headers] == [given]


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("x" * 129, id="too long"),
        pytest.param("abc def", id="space"),
        pytest.param('{"inject": 1}', id="json"),
        pytest.param("caf\u00e9".encode(), id="not ascii"),
    ],
)
async def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one_everywhere(
    gateway: httpx.AsyncClient, network: Network, given: str | bytes | None
) -> None:
    headers: dict[str, str | bytes] = {"Purpose": "planning"}
    if given is not None:
        headers["X-Request-Id"] = given
    response = await gateway.post("/graphql", json={"query": DEMO}, headers=headers)
    made = response.headers["x-request-id"]
    assert (NEW_ID.fullmatch(made) is not None, made != given) == (True, True)
    assert data_call_ids(network) == [("a", made), ("b", made), ("c", made)]


async def test_each_request_gets_its_own_id_and_refusals_carry_it_too(
    gateway: httpx.AsyncClient,
) -> None:
    ok = await gateway.post("/graphql", json={"query": DEMO}, headers={"Purpose": "planning"})
    refused = await gateway.post("/graphql", json={"query": DEMO}, headers={"Purpose": "unknown"})
    bad = await gateway.post("/graphql", content=b"{", headers={"X-Request-Id": "bad-body-1"})
    ids = [r.headers.get("x-request-id") for r in (ok, refused, bad)]
    assert [r.status_code for r in (ok, refused, bad)] == [200, 400, 400]
    assert (len(set(ids)), ids[2]) == (3, "bad-body-1")
    assert all(NEW_ID.fullmatch(made) for made in ids[:2])


async def test_a_batch_has_one_request_id_on_every_node_call_of_every_operation(
    gateway: httpx.AsyncClient, network: Network
) -> None:
    response = await gateway.post(
        "/graphql",
        json=[{"query": "{ areas { code } }"}, {"query": "{ areas { encounterCount } }"}],
        headers={"Purpose": "planning", "X-Request-Id": "batch-1"},
    )
    assert (response.status_code, response.headers["x-request-id"]) == (200, "batch-1")
    assert sorted(data_call_ids(network)) == [("a", "batch-1"), ("a", "batch-1"), ("b", "batch-1")]
