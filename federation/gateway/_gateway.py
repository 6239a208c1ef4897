"""The gateway's state: node URLs, the last good supergraph, its plan cache, and the HTTP client.

Composition needs every node's SDL; until it has them the gateway is not ready and says
which node is missing. ``refresh()`` recomposes when some node's SDL text changed and keeps
the last good supergraph when the new one fails; ``watch()`` calls it every
``recompose_seconds`` so a node can change its schema without a gateway restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from graphql import DocumentNode, GraphQLError, parse

from datatrust.errors import DatatrustError

from ._compose import compose
from ._errors import (
    CompositionError,
    IntrospectionDisabled,
    InvalidOperation,
    NotReady,
    QueryTooComplex,
    RequestTooLarge,
)
from ._execute import execute_plan
from ._limits import QueryLimits, check_document_size, check_operation
from ._overlap import answer_cross_agency, asks_cross_agency
from ._plan import PlanCache, check_variables
from ._supergraph import Supergraph
from ._transport import AiohttpTransport


@dataclass(frozen=True)
class Permitted:
    """A permit whose record is still to be written: ``record()`` writes it, or raises.

    The decision is made; only its (blocking) write remains. :meth:`Gateway.answer` runs
    ``record`` in a worker thread while the plan's node calls run, and answers with their
    data only once it has returned: if it raises, that error is the answer and the nodes'
    data is dropped, exactly as if the write had come first. Awaiting a ``Permitted``
    runs the write in a thread and waits for it, for callers that must record first.
    """

    record: Callable[[], None]

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.to_thread(self.record).__await__()


Authorize = Callable[
    [str | None, frozenset[tuple[str, str]], Mapping[str, str]],
    Awaitable[None] | Permitted | None,
]
"""``authorize(purpose, fields, headers)`` allows or raises a DatatrustError (a refusal).

It returns None (allowed), an awaitable the gateway awaits before calling any node (an
asynchronous decision), or a :class:`Permitted` (allowed; its record is written while the
nodes are called, and no data is answered unless that write succeeds). ``headers`` are the
caller's request headers, so the hook can authenticate the caller (``Authorization``)
before deciding; it must never add privileges of its own.
"""

NODE_KEEPALIVE_EXPIRY_SECONDS = 2.0
"""How long the gateway keeps an idle connection to a node for reuse.

Shorter than the node's own keep-alive (uvicorn's default is 5 s, datatrust's nodes keep
15 s), so the gateway lets a connection go before the node closes it; at equal times a
request could land on a connection the node was closing ("server disconnected").
"""


NODE_CONNECTIONS = 100
"""The most connections to nodes at once, and the most kept open for reuse.

