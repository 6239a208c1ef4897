"""A node's ``/graphql`` endpoint: parse, validate, decide, audit, then execute.

The node never trusts the gateway's decision: every request, including a direct
``_entities`` call, is parsed and validated against this node's own schema, the fields it
touches are put to the enforcement point, and the decision is written to the audit ledger
before any resolver runs. A refusal answers ``{"data": null, "errors": [...]}`` with the
refusal's HTTP status and never reaches the store. Unexpected errors are masked; a
denial's reason never is.

The mutual-TLS peer (``scope["state"]["peer"]``, put there by ``RequireDirectoryPeer``
after the trust directory accepted the client certificate) is handed to the resolvers in
``NodeContext.peer``. Nothing a client sends can set it: without mutual TLS it is None,
and fields that answer only the gateway refuse. A resolver that refuses after the policy
permitted (``NodeContext.refuse``) makes the request's audit entry a deny.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSyntaxError,
    get_operation_ast,
    parse,
    validate,
)
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse

from datatrust._tracing import current_trace_id
from datatrust.errors import (
    AccessDenied,
    DatatrustError,
    QueryError,
    StoreError,
    error_headers,
    graphql_error,
)
from datatrust.federation._access import OperationAccess, operation_access
from datatrust.federation.subgraphs._base import NodeContext, NodeKeys, SubgraphSchema
from datatrust.policies import (
    AccessRequest,
    Permit,
    PolicyRuntime,
    Requester,
    describe_fields,
)
from datatrust.trust import AuditEntry

__all__ = ["RequestOutcome", "SubgraphEndpoint", "read_graphql_request"]

logger = logging.getLogger("datatrust.node")
PSEUDONYMISABLE = frozenset({"Person.pseudonym"})
ANALYSIS_CACHE_SIZE = 512
"""The fields a node can give in an agreement's own pseudonymised form."""
MAX_BODY_BYTES = 1_000_000
CALLER_GONE_STATUS = 499
"""The status of an answer nobody receives: the caller went away (nginx's convention)."""
CANCELLED_REASON = (
    "cancelled: the caller went away (disconnected or gave up) before the answer; the "
    "rest of the work was stopped and nothing was returned"
)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What the endpoint reports to metrics: outcome ("ok", "denied", "bad_request"...)."""

    outcome: str
    purpose: str | None
    seconds: float


async def read_graphql_request(request: Request) -> tuple[str, dict[str, Any], str | None]:
    """The (query, variables, operationName) of a GraphQL-over-HTTP request, or QueryError."""
    if request.method == "GET":
        params = request.query_params
        raw_variables: Any = params.get("variables")
        try:
            variables = json.loads(raw_variables) if raw_variables else {}
        except (json.JSONDecodeError, RecursionError) as error:  # too deep recurses
            raise QueryError(f"query parameter 'variables' is not JSON: {error}") from error
        payload: Any = {
            "query": params.get("query"),
            "variables": variables,
            "operationName": params.get("operationName"),
        }
    else:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise QueryError(f"request body is larger than {MAX_BODY_BYTES} bytes")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
            raise QueryError(f"request body is not JSON: {error}") from error
    _refuse_lone_surrogates(raw_variables if request.method == "GET" else body, payload)
    if not isinstance(payload, dict):
        raise QueryError("request body must be a JSON object with a 'query' string")
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise QueryError('request has no \'query\': send {"query": "{ ... }"}')
    variables = payload.get("variables") or {}
    if not isinstance(variables, dict):
        raise QueryError("'variables' must be a JSON object")
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise QueryError("'operationName' must be a string")
    return query, variables, operation_name


def _refuse_lone_surrogates(raw: str | bytes | None, payload: Any) -> None:
    """QueryError if a string holds a lone surrogate (JSON's ``"\\ud800"``).

    It is no character: echoed in an answer (an area code, an error message) it cannot be
    encoded, and the response would fail after the request was audited. Only JSON text
    with a surrogate escape in it can hold one, so only such text is checked in full.
    """
    if isinstance(raw, str):
        raw = raw.encode(errors="surrogatepass")
    if not raw or not _SURROGATE_ESCAPE.search(raw):
        return
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise QueryError(
            "the request has a lone surrogate escape such as \\ud800, which is no character; "
            "send text as UTF-8"
        ) from error


def _refusal(error: DatatrustError) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [graphql_error(error)]},
        error.status_hint,
        headers=error_headers(error),
    )


def _format_error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if original is None or isinstance(original, DatatrustError | GraphQLError):
        formatted = error.formatted
        if isinstance(original, DatatrustError):
            formatted["extensions"] = graphql_error(original)["extensions"]
        return formatted
    logger.error("unexpected error in resolver", exc_info=original)
    return {
        "message": "Unexpected error.",
        "path": error.path,
        "extensions": {"code": "INTERNAL"},
    }


class SubgraphEndpoint:
    """The ASGI endpoint of one node's subgraph, with its enforcement and audit.

    ``decides_data_use`` False serves a schema of platform actions (the consent API)
    whose resolvers each authorise with Polar; every request is still authenticated and
    audited, and a refusal inside a resolver is audited as a deny.
    """

    def __init__(
        self,
        *,
        schema: SubgraphSchema | strawberry.Schema,
        node_id: str,
        engine: Engine,
        runtime: PolicyRuntime,
        authenticate: Callable[[str | None], Requester],
        audit: Callable[[AuditEntry], object],
        keys: NodeKeys | None = None,
        opt_out_list_date: Callable[[], str | None] = lambda: None,
        observe: Callable[[RequestOutcome], None] = lambda outcome: None,
        decides_data_use: bool = True,
    ) -> None:
        self.schema = schema
        self.entity_keys = getattr(schema, "entity_key_fields", {})
        self.decides_data_use = decides_data_use
        self._analyses: dict[str, tuple[DocumentNode, list[GraphQLError], OperationAccess]] = {}
        self.node_id = node_id
        self.engine = engine
        self.runtime = runtime
        self.authenticate = authenticate
        self.audit = audit
        self.keys = keys
        self.opt_out_list_date = opt_out_list_date
        self.observe = observe

    async def __call__(self, request: Request) -> JSONResponse:
        started = time.perf_counter()
        purpose = request.headers.get("purpose")
        response, outcome = await self._answer(request, purpose)
        self.observe(RequestOutcome(outcome, purpose, time.perf_counter() - started))
        return response

    async def _answer(self, request: Request, purpose: str | None) -> tuple[JSONResponse, str]:
        try:
            query, variables, operation_name = await read_graphql_request(request)
            document, errors, access = self._analyse(query)
            if errors:
                return JSONResponse(
                    {"data": None, "errors": [_validation_error(e) for e in errors]}, 400
                ), "bad_request"
            _check_operation_name(document, operation_name)
        except QueryError as error:
            return _refusal(error), "bad_request"

        shape = _Shape(
            purpose,
            operation_name or _operation_name(document),
            access,
            request.headers.get("x-request-id"),
        )
        context = NodeContext(
            engine=self.engine,
            permit=None,
            node_id=self.node_id,
            keys=self.keys,
            register=self.runtime.register,
            peer=_peer(request),
        )
        if not access.is_metadata_only:
            try:
                context.requester = self.authenticate(request.headers.get("authorization"))
                if self.decides_data_use and not access.is_mutation:
                    context.permit = await self._decide(shape, context.requester)
            except DatatrustError as refusal:
                try:
                    await self._record(shape, refusal, context)
                except DatatrustError as error:
                    return _refusal(error), "error"
                outcome = "unauthenticated" if refusal.status_hint == 401 else "denied"
                return _refusal(refusal), outcome

        execution = self.schema.execute(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
        )
        try:  # a mutation runs to its end: its write is one transaction, audited as done
            watched = not access.is_mutation
            result = await (_unless_the_caller_leaves(request, execution) if watched else execution)
        except asyncio.CancelledError:  # this request's own task (the server stopping)
            self._record_cancelled(shape, context)
            raise
        if result is None:  # the caller went away: the work stopped, nothing is returned
            try:
                await self._record(
                    shape, context.refused or context.permit, context, cancelled=True
                )
            except DatatrustError as error:
                return _refusal(error), "error"
            return JSONResponse({"data": None}, CALLER_GONE_STATUS), "cancelled"
        if not access.is_metadata_only:
            try:
                decision = context.refused or context.permit or _action_outcome(result.errors)
                await self._record(shape, decision, context)
            except DatatrustError as error:
                return _refusal(error), "error"
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [_format_error(e) for e in result.errors]
        if context.refused is not None:  # refused inside a resolver: a denial, with its status
            refused = context.refused
            return JSONResponse(body, refused.status_hint, headers=error_headers(refused)), (
                "denied"
            )
        if context.permit is not None and context.permit.obligations.min_cell:
            body["extensions"] = {"disclosureControl": _disclosure_note(context)}
        return JSONResponse(body), "partial" if result.errors else "ok"

    def _analyse(self, query: str) -> tuple[DocumentNode, list[GraphQLError], OperationAccess]:
        """Parse, validate and analyse ``query`` once per distinct text (a small LRU).

        Busy clients send the same few documents again and again; the analysis depends on
        the text and this node's schema only, never on who asks, so it is safe to reuse.
        """
        cached = self._analyses.get(query)
        if cached is None:
            document = _parse(query)
            errors = validate(self.schema._schema, document)
            access = operation_access(self.schema._schema, document, self.entity_keys)
            cached = (document, errors, access)
            if len(self._analyses) >= ANALYSIS_CACHE_SIZE:
                self._analyses.pop(next(iter(self._analyses)))
            self._analyses[query] = cached
        return cached

    async def _decide(self, shape: _Shape, requester: Requester) -> Permit:
        """The permit for this request: from the cache, else evaluated off the event loop."""
        request = AccessRequest(
            purpose=shape.purpose,
            node=self.node_id,
            fields=shape.access.data_fields,
            requester=requester,
            aggregate=shape.access.is_aggregate,
        )
        permit = self.runtime.cached(request)
        if permit is None:
            permit = await asyncio.to_thread(self.runtime.decide, request)
        unsupported = sorted(set(permit.obligations.pseudonymise) - PSEUDONYMISABLE)
        if unsupported:  # an obligation the node cannot meet refuses, never passes data as is
            raise AccessDenied(
                f"access denied: agreement {permit.agreement} asks for {', '.join(unsupported)} "
                "in pseudonymised form, which this node can only give for Person.pseudonym",
                policy_version=permit.policy_version,
            )
        return permit

    def _record_cancelled(self, shape: _Shape, context: NodeContext) -> None:
        """The audit entry of a request cancelled from outside; a failure is only logged,
        since the cancellation goes on and nothing is returned either way."""
        with contextlib.suppress(DatatrustError):  # _write has logged it
            entry = self._entry(shape, context.refused or context.permit, context, cancelled=True)
            if entry is not None:
                self._write(entry)

    async def _record(
        self,
        shape: _Shape,
        decision: Permit | DatatrustError | None,
        context: NodeContext,
        *,
        cancelled: bool = False,
    ) -> None:
        """Write the decision to the ledger; a ledger that cannot be written refuses.

        The write (a commit, an fsync) runs off the event loop, so the node goes on
        serving meanwhile, and concurrent requests' entries share one commit (the ledger's
        group commit); the response still leaves only once its entry is written.
        """
        entry = self._entry(shape, decision, context, cancelled=cancelled)
        if entry is not None:
            await asyncio.to_thread(self._write, entry)

    def _entry(
        self,
        shape: _Shape,
        decision: Permit | DatatrustError | None,
        context: NodeContext,
        *,
        cancelled: bool = False,
    ) -> AuditEntry | None:
        """The ledger entry of a decision (None for metadata-only requests).

        Called after execution for an allowed request, so the entry holds what flowed
        (rows, subjects); the response leaves only once the entry is written. A refusal
        made inside a resolver is a deny that still names the agreement that permitted
        the request, and what (if anything) other fields of the operation read.
        ``cancelled``: the caller went away during execution; the entry keeps the
        decision, says so (code ``CANCELLED``) and counts what was read before the work
        stopped, none of which was returned.
        """
        if shape.access.is_metadata_only:
            return None
        permitted = decision is None or isinstance(decision, Permit)
        requester = context.requester
        disclosed = context.disclosed
        permit = context.permit if isinstance(context.permit, Permit) else None
        refusal = decision if isinstance(decision, DatatrustError) else None
        reasons = [*permit.reasons] if permit and not refusal else _refusal_reasons(refusal)
        entry = AuditEntry(
            node_id=self.node_id,
            requester=requester.label if requester else "unauthenticated",
            purpose=(shape.purpose or "")[:64] or None,
            operation=shape.operation_name or "anonymous",
            fields=describe_fields(shape.access.fields),
            outcome="permit" if permitted else "deny",
            code="CANCELLED" if cancelled else "OK" if refusal is None else refusal.code,
            reason=CANCELLED_REASON if cancelled else _reason(permit, refusal),
            policy_version=permit.policy_version if permit else self.runtime.policy_version,
            agency=requester.agency if requester else None,
            roles=requester.roles if requester else (),
            client_id=requester.client_id if requester else None,
            subject=requester.subject if requester else None,
            aggregate=shape.access.is_aggregate,
            agreement=permit.agreement if permit else None,
            reasons=(*reasons, *context.notes),
            row_count=disclosed.rows,
            subject_count=disclosed.subject_count,
            subjects=tuple(sorted(disclosed.subjects)),
            request_id=(shape.request_id or "")[:128] or None,
            opt_out_list_date=self.opt_out_list_date() if permit else None,
            trace_id=current_trace_id(),
        )
        return entry

    def _write(self, entry: AuditEntry) -> None:
        try:
            self.audit(entry)
        except Exception as error:
            logger.exception("audit ledger write failed")
            raise StoreError(
                "request refused: the audit ledger could not be written, "
                "and no data is returned unaudited"
            ) from error


async def _unless_the_caller_leaves(
    request: Request, execution: Coroutine[Any, Any, Any]
) -> Any | None:
    """The result of ``execution``, or None if the caller disconnects first.

    A caller that gave up (the gateway past its node deadline, a client that went away)
    still had its request executed to the end before, adding to the load that made it
    give up. Now the HTTP server's ``http.disconnect`` cancels the execution task: work
    already awaiting stops there, and store work off the event loop is interrupted
    (``_offloop``). Returns only once the execution has stopped, so the audit entry
    written next counts everything that was read.
    """
    if await request.is_disconnected():  # gone while it waited its turn: nothing runs
        execution.close()
        return None
    task = asyncio.ensure_future(execution)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _cancelled(task)
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    await _cancelled(task)
    return None


async def _disconnected(request: Request) -> None:
    """Returns when the client has disconnected (the request body is read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _cancelled(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has stopped, through any cancellation of our own."""
    task.cancel()
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            continue
    if not task.cancelled():
        task.exception()  # retrieved: an error after the caller left needs no log


@dataclass(frozen=True, slots=True)
class _Shape:
    purpose: str | None
    operation_name: str | None
    access: OperationAccess
    request_id: str | None


def _peer(request: Request) -> Any:
    """The ``DirectoryPeer`` the mutual-TLS directory check accepted, or None without one."""
    state = request.scope.get("state")
    return state.get("peer") if isinstance(state, dict) else None


def _reason(permit: Permit | None, refusal: DatatrustError | None) -> str:
    if refusal is not None:
        return refusal.message
    if permit is not None and permit.reasons:
        return permit.reasons[0]
    return "permitted"


def _refusal_reasons(refusal: DatatrustError | None) -> list[str]:
    if refusal is None:
        return []
    reasons = refusal.details.get("reasons")
    return [str(r) for r in reasons] if isinstance(reasons, list) else [refusal.message]


def _action_outcome(errors: list[GraphQLError] | None) -> DatatrustError | None:
    """A mutation's audit outcome: refused if a resolver refused it, else done."""
    for error in errors or ():
        if isinstance(error.original_error, DatatrustError):
            return error.original_error
    return None


def _disclosure_note(context: NodeContext) -> dict[str, Any]:
    obligations = context.permit.obligations if context.permit else None
    return {
        "method": "cell-key perturbation, suppression below the minimum cell size, rounding",
        "minCellSize": obligations.min_cell if obligations else 0,
        "roundedTo": obligations.round_to if obligations else 0,
        "suppressedCells": context.disclosed.suppressed_cells,
    }


def _operation_name(document) -> str | None:
    """The name the document gives its operation, when it has exactly one."""
    names = [d.name.value for d in document.definitions if getattr(d, "operation", None) and d.name]
    return names[0] if len(names) == 1 else None


def _check_operation_name(document: DocumentNode, operation_name: str | None) -> None:
    """QueryError unless ``operationName`` picks one operation (strawberry would raise: a 500)."""
    if get_operation_ast(document, operation_name) is not None:
        return
    if operation_name is not None:
        raise QueryError(f"the query has no operation named {operation_name[:64]!r}")
    raise QueryError("the query has several operations: name the one to run in 'operationName'")


def _parse(query: str):
    try:
        return parse(query, max_tokens=10_000)
    except GraphQLSyntaxError as error:
        raise QueryError(
            f"query does not parse: {error.message}",
            locations=[{"line": loc.line, "column": loc.column} for loc in (error.locations or [])],
        ) from error


def _validation_error(error: GraphQLError) -> dict[str, Any]:
    formatted = error.formatted
    formatted["extensions"] = {"code": QueryError.code}
    return formatted
