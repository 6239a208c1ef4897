from __future__ import annotations

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from datatrust.errors import SourceError
from datatrust.federation.gateway import CompositionError, create_gateway_app

from ._subgraphs import URLS, Network
from .conftest import Asked

pytestmark = pytest.mark.anyio

DEMO = "{ areas { code encounterCount } }"


async def test_answers_a_query_across_nodes_over_http(
    gateway: httpx.AsyncClient, asked: Asked
) -> None:
    response = await gateway.post("/graphql", json={"query": DEMO}, headers={"Purpose": "planning"})
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
    assert asked == [
        ("planning", frozenset({("Query", "areas"), ("Area", "code"), ("Area", "encounterCount")}))
    ]


async def test_get_requests_carry_query_variables_and_operation_name(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get(
        "/graphql",
        params={
            "query": "query One($code: ID!) { area(code: $code) { name } }",
            "variables": '{"code": "E01009522"}',
            "operationName": "One",
        },
    )
    assert (response.status_code, response.json()) == (
        200,
        {"data": {"area": {"name": "Coventry 014A"}}},
    )


async def test_an_authorize_refusal_makes_no_node_call_and_answers_its_error(
    gateway: httpx.AsyncClient, network: Network
) -> None:
    calls_at_startup = len(network.calls)
    response = await gateway.post("/graphql", json={"query": DEMO}, headers={"Purpose": "unknown"})
    assert (response.status_code, response.json(), len(network.calls)) == (
        400,
        {
            "data": None,
            "errors": [
                {
                    "message": "purpose 'unknown' is not in the register; use one it lists",
                    "extensions": {"code": "PURPOSE_UNKNOWN"},
                }
            ],
        },
        calls_at_startup,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            b'{"query": ',
            "the request body is not valid JSON (Expecting value: line 1 column 11 (char 10)); "
            "send a JSON object",
            id="invalid json",
        ),
        pytest.param(
            b"[]",
            'the request body must be a JSON object such as {"query": "{ ... }"}, '
            "or a non-empty array of them for a batch",
            id="not an object",
        ),
        pytest.param(
            b'{"variables": {}}',
            'the request has no "query"; send {"query": "{ ... }"} as JSON',
            id="missing query",
        ),
        pytest.param(
            b'{"query": "{ areas { code } }", "variables": [1]}',
            '"variables" must be a JSON object mapping names to values',
            id="variables not an object",
        ),
    ],
)
async def test_a_bad_request_body_is_a_400_graphql_error(
    gateway: httpx.AsyncClient, content: bytes, message: str
) -> None:
    response = await gateway.post(
        "/graphql", content=content, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()) == (
        400,
        {"data": None, "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]},
    )


async def test_a_query_that_does_not_validate_is_a_400_with_locations(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post("/graphql", json={"query": "{ areas { postcode } }"})
    assert (response.status_code, response.json()) == (
        400,
        {
            "data": None,
            "errors": [
                {
                    "message": "Cannot query field 'postcode' on type 'Area'. Did you mean 'code'?",
                    "extensions": {
                        "code": "GRAPHQL_VALIDATION_FAILED",
                        "locations": [{"line": 1, "column": 11}],
                    },
                }
            ],
        },
    )


async def test_variables_that_do_not_fit_their_declaration_are_a_400(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post(
        "/graphql",
        json={"query": "query($code: ID!) { area(code: $code) { name } }", "variables": {}},
    )
    assert (response.status_code, response.json()["errors"]) == (
        400,
        [
            {
                "message": "Variable '$code' has invalid value: "
                "Expected a value of non-null type 'ID!' to be provided.",
                "extensions": {
                    "code": "GRAPHQL_VALIDATION_FAILED",
                    "locations": [{"line": 1, "column": 7}],
                },
            }
        ],
    )


async def test_an_unexpected_exception_is_masked_as_internal(
    app: Starlette, gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(purpose: str | None, fields: frozenset[tuple[str, str]], headers) -> None:
        raise RuntimeError("policy engine exploded")

    app.state.gateway.authorize = broken
    response = await gateway.post("/graphql", json={"query": DEMO})
    body = response.json()
    incident = body["errors"][0]["extensions"]["incident"]
    assert (response.status_code, body) == (
        500,
        {
            "data": None,
            "errors": [
                {
                    "message": "the gateway failed unexpectedly; its log has the details",
                    "extensions": {"code": "INTERNAL", "incident": incident},
                }
            ],
        },
    )
    assert f"incident {incident}" in caplog.text


async def test_health_readiness_and_metrics_endpoints(gateway: httpx.AsyncClient) -> None:
    await gateway.post("/graphql", json={"query": DEMO}, headers={"Purpose": "planning"})
    await gateway.post("/graphql", json={"query": DEMO}, headers={"Purpose": "unknown"})
    health, ready = await gateway.get("/healthz"), await gateway.get("/readyz")
    assert [(r.status_code, r.json()) for r in (health, ready)] == [
        (200, {"status": "alive"}),
        (200, {"status": "ready", "subgraphs": ["a", "b", "c"]}),
    ]
    metrics = (await gateway.get("/metrics")).text
    assert 'datatrust_gateway_requests_total{outcome="ok",purpose="planning"} 1.0' in metrics
    assert 'datatrust_gateway_requests_total{outcome="refused",purpose="unverified"} 1.0' in metrics
    assert "datatrust_gateway_request_duration_seconds_count 2.0" in metrics


async def test_a_node_whose_sdl_cannot_be_fetched_keeps_the_gateway_unready(
    network: Network,
) -> None:
    app = create_gateway_app(
        {**URLS, "d": "http://d.test/graphql"},
        authorize=None,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        startup_wait_seconds=0.0,
    )
    network.apps["d"] = Starlette()
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        ready = await client.get("/readyz")
        answer = await client.post("/graphql", json={"query": DEMO})
    problems = {"d": "HTTP 404 from http://d.test/graphql without _service.sdl"}
    assert (ready.status_code, ready.json()) == (
        503,
        {"status": "not ready", "problems": problems},
    )
    assert (answer.status_code, answer.json()) == (
        503,
        {
            "data": None,
            "errors": [
                {
                    "message": "the gateway has not composed its supergraph yet "
                    "(d: HTTP 404 from http://d.test/graphql without _service.sdl)",
                    "extensions": {"code": "NODE_UNAVAILABLE"},
                }
            ],
        },
    )


async def test_refresh_keeps_the_last_good_supergraph_when_recomposition_fails(
    app: Starlette, gateway: httpx.AsyncClient, network: Network
) -> None:
    good = app.state.gateway.supergraph
    network.apps["b"] = network.apps["a"]  # b now also resolves Area.name: a conflict
    with pytest.raises(CompositionError, match=r"^Area\.name is resolved by subgraphs 'a' and 'b'"):
        await app.state.gateway.refresh()
    ready = await gateway.get("/readyz")
    assert (app.state.gateway.supergraph is good, ready.status_code) == (True, 200)
    assert ready.json()["last_refresh_problems"] == {
        "composition": "Area.name is resolved by subgraphs 'a' and 'b' but is not marked "
        "@shareable in 'a' and 'b'; mark it @shareable in every subgraph that resolves it, or "
        "keep it in one subgraph"
    }


async def test_startup_retries_until_a_late_node_answers_its_sdl(network: Network) -> None:
    app = create_gateway_app(
        URLS,
        authorize=None,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        startup_wait_seconds=10.0,
    )
    network.apps["b"], late = Starlette(), network.apps["b"]
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        before = (await client.get("/readyz")).status_code
        network.apps["b"] = late
        for _ in range(40):
            await anyio.sleep(0.05)
            if (await client.get("/readyz")).status_code == 200:
                break
        after = (await client.get("/readyz")).json()
    assert (before, after) == (503, {"status": "ready", "subgraphs": ["a", "b", "c"]})


async def test_readyz_adds_the_embedding_process_facts_and_is_unready_when_it_refuses(
    network: Network,
) -> None:
    facts: dict = {"policy_version": "v1 (agreements 2026-11-26, purposes 2026-11-01)"}

    def readiness() -> dict:
        if not facts:
            raise SourceError("no data-use policy in force (agreements.json is unreadable)")
        return facts

    app = create_gateway_app(
        URLS,
        authorize=None,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        startup_wait_seconds=0.0,
        readiness=readiness,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        ready = await client.get("/readyz")
        facts.clear()
        unready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {
            "status": "ready",
            "subgraphs": ["a", "b", "c"],
            "policy_version": "v1 (agreements 2026-11-26, purposes 2026-11-01)",
        },
    )
    assert (unready.status_code, unready.json()) == (
        503,
        {
            "status": "not ready",
            "reason": "no data-use policy in force (agreements.json is unreadable)",
        },
    )
