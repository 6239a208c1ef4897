"""Each limit refuses an over-limit request with a clear error, before any node is called.

The measuring is pure (:func:`check_operation` on the demo trust's own supergraph, whose
``patients(first: Int! = 100)`` has a list-size argument); the HTTP tests run the gateway
over the fake network and check that no node saw a data request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query, parse

from datatrust.errors import SettingsError
from datatrust.federation.gateway import (
    QueryLimits,
    QueryMeasure,
    QueryTooComplex,
    Supergraph,
    check_operation,
    compose,
    create_gateway_app,
)
from datatrust.federation.subgraphs import SUBGRAPH_MODULES, subgraph_schema
from datatrust.settings import GatewaySettings, load_settings

from ._subgraphs import URLS, Network

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo() -> Supergraph:
    return compose({node: subgraph_schema(node).as_str() for node in SUBGRAPH_MODULES})


def measure(
    demo: Supergraph, query: str, variables: dict[str, Any] | None = None, **limits: int
) -> QueryMeasure:
    return check_operation(demo.schema, parse(query), None, variables, QueryLimits(**limits))


def refusal(
    demo: Supergraph, query: str, variables: dict[str, Any] | None = None, **limits: int
) -> QueryTooComplex:
    with pytest.raises(QueryTooComplex) as caught:
        measure(demo, query, variables, **limits)
    return caught.value


def test_depth_is_the_longest_chain_of_nested_fields_and_its_refusal_names_where(demo) -> None:
    query = "{ patients(first: 5) { pseudonym encounters { start } } }"
    assert measure(demo, query).depth == 3
    error = refusal(demo, query, max_depth=2)
    assert (error.code, error.status_hint, error.message, error.details) == (
        "QUERY_TOO_COMPLEX",
        400,
        "the query nests 3 fields deep at patients.encounters.start, over the gateway's "
        "limit of 2 (max_depth); ask for fewer nested levels, or split the query",
        {
            "limit": "max_depth",
            "value": 3,
            "maximum": 2,
            "at": "patients.encounters.start",
            "locations": [{"line": 1, "column": 47}],
        },
    )


def test_aliases_are_counted_with_fragments_expanded(demo) -> None:
    query = (
        "{ patients(first: 5) { ...P b: birthYear } careRecipients(first: 5) { ...P } }"
        " fragment P on Person { a: pseudonym }"
    )
    assert measure(demo, query).aliases == 3
    error = refusal(demo, query, max_aliases=2)
    assert (error.message, error.details["at"], error.details["value"]) == (
        "the query uses more than 2 aliases (number 3 is careRecipients.a), over the "
        "gateway's limit of 2 (max_aliases); ask for each field once, or split the query",
        "careRecipients.a",
        3,
    )


def test_cost_multiplies_each_list_by_its_first_argument_or_the_default_list_size(demo) -> None:
    # patients 1, pseudonym and encounters 1,000 each, start 1,000 x 20 (no first on encounters)
    query = "{ patients(first: 1000) { pseudonym encounters { start } } }"
    assert measure(demo, query) == QueryMeasure(depth=3, aliases=0, cost=22_001)
    error = refusal(demo, query, max_cost=10_000)
    assert (error.message, error.details) == (
        "the query's estimated cost reaches 22,001 field resolutions at "
        "patients.encounters.start, over the gateway's limit of 10,000 (max_cost); a list "
        "counts as its first/last/limit argument, else 20 items: ask for fewer items or "
        "fewer nested lists, or split the query",
        {
            "limit": "max_cost",
            "value": 22_001,
            "maximum": 10_000,
            "at": "patients.encounters.start",
            "locations": [{"line": 1, "column": 50}],
        },
    )


def test_a_list_size_comes_from_variables_then_their_defaults_then_the_schema(demo) -> None:
    by_variable = "query($n: Int!) { patients(first: $n) { pseudonym birthYear } }"
    assert measure(demo, by_variable, {"n": 7}).cost == 1 + 2 * 7
    error = refusal(demo, by_variable, {"n": 60_000})
    assert (error.details["limit"], error.details["value"]) == ("max_cost", 120_001)
    declared = "query($n: Int = 9) { patients(first: $n) { pseudonym } }"
    assert measure(demo, declared).cost == 1 + 9
    assert measure(demo, "{ patients { pseudonym } }").cost == 1 + 100  # first: Int! = 100


def test_exponentially_spread_fragments_are_refused_after_at_most_max_cost_steps(demo) -> None:
    levels = 40  # 2**40 pseudonyms if every spread were expanded
    fragments = " ".join(
        f"fragment F{n} on Person {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels)
    )
    last = f"fragment F{levels} on Person {{ pseudonym }}"
    query = f"{{ patients(first: 1) {{ ...F0 }} }} {fragments} {last}"
    error = refusal(demo, query, max_cost=1_000)
    assert (error.details["limit"], error.details["value"]) == ("max_cost", 1_001)


def test_the_standard_introspection_query_fits_the_defaults_but_a_hostile_one_does_not(
    demo,
) -> None:
    assert measure(demo, get_introspection_query(descriptions=True)).depth == 15
    hops = 8  # each hop multiplies by the mean number of fields of a type
    hostile = (
        "{ __schema { types { " + "fields { type { " * hops + "name" + " } }" * hops + " } } }"
    )
    assert measure(demo, hostile, max_cost=10**9).depth == 19
    assert refusal(demo, hostile).details["limit"] == "max_cost"


def test_names_the_schema_does_not_know_count_as_leaves_before_validation(demo) -> None:
    query = "{ patients(first: 2) { nosuch { deeper } } ...Missing }"
    assert measure(demo, query) == QueryMeasure(depth=3, aliases=0, cost=5)


def test_a_limit_below_one_is_refused_when_the_limits_are_built() -> None:
    with pytest.raises(
        SettingsError, match=r"^query limit max_cost must be a whole number of at least 1, not 0$"
    ):
        QueryLimits(max_cost=0)


def test_the_gateway_settings_default_to_the_query_limits_defaults_and_can_change_them() -> None:
    assert GatewaySettings().query_limits == QueryLimits()
    changed = load_settings(GatewaySettings, environ={"DATATRUST_MAX_DEPTH": "5"})
    assert changed.query_limits == QueryLimits(max_depth=5)
    with pytest.raises(SettingsError, match="max_batch"):
        load_settings(GatewaySettings, environ={"DATATRUST_MAX_BATCH": "0"})


# -- over HTTP: refused before any node (or the authorize hook) is asked ----------------


class Limited:
    def __init__(self, client: httpx.AsyncClient, network: Network, asked: list) -> None:
        self.client, self.network, self.asked = client, network, asked

    def data_calls(self) -> list[dict[str, Any]]:
        return [body for host in URLS for body in self.network.queries(host)]


@pytest.fixture
async def limited(request: pytest.FixtureRequest) -> AsyncIterator[Limited]:
    """A gateway with the test's limits (``@pytest.mark.parametrize`` indirect)."""
    network, asked = Network(), []

    def authorize(purpose: str | None, fields: frozenset[tuple[str, str]], headers) -> None:
        asked.append(fields)

    app = create_gateway_app(
        URLS,
        authorize=authorize,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        startup_wait_seconds=0.0,
        limits=QueryLimits(**getattr(request, "param", {})),
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        yield Limited(client, network, asked)


OVER_LIMIT = [
    pytest.param({"max_depth": 1}, {"query": "{ areas { code } }"}, 400, "max_depth", id="depth"),
    pytest.param(
        {"max_aliases": 1},
        {"query": "{ here: areas { at: code } }"},
        400,
        "max_aliases",
        id="aliases",
    ),
    pytest.param(
        {"max_cost": 10}, {"query": "{ areas { code name } }"}, 400, "max_cost", id="cost"
    ),
    pytest.param(
        {"max_document_bytes": 16},
        {"query": "{ areas { code name } }"},
        413,
        "max_document_bytes",
        id="document size",
    ),
    pytest.param(
        {"max_batch": 2},
        [{"query": "{ areas { code } }"}] * 3,
        413,
        "max_batch",
        id="batch size",
    ),
]


@pytest.mark.parametrize(("limited", "body", "status", "limit"), OVER_LIMIT, indirect=["limited"])
async def test_each_limit_refuses_before_any_node_is_called(
    limited: Limited, body: Any, status: int, limit: str
) -> None:
    response = await limited.client.post("/graphql", json=body)
    (error,) = response.json()["errors"]
    code = "QUERY_TOO_COMPLEX" if status == 400 else "REQUEST_TOO_LARGE"
    assert (response.status_code, error["extensions"]["code"], error["extensions"]["limit"]) == (
        status,
        code,
        limit,
    )
    assert (limited.data_calls(), limited.asked) == ([], [])


@pytest.mark.parametrize("limited", [{"max_document_bytes": 16}], indirect=True)
async def test_an_over_long_document_is_refused_whole_with_its_size(limited: Limited) -> None:
    response = await limited.client.get("/graphql", params={"query": "{ areas { code name } }"})
    assert (response.status_code, response.json()) == (
        413,
        {
            "data": None,
            "errors": [
                {
                    "message": "the query document is 23 bytes, over the gateway's limit of 16 "
                    "(max_document_bytes); send a shorter document",
                    "extensions": {
                        "code": "REQUEST_TOO_LARGE",
                        "limit": "max_document_bytes",
                        "value": 23,
                        "maximum": 16,
                    },
                }
            ],
        },
    )


async def test_a_batch_is_answered_operation_by_operation_in_order(limited: Limited) -> None:
    batch = [
        {"query": "{ areas { code } }"},
        {
            "query": "query One($c: ID!) { area(code: $c) { name } }",
            "variables": {"c": "S01008417"},
        },
        {"query": "{ areas { postcode } }"},
        "not an operation",
    ]
    response = await limited.client.post("/graphql", json=batch)
    assert (response.status_code, response.json()) == (
        200,
        [
            {"data": {"areas": [{"code": "E01009522"}, {"code": "S01008417"}]}},
            {"data": {"area": {"name": "Balerno"}}},
            {
                "data": None,
                "errors": [
                    {
                        "message": "Cannot query field 'postcode' on type 'Area'. "
                        "Did you mean 'code'?",
                        "extensions": {
                            "code": "GRAPHQL_VALIDATION_FAILED",
                            "locations": [{"line": 1, "column": 11}],
                        },
                    }
                ],
            },
            {
                "data": None,
                "errors": [
                    {
                        "message": "each operation of a batch must be a JSON object such as "
                        '{"query": "{ ... }"}',
                        "extensions": {"code": "BAD_REQUEST"},
                    }
                ],
            },
        ],
    )
    assert len(limited.asked) == 2


@pytest.mark.parametrize("limited", [{"max_depth": 1}], indirect=True)
async def test_an_over_limit_operation_in_a_batch_fails_only_its_own_answer(
    limited: Limited,
) -> None:
    batch = [{"query": "{ areas { code } }"}, {"query": "{ __typename }"}]
    response = await limited.client.post(
        "/graphql", content=json.dumps(batch), headers={"content-type": "application/json"}
    )
    first, second = response.json()
    assert (first["errors"][0]["extensions"]["limit"], second) == (
        "max_depth",
        {"data": {"__typename": "Query"}},
    )
    assert limited.data_calls() == []
