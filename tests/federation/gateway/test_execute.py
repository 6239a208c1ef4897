from __future__ import annotations

from typing import Any

import httpx
import pytest

from datatrust.federation.gateway import Supergraph, execute_plan, plan_operation

from ._subgraphs import URLS, Network

pytestmark = pytest.mark.anyio

DEMO = "query Demo { areas { code name footfall encounterCount openCareEpisodes } }"
REPRESENTATIONS = [
    {"__typename": "Area", "code": "E01009522"},
    {"__typename": "Area", "code": "S01008417"},
]


async def _run(
    supergraph: Supergraph,
    network: Network,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout_seconds: float = 1.0,
) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=network) as client:
        return await execute_plan(
            plan_operation(supergraph, query),
            supergraph,
            client=client,
            urls=URLS,
            variables=variables,
            headers=headers,
            timeout_seconds=timeout_seconds,
        )


async def test_fields_from_three_subgraphs_take_one_root_call_and_one_entities_call_each(
    supergraph: Supergraph, network: Network
) -> None:
    result = await _run(supergraph, network, DEMO)
    assert result == {
        "data": {
            "areas": [
                {
                    "code": "E01009522",
                    "name": "Coventry 014A",
                    "footfall": 1520,
                    "encounterCount": 42,
                    "openCareEpisodes": 7,
                },
                {
                    "code": "S01008417",
                    "name": "Balerno",
                    "footfall": 310,
                    "encounterCount": 5,
                    "openCareEpisodes": 1,
                },
            ]
        }
    }
    assert [len(network.queries(host)) for host in ("a", "b", "c")] == [1, 1, 1]
    assert network.queries("b")[0]["variables"] == {"representations": REPRESENTATIONS}
    assert network.queries("c")[0]["variables"] == {"representations": REPRESENTATIONS}


async def test_keys_first_asks_the_root_node_again_alongside_the_others_and_merges_all(
    supergraph: Supergraph, network: Network
) -> None:
    result = await _run(
        supergraph,
        network,
        "{ areas { code name monthlyFootfall(month: 3) encounterCount openCareEpisodes } }",
    )
    assert result == {
        "data": {
            "areas": [
                {
                    "code": "E01009522",
                    "name": "Coventry 014A",
                    "monthlyFootfall": 129,
                    "encounterCount": 42,
                    "openCareEpisodes": 7,
                },
                {
                    "code": "S01008417",
                    "name": "Balerno",
                    "monthlyFootfall": 28,
                    "encounterCount": 5,
                    "openCareEpisodes": 1,
                },
            ]
        }
    }
    root, entities = network.queries("a")
    assert "monthlyFootfall" not in root["query"]
    assert "name" in root["query"]
    assert entities["variables"] == {"representations": REPRESENTATIONS}
    assert "monthlyFootfall(month: 3)" in entities["query"]
    assert [len(network.queries(host)) for host in ("b", "c")] == [1, 1]


async def test_each_area_is_represented_once_even_when_reached_twice(
    supergraph: Supergraph, network: Network
) -> None:
    result = await _run(
        supergraph,
        network,
        "query($y: Int!) { areas { encounterCount(year: $y) } "
        'one: area(code: "S01008417") { encounterCount } }',
        variables={"y": 2020},
    )
    assert result == {
        "data": {
            "areas": [{"encounterCount": 46}, {"encounterCount": 9}],
            "one": {"encounterCount": 5},
        }
    }
    (call,) = network.queries("b")
    assert call["variables"] == {"representations": REPRESENTATIONS, "y": 2020}


async def test_aliases_variables_and_fragments_shape_the_answer_as_asked(
    supergraph: Supergraph, network: Network
) -> None:
    query = """
    query Scottish($nation: String, $withCare: Boolean!) {
      scotland: areas(nation: $nation) {
        ...Names
        seen: encounterCount(year: 2023)
        ... on Area { openCareEpisodes @include(if: $withCare) }
      }
    }
    fragment Names on Area { label: name code }
    """
    result = await _run(
        supergraph, network, query, variables={"nation": "Scotland", "withCare": False}
    )
    assert result == {"data": {"scotland": [{"label": "Balerno", "code": "S01008417", "seen": 6}]}}
    assert network.queries("a")[0]["variables"] == {"nation": "Scotland"}


