"""The gateway over HTTP: ``/graphql``, ``/healthz``, ``/readyz`` and ``/metrics``.

Every refusal is a GraphQL error built by :func:`datatrust.errors.graphql_error`, sent as
``{"data": null, "errors": [...]}`` with the error's status hint; an unexpected exception
is logged and masked as INTERNAL, never a bare 500 page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from datatrust.errors import (
    AccessDenied,
    CallerError,
    DatatrustError,
    PurposeError,
    error_headers,
    graphql_error,
)

from ._errors import CompositionError, InvalidOperation, NotReady
from ._gateway import Authorize, Gateway

MAX_BODY_BYTES = 1_048_576
_log = logging.getLogger("datatrust.federation.gateway")


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "datatrust_gateway_requests",
            "GraphQL requests answered by the gateway, by outcome and verified purpose.",
            ["outcome", "purpose"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "datatrust_gateway_request_duration_seconds",
            "Time to answer a GraphQL request, from body read to response.",
            registry=self.registry,
        )


def create_gateway_app(
    subgraphs: dict[str, str],
    *,
    authorize: Authorize | None = None,
    client_factory: Callable[[], httpx.AsyncClient] = httpx.AsyncClient,
    timeout_seconds: float = 10.0,
    startup_wait_seconds: float = 30.0,
    readiness: Callable[[], Mapping[str, Any]] | None = None,
) -> Starlette:
    """A Starlette app answering GraphQL across ``subgraphs`` (node name -> /graphql URL).

    On startup it fetches every node's SDL and composes (retrying with backoff for up to
    ``startup_wait_seconds`` in the background if a node is not up yet); ``app.state.gateway``
    is the :class:`Gateway`, whose ``refresh()`` recomposes. ``readiness`` adds what the
    process that embeds the gateway knows to ``/readyz`` (the trust gateway: the policy
    version it decides with); a ``DatatrustError`` from it makes the gateway not ready,
    with its message as the reason.
    """
    gateway = Gateway(
        subgraphs,
        authorize=authorize,
        client_factory=client_factory,
        timeout_seconds=timeout_seconds,
        startup_wait_seconds=startup_wait_seconds,
    )
    metrics = _Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        retrying: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(min(timeout_seconds, 2.0)):
                await gateway.refresh()
        except (NotReady, CompositionError, TimeoutError):
            retrying = asyncio.create_task(gateway.start())
        try:
            yield
        finally:
            if retrying is not None:
                retrying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retrying
            await gateway.close()

    async def graphql(request: Request) -> Response:
        started = time.perf_counter()
        outcome, purpose, status = "error", "unverified", 200
        headers: dict[str, str] = {}
        try:
            query, variables, operation_name = await _read(request)
            body = await gateway.answer(query, variables, operation_name, request.headers)
            outcome = "partial" if "errors" in body else "ok"
            if authorize is not None:
                purpose = request.headers.get("purpose", "none")
        except DatatrustError as error:
            errors = error.errors if isinstance(error, InvalidOperation) else (error,)
            body = {"data": None, "errors": [graphql_error(e) for e in errors]}
            status = error.status_hint
            headers = error_headers(error)
            outcome = _outcome(error)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            _log.exception("gateway request failed unexpectedly (incident %s)", incident)
            internal = DatatrustError(
                "the gateway failed unexpectedly; its log has the details", incident=incident
            )
            body, status = {"data": None, "errors": [graphql_error(internal)]}, 500
        metrics.requests.labels(outcome=outcome, purpose=purpose).inc()
        metrics.latency.observe(time.perf_counter() - started)
        return JSONResponse(body, status_code=status, headers=headers)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        try:
            facts = dict(readiness()) if readiness is not None else {}
        except DatatrustError as error:
            return JSONResponse({"status": "not ready", "reason": error.message}, 503)
        if gateway.supergraph is None:
            return JSONResponse({"status": "not ready", "problems": gateway.problems}, 503)
        ready = {"status": "ready", "subgraphs": list(gateway.supergraph.subgraphs), **facts}
        if gateway.problems:
            ready["last_refresh_problems"] = gateway.problems
        return JSONResponse(ready)

    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app


def _outcome(error: DatatrustError) -> str:
    if isinstance(error, NotReady):
        return "not_ready"
    if isinstance(error, PurposeError | AccessDenied):
        return "refused"
    if isinstance(error, CallerError):
        return "bad_request"
    return "error"


async def _read(request: Request) -> tuple[str, dict[str, Any] | None, str | None]:
    """The query, variables and operation name of a GraphQL-over-HTTP request."""
    if request.method == "GET":
        fields: Mapping[str, Any] = dict(request.query_params)
        if "variables" in fields:
            fields = {**fields, "variables": _json(fields["variables"], "the variables parameter")}
    else:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise CallerError(
                f"the request body is over {MAX_BODY_BYTES} bytes; send a smaller query"
            )
        fields = _json(body, "the request body")
        if not isinstance(fields, dict):
            raise CallerError('the request body must be a JSON object such as {"query": "{ ... }"}')
    query, variables = fields.get("query"), fields.get("variables")
    operation_name = fields.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise CallerError('the request has no "query"; send {"query": "{ ... }"} as JSON')
    if variables is not None and not isinstance(variables, dict):
        raise CallerError('"variables" must be a JSON object mapping names to values')
    if operation_name is not None and not isinstance(operation_name, str):
        raise CallerError('"operationName" must be a string naming an operation in the query')
    return query, variables, operation_name


def _json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise CallerError(f"{what} is not valid JSON ({error}); send a JSON object") from error
