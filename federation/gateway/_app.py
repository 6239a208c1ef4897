"""The gateway over HTTP: ``/graphql``, ``/healthz``, ``/readyz`` and ``/metrics``.

Every refusal is a GraphQL error built by :func:`datatrust.errors.graphql_error`, sent as
``{"data": null, "errors": [...]}`` with the error's status hint; an unexpected exception
is logged and masked as INTERNAL, never a bare 500 page.

A JSON array body is a batch (GraphQL-over-HTTP batching, as Apollo clients send it): each
operation is answered on its own and the answers come back as an array in the same order.
Every request gets an id (the caller's ``X-Request-Id`` when it is a sane token, else a new
one) that is forwarded to every node and returned in the response's ``X-Request-Id``, so
the gateway's and every node's audit entries for one request can be found together. When
the client goes away before the answer is ready, the node calls still in flight are
cancelled rather than left to run for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
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
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from datatrust._tracing import ServerSpans, bind_request_id
from datatrust.errors import (
    AccessDenied,
    CallerError,
    DatatrustError,
    PurposeError,
    error_headers,
    graphql_error,
)

from ._errors import (
    CompositionError,
    IntrospectionDisabled,
    InvalidOperation,
    NotReady,
    QueryTooComplex,
    RequestTooLarge,
)
from ._gateway import Authorize, Gateway, Refused, node_client
from ._json import FastJSONResponse
from ._limits import QueryLimits, check_batch_size

MAX_BODY_BYTES = 1_048_576
REQUEST_ID_HEADER = "X-Request-Id"
CLIENT_CLOSED_REQUEST = 499
"""The status logged for a request whose client left first (nginx's convention)."""

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_log = logging.getLogger("datatrust.federation.gateway")
_Answer = tuple[dict[str, Any], int, dict[str, str]]


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
    client_factory: Callable[[], httpx.AsyncClient] = node_client,
    timeout_seconds: float = 10.0,
    startup_wait_seconds: float = 30.0,
    readiness: Callable[[], Mapping[str, Any]] | None = None,
    limits: QueryLimits | None = None,
    introspection: bool = True,
    on_refusal: Refused | None = None,
    recompose_seconds: float = 30.0,
    keys_first: bool = True,
) -> Starlette:
    """A Starlette app answering GraphQL across ``subgraphs`` (node name -> /graphql URL).

    On startup it fetches every node's SDL and composes (retrying with backoff for up to
    ``startup_wait_seconds`` in the background if a node is not up yet); ``app.state.gateway``
    is the :class:`Gateway`, whose ``refresh()`` recomposes. ``readiness`` adds what the
    process that embeds the gateway knows to ``/readyz`` (the trust gateway: the policy
    version it decides with); a ``DatatrustError`` from it makes the gateway not ready,
    with its message as the reason.

    ``limits`` bound every operation (and batch) before any node is called;
    ``introspection`` false refuses ``__schema``/``__type`` (``on_refusal`` hears of
    both kinds of refusal, for the embedding process's audit); every ``recompose_seconds``
    (0: never) the nodes' SDL is fetched again and the supergraph recomposed if it changed.
    ``keys_first`` chooses the plans that ask every node at once (see ``plan_operation``).
    """
    gateway = Gateway(
        subgraphs,
        authorize=authorize,
        client_factory=client_factory,
        timeout_seconds=timeout_seconds,
        startup_wait_seconds=startup_wait_seconds,
        limits=limits,
        introspection=introspection,
        on_refusal=on_refusal,
        recompose_seconds=recompose_seconds,
        keys_first=keys_first,
    )
    metrics = _Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        background: list[asyncio.Task[None]] = [asyncio.create_task(gateway.watch())]
        try:
            async with asyncio.timeout(min(timeout_seconds, 2.0)):
                await gateway.refresh()
        except (NotReady, CompositionError, TimeoutError):
            background.append(asyncio.create_task(gateway.start()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gateway.close()

    async def answer(fields: Any, headers: Mapping[str, str]) -> _Answer:
        """One operation's body, status and extra headers; every failure becomes a body."""
        outcome, purpose = "error", "unverified"
        try:
            query, variables, operation_name = _operation(fields)
            body = await gateway.answer(query, variables, operation_name, headers)
            outcome = "partial" if "errors" in body else "ok"
            if authorize is not None:
                purpose = headers.get("purpose", "none")
            return body, 200, {}
        except DatatrustError as error:
            outcome = _outcome(error)
            return _refusal(error)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            _log.exception("gateway request failed unexpectedly (incident %s)", incident)
            internal = DatatrustError(
                "the gateway failed unexpectedly; its log has the details", incident=incident
            )
            return {"data": None, "errors": [graphql_error(internal)]}, 500, {}
        finally:
            metrics.requests.labels(outcome=outcome, purpose=purpose).inc()

    async def graphql(request: Request) -> Response:
        started = time.perf_counter()
        request_id = incoming_request_id(request.headers)
        bind_request_id(request_id)
        headers = {**dict(request.headers.items()), "x-request-id": request_id}
        try:
            try:
                operations, batched = await _read(request, gateway.limits)
            except DatatrustError as error:
                metrics.requests.labels(outcome=_outcome(error), purpose="unverified").inc()
                body, status, extra = _refusal(error)
                return JSONResponse(body, status, {**extra, REQUEST_ID_HEADER: request_id})
            answering = asyncio.ensure_future(
                asyncio.gather(*(answer(fields, headers) for fields in operations))
            )
            answers = await _unless_disconnected(request, answering)
        except (ClientDisconnect, _ClientGone):
            metrics.requests.labels(outcome="cancelled", purpose="unverified").inc()
            _log.info("request %s: the client went away; its node calls were cancelled", request_id)
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        finally:
            metrics.latency.observe(time.perf_counter() - started)
        if batched:
            return FastJSONResponse(
                [body for body, _, _ in answers], headers={REQUEST_ID_HEADER: request_id}
            )
        ((body, status, extra),) = answers
        return FastJSONResponse(body, status, {**extra, REQUEST_ID_HEADER: request_id})

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
        middleware=[Middleware(ServerSpans, component="gateway")],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.metrics_registry = metrics.registry
    return app


def incoming_request_id(headers: Mapping[str, str]) -> str:
    """The caller's ``X-Request-Id`` if it is a sane token, else a new uuid4 hex.

    Sane is 1 to 128 characters of ``[A-Za-z0-9._:-]``: anything else (a log-injection
    attempt, a whole JSON document) is replaced, never truncated into something misleading.
    """
    given = next((v for k, v in headers.items() if k.lower() == "x-request-id"), None)
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _refusal(error: DatatrustError) -> _Answer:
    errors = error.errors if isinstance(error, InvalidOperation) else (error,)
    body = {"data": None, "errors": [graphql_error(e) for e in errors]}
    return body, error.status_hint, error_headers(error)


class _ClientGone(Exception):
    """The client sent ``http.disconnect`` before its answer was ready."""


async def _unless_disconnected(request: Request, answering: asyncio.Future[Any]) -> Any:
    """``answering``'s result, or _ClientGone after cancelling it if the client leaves first.

    The request body has been read, so the next ASGI message can only be the disconnect
    (servers block ``receive()`` until then); watching for it alongside the answer is how
    node calls for a departed client get cancelled instead of running to their timeout.
    """
    watching = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({answering, watching}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        answering.cancel()
        raise
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    if answering in done:
        return answering.result()
    answering.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await answering
    raise _ClientGone


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _outcome(error: DatatrustError) -> str:
    if isinstance(error, NotReady):
        return "not_ready"
    if isinstance(error, PurposeError | AccessDenied | IntrospectionDisabled):
        return "refused"
    if isinstance(error, QueryTooComplex | RequestTooLarge):
        return "over_limit"
    if isinstance(error, CallerError):
        return "bad_request"
    return "error"


async def _read(request: Request, limits: QueryLimits) -> tuple[list[Any], bool]:
    """The operations of a GraphQL-over-HTTP request, and whether it was a batch.

    Each operation is the JSON value sent for it, checked later by :func:`_operation` so
    that one bad entry in a batch fails only its own answer.
    """
    if request.method == "GET":
        fields: dict[str, Any] = dict(request.query_params)
        if "variables" in fields:
            fields = {**fields, "variables": _json(fields["variables"], "the variables parameter")}
        return [fields], False
    body = await _body(request)
    fields = _json(body, "the request body")
    if isinstance(fields, list) and fields:
        check_batch_size(len(fields), limits)
        return fields, True
    if not isinstance(fields, dict):
        raise CallerError(
            'the request body must be a JSON object such as {"query": "{ ... }"}, '
            "or a non-empty array of them for a batch"
        )
    return [fields], False


async def _body(request: Request) -> bytes:
    """The body, refused as soon as it passes MAX_BODY_BYTES rather than after reading it."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestTooLarge(
                f"the request body is over {MAX_BODY_BYTES:,} bytes; send a smaller query "
                "or a smaller batch",
                limit="body_bytes",
                maximum=MAX_BODY_BYTES,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _operation(fields: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    """The query, variables and operation name of one operation's JSON object."""
    if not isinstance(fields, dict):
        raise CallerError(
            'each operation of a batch must be a JSON object such as {"query": "{ ... }"}'
        )
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
        value = json.loads(text)
    except ValueError as error:
        raise CallerError(f"{what} is not valid JSON ({error}); send a JSON object") from error
    except RecursionError as error:  # json's parser recurses per nesting level: a 500 unless caught
        raise CallerError(f"{what} is JSON nested too deeply; send a JSON object") from error
    if _SURROGATE_ESCAPE.search(
        text if isinstance(text, bytes) else text.encode(errors="surrogatepass")
    ):
        try:  # a lone one cannot be encoded: in a size check, an answer, a node call
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise CallerError(
                f"{what} has a lone surrogate escape such as \\ud800, which is no character; "
                "send text as UTF-8"
            ) from error
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""``\\uD800``-``\\uDFFF`` in JSON text: a surrogate, which Python decodes alone if unpaired."""
