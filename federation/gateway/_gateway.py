"""The gateway's state: node URLs, the last good supergraph, its plan cache, and the HTTP client.

Composition needs every node's SDL; until it has them the gateway is not ready and says
which node is missing. ``refresh()`` recomposes and keeps the last good supergraph when
the new one fails.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from ._compose import compose
from ._errors import CompositionError, NotReady
from ._execute import execute_plan
from ._plan import PlanCache, check_variables
from ._supergraph import Supergraph

Authorize = Callable[
    [str | None, frozenset[tuple[str, str]], Mapping[str, str]], Awaitable[None] | None
]
"""``authorize(purpose, fields, headers)`` returns None to allow, or raises a DatatrustError.

``headers`` are the caller's request headers, so the hook can authenticate the caller
(``Authorization``) before deciding; it must never add privileges of its own.
"""

_SDL_QUERY = "{ _service { sdl } }"
_log = logging.getLogger("datatrust.federation.gateway")


class Gateway:
    """Composes the nodes' subgraphs and answers operations across them."""

    def __init__(
        self,
        subgraphs: Mapping[str, str],
        *,
        authorize: Authorize | None = None,
        client_factory: Callable[[], httpx.AsyncClient] = httpx.AsyncClient,
        timeout_seconds: float = 10.0,
        startup_wait_seconds: float = 30.0,
    ) -> None:
        if not subgraphs:
            raise CompositionError("the gateway needs at least one subgraph URL")
        self.urls = dict(subgraphs)
        self.authorize = authorize
        self.client_factory = client_factory
        self.timeout_seconds = timeout_seconds
        self.startup_wait_seconds = startup_wait_seconds
        self.supergraph: Supergraph | None = None
        self.problems: dict[str, str] = dict.fromkeys(self.urls, "SDL not fetched yet")
        self._plans: PlanCache | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def refresh(self) -> Supergraph:
        """Fetch every node's SDL and recompose; on failure keep the last good supergraph."""
        fetched = await asyncio.gather(*(self._sdl(name, url) for name, url in self.urls.items()))
        sdl = {name: text for name, text, _ in fetched if text is not None}
        problems = {name: problem for name, _, problem in fetched if problem}
        if problems:
            self.problems = problems
            listed = "; ".join(f"'{name}': {problem}" for name, problem in problems.items())
            raise NotReady(f"cannot fetch the SDL of {listed}", nodes=problems)
        try:
            supergraph = compose(sdl)
        except CompositionError as error:
            self.problems = {"composition": error.message}
            raise
        self.supergraph, self._plans, self.problems = supergraph, PlanCache(supergraph), {}
        return supergraph

    async def start(self) -> None:
        """Keep trying ``refresh()`` with backoff for up to ``startup_wait_seconds``."""
        deadline = time.monotonic() + self.startup_wait_seconds
        delay = 0.25
        while True:
            try:
                await self.refresh()
            except (NotReady, CompositionError) as error:
                if time.monotonic() + delay > deadline:
                    _log.error("gateway not ready, giving up: %s", error.message)
                    return
                _log.info("gateway not ready yet, retrying in %.2f s: %s", delay, error.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                return

    async def _sdl(self, name: str, url: str) -> tuple[str, str | None, str | None]:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self.client.post(url, json={"query": _SDL_QUERY})
            sdl = response.json()["data"]["_service"]["sdl"]
        except TimeoutError:
            return name, None, f"no answer within {self.timeout_seconds:g} s at {url}"
        except httpx.HTTPError as error:
            return name, None, f"{type(error).__name__} at {url}"
        except (ValueError, KeyError, TypeError):
            return name, None, f"HTTP {response.status_code} from {url} without _service.sdl"
        if not isinstance(sdl, str):
            return name, None, f"_service.sdl from {url} is not a string"
        return name, sdl, None

    async def answer(
        self,
        query: str,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """Plan, authorize, then execute; raises DatatrustError before any node call."""
        supergraph, plans = self.supergraph, self._plans
        if supergraph is None or plans is None:
            reasons = "; ".join(f"{name}: {problem}" for name, problem in self.problems.items())
            raise NotReady(f"the gateway has not composed its supergraph yet ({reasons})")
        plan = plans.plan(query, operation_name)
        check_variables(supergraph, plan, variables)
        if self.authorize is not None:
            outcome = self.authorize(_header(headers, "purpose"), plan.fields, headers)
            if inspect.isawaitable(outcome):
                await outcome
        return await execute_plan(
            plan,
            supergraph,
            client=self.client,
            urls=self.urls,
            variables=variables,
            headers=headers,
            timeout_seconds=self.timeout_seconds,
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)
