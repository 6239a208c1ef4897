"""Introspection follows policy: the authorize hook decides on it like on any query, and the
operator can turn it off."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from datatrust.errors import AuthenticationFailed
from datatrust.federation.gateway import create_gateway_app

from ._subgraphs import URLS, Network
from .conftest import Asked

pytestmark = pytest.mark.anyio

INTROSPECTION = '{ __type(name: "Area") { name } __schema { queryType { name } } }'


async def test_introspection_is_authorized_like_any_query_and_names_what_it_reads(
    gateway: httpx.AsyncClient, asked: Asked, network: Network
) -> None:
    allowed = await gateway.post(
        "/graphql", json={"query": INTROSPECTION}, headers={"Purpose": "planning"}
    )
    refused = await gateway.post(
        "/graphql", json={"query": INTROSPECTION}, headers={"Purpose": "unknown"}
    )
    assert (allowed.status_code, allowed.json()) == (
        200,
        {"data": {"__type": {"name": "Area"}, "__schema": {"queryType": {"name": "Query"}}}},
    )
    assert (refused.status_code, refused.json()["data"]) == (400, None)
    introspected = frozenset({("Query", "__type"), ("Query", "__schema")})
    assert asked == [("planning", introspected), ("unknown", introspected)]
    assert [body for host in URLS for body in network.queries(host)] == []


@pytest.fixture
async def unauthenticated_or_closed(
    request: pytest.FixtureRequest, network: Network
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose hook refuses callers without a token; ``param`` is ``introspection``."""

    def authorize(purpose: str | None, fields: frozenset[tuple[str, str]], headers) -> None:
        if "authorization" not in {name.lower() for name in headers}:
            raise AuthenticationFailed("no access token; send Authorization: Bearer <token>")

    app = create_gateway_app(
        URLS,
        authorize=authorize,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        startup_wait_seconds=0.0,
        introspection=request.param,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        yield client


@pytest.mark.parametrize("unauthenticated_or_closed", [True], indirect=True)
async def test_an_unauthenticated_caller_cannot_introspect(
    unauthenticated_or_closed: httpx.AsyncClient,
) -> None:
    response = await unauthenticated_or_closed.post("/graphql", json={"query": INTROSPECTION})
    assert (response.status_code, response.json()) == (
        401,
        {
            "data": None,
            "errors": [
                {
                    "message": "no access token; send Authorization: Bearer <token>",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ],
        },
    )


@pytest.mark.parametrize("unauthenticated_or_closed", [False], indirect=True)
async def test_with_introspection_off_it_is_refused_for_everyone_but_queries_still_work(
    unauthenticated_or_closed: httpx.AsyncClient,
) -> None:
    token = {"Authorization": "Bearer any", "Purpose": "planning"}
    refused = await unauthenticated_or_closed.post(
        "/graphql", json={"query": INTROSPECTION}, headers=token
    )
    answered = await unauthenticated_or_closed.post(
        "/graphql", json={"query": "{ __typename areas { code } }"}, headers=token
    )
    assert (refused.status_code, refused.json()) == (
        403,
        {
            "data": None,
            "errors": [
                {
                    "message": "introspection (__schema, __type) is turned off at this gateway "
                    "(setting introspection = false); ask the trust's operators for the "
                    "schema, or query a node's { _service { sdl } }",
                    "extensions": {"code": "INTROSPECTION_DISABLED"},
                }
            ],
        },
    )
    assert (answered.status_code, answered.json()) == (
        200,
        {"data": {"__typename": "Query", "areas": [{"code": "E01009522"}, {"code": "S01008417"}]}},
    )