async def test_a_subgraph_answering_http_500_costs_only_its_fields(
    supergraph: Supergraph, network: Network
) -> None:
    network.failing["b"] = "http500"
    result = await _run(supergraph, network, "{ areas { code encounterCount openCareEpisodes } }")
    assert result == {
        "data": {
            "areas": [
                {"code": "E01009522", "encounterCount": None, "openCareEpisodes": 7},
                {"code": "S01008417", "encounterCount": None, "openCareEpisodes": 1},
            ]
        },
        "errors": [
            {
                "message": "node 'b' answered HTTP 500 without a GraphQL body; its fields are null",
                "extensions": {"code": "NODE_UNAVAILABLE", "node": "b"},
            }
        ],
    }


async def test_a_subgraph_that_stalls_past_the_timeout_costs_only_its_fields(
    supergraph: Supergraph, network: Network
) -> None:
    network.failing["c"] = "stall"
    result = await _run(
        supergraph,
        network,
        '{ area(code: "E01009522") { name openCareEpisodes } }',
        timeout_seconds=0.1,
    )
    assert result == {
        "data": {"area": {"name": "Coventry 014A", "openCareEpisodes": None}},
        "errors": [
            {
                "message": "node 'c' did not answer within 0.1 s; its fields are null",
                "extensions": {"code": "NODE_UNAVAILABLE", "node": "c"},
            }
        ],
    }


async def test_a_failed_root_fetch_makes_no_dependent_calls(
    supergraph: Supergraph, network: Network
) -> None:
    network.failing["a"] = "http500"
    result = await _run(supergraph, network, DEMO)
    assert (result["data"], network.queries("b"), network.queries("c")) == (
        {"areas": None},
        [],
        [],
    )


async def test_a_node_refusal_passes_its_code_and_message_through_with_the_node_name(
    supergraph: Supergraph, network: Network
) -> None:
    result = await _run(
        supergraph,
        network,
        '{ area(code: "S01008417") { name openCareEpisodes } }',
        headers={"Purpose": "marketing"},
    )
    assert result == {
        "data": {"area": {"name": "Balerno", "openCareEpisodes": None}},
        "errors": [
            {
                "message": "purpose 'marketing' may not read Area.openCareEpisodes",
                "extensions": {"code": "ACCESS_DENIED", "node": "c"},
                "path": ["area"],
            }
        ],
    }


async def test_only_the_callers_purpose_authorization_and_traceparent_reach_the_nodes(
    supergraph: Supergraph, network: Network
) -> None:
    await _run(
        supergraph,
        network,
        DEMO,
        headers={
            "purpose": "planning",
            "authorization": "Bearer caller-token",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "cookie": "session=secret",
            "x-forwarded-for": "10.0.0.1",
        },
    )
    forwarded = {
        (call.host, name, call.headers.get(name))
        for call in network.calls
        for name in ("purpose", "authorization", "traceparent", "cookie", "x-forwarded-for")
    }
    assert forwarded == {
        (host, name, value)
        for host in ("a", "b", "c")
        for name, value in (
            ("purpose", "planning"),
            ("authorization", "Bearer caller-token"),
            ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ("cookie", None),
            ("x-forwarded-for", None),
        )
    }


async def test_introspection_is_answered_by_the_gateway_without_node_calls(
    supergraph: Supergraph, network: Network
) -> None:
    result = await _run(supergraph, network, '{ __typename __type(name: "Area") { name kind } }')
    assert (result, network.calls) == (
        {"data": {"__typename": "Query", "__type": {"name": "Area", "kind": "OBJECT"}}},
        [],
    )


async def test_each_nodes_disclosure_control_note_reaches_the_analyst(
    supergraph: Supergraph, network: Network
) -> None:
    """Suppressed cells are null: the note per node says so, summed over its calls."""
    import json

    inner = network.apps["b"]  # the subgraph with encounter counts

    async def with_note(scope, receive, send):
        async def noting(message):
            if message["type"] == "http.response.body" and message.get("body"):
                body = json.loads(message["body"])
                body["extensions"] = {
                    "disclosureControl": {"minCellSize": 10, "roundedTo": 5, "suppressedCells": 1}
                }
                message = {**message, "body": json.dumps(body).encode()}
            elif message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [(k, v) for k, v in message["headers"] if k != b"content-length"],
                }
            await send(message)

        await inner(scope, receive, noting)

    network.apps["b"] = with_note
    result = await _run(supergraph, network, DEMO)
    assert result["extensions"] == {
        "disclosureControl": {"b": {"minCellSize": 10, "roundedTo": 5, "suppressedCells": 1}}
    }
