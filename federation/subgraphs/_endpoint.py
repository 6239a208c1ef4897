"""A node's ``/graphql`` endpoint: parse, validate, decide, audit, then execute.

The node never trusts the gateway's decision: every request, including a direct
``_entities`` call, is parsed and validated against this node's own schema, the fields it
touches are put to the enforcement point, and the decision is written to the audit ledger
before any resolver runs. A refusal answers ``{"data": null, "errors": [...]}`` with the
refusal's HTTP status and never reaches the store. Unexpected errors are masked; a
denial's reason never is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError, parse, validate
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse

from datatrust.errors import (
    DatatrustError,
    QueryError,
    StoreError,
    error_headers,
    graphql_error,
)
from datatrust.federation._access import operation_access
from datatrust.federation.subgraphs._base import NodeContext, SubgraphSchema
from datatrust.policies import (
    AccessRequest,
    DataUsePolicy,
    Permit,
    Requester,
    decide,
    describe_fields,
)
from datatrust.trust import AuditEntry, PurposeRegister

__all__ = ["RequestOutcome", "SubgraphEndpoint", "read_graphql_request"]

logger = logging.getLogger("datatrust.node")
MAX_BODY_BYTES = 1_000_000


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
        except json.JSONDecodeError as error:
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
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise QueryError(f"request body is not JSON: {error}") from error
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
    """The ASGI endpoint of one node's subgraph, with its enforcement and audit."""

    def __init__(
        self,
        *,
        schema: SubgraphSchema,
        node_id: str,
        engine: Engine,
        register: PurposeRegister,
        policy: DataUsePolicy,
        authenticate: Callable[[str | None], Requester],
        audit: Callable[[AuditEntry], object],
        observe: Callable[[RequestOutcome], None] = lambda outcome: None,
    ) -> None:
        self.schema = schema
        self.node_id = node_id
        self.engine = engine
        self.register = register
        self.policy = policy
        self.authenticate = authenticate
        self.audit = audit
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
            document = _parse(query)
            errors = validate(self.schema._schema, document)
            if errors:
                return JSONResponse(
                    {"data": None, "errors": [_validation_error(e) for e in errors]}, 400
                ), "bad_request"
        except QueryError as error:
            return _refusal(error), "bad_request"

        access = operation_access(self.schema._schema, document)
        permit: Permit | None = None
        if not access.is_metadata_only:
            requester: Requester | None = None
            try:
                requester = self.authenticate(request.headers.get("authorization"))
                permit = decide(
                    AccessRequest(
                        purpose=purpose,
                        node=self.node_id,
                        fields=access.fields,
                        requester=requester,
                    ),
                    self.register,
                    self.policy,
                )
            except DatatrustError as refusal:
                try:
                    self._record(purpose, operation_name, access.fields, refusal, requester)
                except DatatrustError as error:
                    return _refusal(error), "error"
                outcome = "unauthenticated" if refusal.status_hint == 401 else "denied"
                return _refusal(refusal), outcome
            try:
                self._record(purpose, operation_name, access.fields, permit, requester)
            except DatatrustError as error:
                return _refusal(error), "error"

        result = await self.schema.execute(
            query,
            variable_values=variables,
            context_value=NodeContext(engine=self.engine, permit=permit, node_id=self.node_id),
            operation_name=operation_name,
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [_format_error(e) for e in result.errors]
        return JSONResponse(body), "partial" if result.errors else "ok"

    def _record(
        self,
        purpose: str | None,
        operation_name: str | None,
        fields: frozenset[tuple[str, str]],
        decision: Permit | DatatrustError,
        requester: Requester | None,
    ) -> None:
        """Write the decision to the ledger; a ledger that cannot be written refuses."""
        permitted = isinstance(decision, Permit)
        entry = AuditEntry(
            node_id=self.node_id,
            requester=requester.label if requester else "unauthenticated",
            purpose=(purpose or "")[:64] or None,
            operation=operation_name or "anonymous",
            fields=describe_fields(fields),
            outcome="permit" if permitted else "deny",
            code="OK" if permitted else decision.code,
            reason="permitted" if permitted else decision.message,
            policy_version=self.policy.version,
        )
        try:
            self.audit(entry)
        except Exception as error:
            logger.exception("audit ledger write failed")
            raise StoreError(
                "request refused: the audit ledger could not be written, "
                "and no data is returned unaudited"
            ) from error


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
