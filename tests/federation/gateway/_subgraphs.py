"""Three small strawberry Federation 2.7 subgraphs and a network that routes httpx to them.

Subgraph ``a`` owns ``Area`` (name, footfall, and ``monthlyFootfall`` with a ``month``
argument) and the root fields; ``b`` adds
``encounterCount`` (with a ``year`` argument) and ``c`` adds ``openCareEpisodes``. The
network records every request per host and can make a host fail or stall.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import strawberry
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL

AREAS: dict[str, dict[str, Any]] = {
    "E01009522": {"name": "Coventry 014A", "footfall": 1520, "encounters": 42, "episodes": 7},
    "S01008417": {"name": "Balerno", "footfall": 310, "encounters": 5, "episodes": 1},
}
NATIONS = {"E": "England", "S": "Scotland"}
URLS = {name: f"http://{name}.test/graphql" for name in ("a", "b", "c")}


@strawberry.federation.type(keys=["code"], name="Area")
class AreaA:
    code: strawberry.ID
    name: str
    footfall: int

    @strawberry.field
    def monthly_footfall(self, month: int = 1) -> int:
        return self.footfall // 12 + month

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> AreaA:
        return _area_a(code)


def _area_a(code: str) -> AreaA:
    row = AREAS[code]
    return AreaA(code=strawberry.ID(code), name=row["name"], footfall=row["footfall"])


@strawberry.type
class QueryA:
    @strawberry.field
    def areas(self, nation: str | None = None) -> list[AreaA]:
        return [_area_a(code) for code in AREAS if nation in (None, NATIONS[code[0]])]

    @strawberry.field
    def area(self, code: strawberry.ID) -> AreaA | None:
        return _area_a(code) if code in AREAS else None


@strawberry.federation.type(keys=["code"], name="Area")
class AreaB:
    code: strawberry.ID

    @strawberry.field
    def encounter_count(self, year: int = 2024) -> int:
        return AREAS[self.code]["encounters"] + (2024 - year)

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> AreaB:
        return AreaB(code=code)


@strawberry.federation.type(keys=["code"], name="Area")
class AreaC:
    code: strawberry.ID
    open_care_episodes: int

    @classmethod
    def resolve_reference(cls, info: strawberry.Info, code: strawberry.ID) -> AreaC:
        purpose = info.context["request"].headers.get("purpose")
        if purpose == "marketing":
            raise GraphQLError(
                "purpose 'marketing' may not read Area.openCareEpisodes",
                extensions={"code": "ACCESS_DENIED"},
            )
        return AreaC(code=code, open_care_episodes=AREAS[code]["episodes"])


def _schema(**kwargs: Any) -> strawberry.federation.Schema:
    return strawberry.federation.Schema(federation_version="2.7", **kwargs)


SCHEMAS = {
    "a": _schema(query=QueryA, types=[AreaA]),
    "b": _schema(types=[AreaB]),
    "c": _schema(types=[AreaC]),
}


def sdl(name: str) -> str:
    """The SDL subgraph ``name`` answers to ``{ _service { sdl } }``."""
    result = SCHEMAS[name].execute_sync("{ _service { sdl } }")
    return result.data["_service"]["sdl"]  # type: ignore[index]


def subgraph_app(name: str) -> Starlette:
    """Subgraph ``name`` served by strawberry's ASGI app at ``/graphql``."""
    return Starlette(routes=[Route("/graphql", GraphQL(SCHEMAS[name]))])


@dataclass
class Call:
    host: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Network(httpx.AsyncBaseTransport):
    """Dispatches by host to each subgraph's ASGI app; records calls; injects faults."""

    apps: dict[str, Any] = field(default_factory=lambda: {n: subgraph_app(n) for n in URLS})
    calls: list[Call] = field(default_factory=list)
    failing: dict[str, str] = field(default_factory=dict)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.removesuffix(".test")
        body = json.loads(await request.aread())
        self.calls.append(Call(host, body, dict(request.headers)))
        fault = "" if "_service" in body["query"] else self.failing.get(host, "")
        if fault == "http500":
            return httpx.Response(500, text="Internal Server Error")
        if fault == "stall":
            await asyncio.sleep(5)
        transport = httpx.ASGITransport(app=self.apps[host])
        return await transport.handle_async_request(request)

    def queries(self, host: str) -> list[dict[str, Any]]:
        """The bodies of the non-SDL requests ``host`` received, in order."""
        return [c.body for c in self.calls if c.host == host and "_service" not in c.body["query"]]
