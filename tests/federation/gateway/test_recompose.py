"""Live recomposition: a node's schema change is served without a gateway restart, an invalid
one is refused while the last good supergraph keeps serving, and an unchanged one costs no
recomposition. The poll interval is tiny here; waits poll the state with a deadline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL

from datatrust.federation.gateway import Gateway, create_gateway_app

from ._subgraphs import AREAS, URLS, Network

pytestmark = pytest.mark.anyio

ADMISSIONS = "{ areas { code encounterCount admissionCount } }"


@strawberry.federation.type(keys=["code"], name="Area")
class AreaWithAdmissions:
    """Subgraph ``b`` after its node added a field."""

    code: strawberry.ID

    @strawberry.field
    def encounter_count(self, year: int = 2024) -> int:
        return AREAS[self.code]["encounters"] + (2024 - year)

    @strawberry.field
    def admission_count(self) -> int:
        return AREAS[self.code]["encounters"] // 2

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> AreaWithAdmissions:
        return cls(code=code)


@strawberry.federation.type(keys=["code"], name="Area")
class AreaClashing(AreaWithAdmissions):
    """Subgraph ``b`` after a bad change: it now also resolves ``Area.name``, owned by ``a``."""

    name: str = "clash"

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> AreaClashing:
        return cls(code=code)


def serving(area: type) -> Starlette:
    schema = strawberry.federation.Schema(types=[area], federation_version="2.7")
    return Starlette(routes=[Route("/graphql", GraphQL(schema))])


@dataclass
class Live:
    client: httpx.AsyncClient
    gateway: Gateway
    network: Network

    async def ask(self, query: str) -> tuple[int, dict]:
        response = await self.client.post("/graphql", json={"query": query})
        return response.status_code, response.json()

    def sdl_polls(self) -> int:
        return sum("_service" in call.body["query"] for call in self.network.calls)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition``; the deadline only stops a broken build from hanging."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
async def live(network: Network) -> AsyncIterator[Live]:
    app = create_gateway_app(
        URLS,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        startup_wait_seconds=0.0,
        recompose_seconds=0.01,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        yield Live(client, app.state.gateway, network)


async def test_an_unchanged_schema_is_polled_but_not_recomposed(live: Live) -> None:
    first, plans = live.gateway.supergraph, live.gateway._plans
    await live.ask("{ areas { code } }")
    polls = live.sdl_polls()
    await until(lambda: live.sdl_polls() >= polls + 3 * len(URLS), "three more polls")
    assert (live.gateway.supergraph is first, live.gateway._plans is plans) == (True, True)
    assert (len(plans), live.gateway.problems) == (1, {})


async def test_a_new_field_is_served_without_restart_and_a_bad_change_keeps_the_last_good(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="datatrust.federation.gateway")
    before = await live.ask(ADMISSIONS)
    first = live.gateway.supergraph
    live.network.apps["b"] = serving(AreaWithAdmissions)
    await until(lambda: live.gateway.supergraph is not first, "the new supergraph")
    added = await live.ask(ADMISSIONS)
    good = live.gateway.supergraph
    live.network.apps["b"] = serving(AreaClashing)
    await until(lambda: "composition" in live.gateway.problems, "the composition error")
    ready = await live.client.get("/readyz")
    kept = await live.ask(ADMISSIONS)

    assert (before[0], before[1]["errors"][0]["extensions"]["code"]) == (
        400,
        "GRAPHQL_VALIDATION_FAILED",
    )
    answer = {
        "data": {
            "areas": [
                {"code": "E01009522", "encounterCount": 42, "admissionCount": 21},
                {"code": "S01008417", "encounterCount": 5, "admissionCount": 2},
            ]
        }
    }
    assert added == (200, answer)
    assert "recomposed the supergraph: the schema of 'b' changed" in caplog.text
    assert (ready.status_code, ready.json()) == (
        200,
        {
            "status": "ready",
            "subgraphs": ["a", "b", "c"],
            "last_refresh_problems": {
                "composition": "Area.name is resolved by subgraphs 'a' and 'b' but is not "
                "marked @shareable in 'a' and 'b'; mark it @shareable in every subgraph that "
                "resolves it, or keep it in one subgraph"
            },
        },
    )
    assert (kept, live.gateway.supergraph is good) == ((200, answer), True)


async def test_a_node_down_at_a_poll_is_reported_and_composed_from_its_last_schema(
    live: Live,
) -> None:
    first = live.gateway.supergraph
    live.network.apps["c"], up = Starlette(), live.network.apps["c"]
    await until(lambda: "c" in live.gateway.problems, "node c's problem")
    ready = (await live.client.get("/readyz")).json()
    answer = await live.ask("{ areas { code encounterCount } }")
    live.network.apps["c"] = up
    await until(lambda: not live.gateway.problems, "node c back")
    assert ready["last_refresh_problems"] == {
        "c": "HTTP 404 from http://c.test/graphql without _service.sdl"
    }
    assert (answer[0], "errors" in answer[1], live.gateway.supergraph is first) == (
        200,
        False,
        True,
    )


async def test_a_zero_interval_turns_polling_off() -> None:
    gateway = Gateway(URLS, recompose_seconds=0)
    async with asyncio.timeout(5):  # returns at once; the timeout only guards a regression
        await gateway.watch()