Every one is kept alive (httpx keeps 20 by default): sixteen concurrent queries across
three nodes need up to 48, and each one closed beyond the kept ones is a new mutual TLS
handshake, paid in CPU by the gateway and the node, on the next request.
"""


def node_client(**options: Any) -> httpx.AsyncClient:
    """An HTTP client for calling nodes: every connection kept, briefer than the nodes keep it."""
    limits = httpx.Limits(
        max_connections=NODE_CONNECTIONS,
        max_keepalive_connections=NODE_CONNECTIONS,
        keepalive_expiry=NODE_KEEPALIVE_EXPIRY_SECONDS,
    )
    if "transport" not in options:
        options["transport"] = AiohttpTransport(verify=options.pop("verify", True), limits=limits)
    return httpx.AsyncClient(limits=limits, **options)


Refused = Callable[[Mapping[str, str], DatatrustError], None]
"""``on_refusal(headers, error)`` records a request refused before the authorize hook ran
(a limit, introspection turned off), so the embedding process can audit it too."""

_SDL_QUERY = "{ _service { sdl } }"
_log = logging.getLogger("datatrust.federation.gateway")


class Gateway:
    """Composes the nodes' subgraphs and answers operations across them."""

    def __init__(
        self,
        subgraphs: Mapping[str, str],
        *,
        authorize: Authorize | None = None,
        client_factory: Callable[[], httpx.AsyncClient] = node_client,
        timeout_seconds: float = 10.0,
        startup_wait_seconds: float = 30.0,
        limits: QueryLimits | None = None,
        introspection: bool = True,
        recompose_seconds: float = 30.0,
        on_refusal: Refused | None = None,
        keys_first: bool = True,
    ) -> None:
        if not subgraphs:
            raise CompositionError("the gateway needs at least one subgraph URL")
        self.urls = dict(subgraphs)
        self.authorize = authorize
        self.client_factory = client_factory
        self.timeout_seconds = timeout_seconds
        self.startup_wait_seconds = startup_wait_seconds
        self.limits = limits or QueryLimits()
        self.introspection = introspection
        self.on_refusal = on_refusal
        self.recompose_seconds = recompose_seconds
        self.keys_first = keys_first
        self.supergraph: Supergraph | None = None
        self.problems: dict[str, str] = dict.fromkeys(self.urls, "SDL not fetched yet")
        self._plans: PlanCache | None = None
        self._client: httpx.AsyncClient | None = None
        self._sdl: dict[str, str] = {}  # the SDL texts the current supergraph was composed from
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()

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
        """Fetch every node's SDL and recompose if any text changed.

        On any failure the last good supergraph keeps serving and ``problems`` (shown by
        ``/readyz``) says why. A node that does not answer while a supergraph exists is
        reported but composed from its last SDL, so one node being down never removes the
        others' fields. A new supergraph comes with a new, empty plan cache.
        """
        fetched = await asyncio.gather(
            *(self._fetch_sdl(name, url) for name, url in self.urls.items())
        )
        problems = {name: problem for name, _, problem in fetched if problem}
        if self.supergraph is None and problems:
            self.problems = problems
            listed = "; ".join(f"'{name}': {problem}" for name, problem in problems.items())
            raise NotReady(f"cannot fetch the SDL of {listed}", nodes=problems)
        sdl = {name: text if text is not None else self._sdl[name] for name, text, _ in fetched}
        if self.supergraph is not None and sdl == self._sdl:
            self._report(problems)
            return self.supergraph
        try:
            supergraph = compose(sdl)
        except CompositionError as error:
            self._report({**problems, "composition": error.message})
            raise
        changed = sorted(name for name in sdl if self._sdl.get(name) != sdl[name])
        if self.supergraph is not None:
            _log.warning(
                "recomposed the supergraph: the schema of %s changed",
                ", ".join(f"'{name}'" for name in changed),
            )
        plans = PlanCache(supergraph, keys_first=self.keys_first)
        self.supergraph, self._plans, self._sdl = supergraph, plans, sdl
        self._report(problems)
        return supergraph

    def _report(self, problems: dict[str, str]) -> None:
        """Keep ``problems`` for ``/readyz`` and log each distinct set once, not every poll."""
        if problems and problems != self.problems:
            _log.warning(
                "gateway refresh problems; serving the last good supergraph: %s",
                "; ".join(f"{name}: {problem}" for name, problem in problems.items()),
            )
        self.problems = problems

    async def watch(self) -> None:
        """Every ``recompose_seconds``, ``refresh()``; runs until cancelled (0 disables)."""
        if self.recompose_seconds <= 0:
            return
        while True:
            await asyncio.sleep(self.recompose_seconds)
            try:
                await self.refresh()
            except (NotReady, CompositionError):
                pass  # kept in ``problems`` and logged; the last good supergraph serves
            except Exception:
                _log.exception("gateway recomposition failed unexpectedly; will retry")

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

    async def _fetch_sdl(self, name: str, url: str) -> tuple[str, str | None, str | None]:
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
        """Check limits, plan, authorize, then execute; refusals come before any node call.

        Introspection is answered by the gateway itself, but only after the same authorize
        hook as any other request (it sees ``Query.__schema``/``Query.__type`` among the
        fields), and not at all when ``introspection`` is off.
        """
        supergraph, plans = self.supergraph, self._plans
        if supergraph is None or plans is None:
            reasons = "; ".join(f"{name}: {problem}" for name, problem in self.problems.items())
            raise NotReady(f"the gateway has not composed its supergraph yet ({reasons})")
        try:
            check_document_size(query, self.limits)
            check_operation(
                supergraph.schema, self._parse(query), operation_name, variables, self.limits
            )
        except (QueryTooComplex, RequestTooLarge) as refusal:
            self._refused(headers, refusal)
            raise
        if asks_cross_agency(query, self._parse(query)):  # the gateway's own, opaque values
            document = self._parse(query)
            return await answer_cross_agency(
                self, supergraph, document, variables, operation_name, headers
            )
        plan = plans.plan(query, operation_name)
        check_variables(supergraph, plan, variables)
        fields = plan.fields
        if plan.introspection is not None:
            if not self.introspection:
                refusal = IntrospectionDisabled(
                    "introspection (__schema, __type) is turned off at this gateway "
                    "(setting introspection = false); ask the trust's operators for the "
                    "schema, or query a node's { _service { sdl } }"
                )
                self._refused(headers, refusal)
                raise refusal
            fields = fields | _introspected(plan.selections)
        outcome = None
        if self.authorize is not None:
            outcome = self.authorize(_header(headers, "purpose"), fields, headers)
            if inspect.isawaitable(outcome) and not isinstance(outcome, Permitted):
                await outcome
        executing = execute_plan(
            plan,
            supergraph,
            client=self.client,
            urls=self.urls,
            variables=variables,
            headers=headers,
            timeout_seconds=self.timeout_seconds,
        )
        if isinstance(outcome, Permitted):
            return await _once_recorded(outcome, executing)
        return await executing

    def _refused(self, headers: Mapping[str, str], refusal: DatatrustError) -> None:
        """Tell the embedding process (the trust gateway audits it); raises if it cannot."""
        if self.on_refusal is not None:
            self.on_refusal(headers, refusal)

    def _parse(self, query: str) -> DocumentNode:
        """The parsed document, from a small LRU keyed by its text (limits are rechecked)."""
        document = self._documents.get(query)
        if document is not None:
            self._documents.move_to_end(query)
            return document
        try:
            document = parse(query)
        except GraphQLError as error:
            raise InvalidOperation.from_graphql([error]) from error
        self._documents[query] = document
        if len(self._documents) > _PARSED_DOCUMENTS:
            self._documents.popitem(last=False)
        return document


_PARSED_DOCUMENTS = 256


async def _once_recorded(permitted: Permitted, executing: Awaitable[dict[str, Any]]) -> Any:
    """``executing``'s answer, given only after ``permitted.record()`` returned in a thread.

    The write starts first and both run at once; if the write raises (or this request is
    cancelled), the node calls are cancelled and their data never leaves the gateway. A
    write that already started finishes in its thread even then: the decision it records
    was made.
    """
    recording = asyncio.ensure_future(asyncio.to_thread(permitted.record))
    answering = asyncio.ensure_future(executing)
    try:
        await recording
    except BaseException:
        answering.cancel()
        with contextlib.suppress(BaseException):
            await answering
        raise
    return await answering


def _introspected(selections: tuple[Any, ...]) -> frozenset[tuple[str, str]]:
    return frozenset(
        ("Query", name)
        for name in ("__schema", "__type")
        if any(getattr(selection, "name", None) == name for selection in selections)
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)
