"""Sending a fuzzed request to a running trust and checking what must hold for every one.

For every request, at the gateway and at each node: no 5xx, an answer within the client
timeout (no hang), a JSON body that is a GraphQL response (``data``/``errors``) or a JSON
error body, and no unaudited data: a non-null data leaf a node holds comes only with that
node's permit entry for this very request, and every request that reached the policy left
an entry in the ledger of the part that decided it. The ledgers are the real SQLite audit
tables the trust writes; requests are sent one at a time, so the entries a request made
are those after the ledger's last sequence number before it was sent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    parse,
)
from hypothesis import event

from tests.fuzz._strategies import FuzzRequest

__all__ = ["CLIENT_TIMEOUT_SECONDS", "Ledgers", "Target", "check", "send"]

CLIENT_TIMEOUT_SECONDS = 10.0
NODES = ("council", "health", "social-care")
POLICY_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "ACCESS_DENIED",
        "FORBIDDEN",
        "PURPOSE_INVALID",
        "PURPOSE_MISSING",
        "PURPOSE_UNKNOWN",
        "RATE_LIMITED",
    }
)
"""Error codes only the authentication and the policy give: such a request was decided."""
METADATA_ROOTS = frozenset({"_service", "__typename", "__schema", "__type"})


@dataclass(frozen=True)
class Row:
    seq: int
    outcome: str
    code: str
    request_id: str | None


class Ledgers:
    """The audit tables of the gateway and the three nodes, read from their SQLite files."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def _rows(self, part: str, after: int) -> list[Row]:
        with sqlite3.connect(self.data_dir / f"{part}.db") as db:
            rows = db.execute(
                "select seq, outcome, code, request_id from audit_event where seq > ? order by seq",
                (after,),
            ).fetchall()
        return [Row(*row) for row in rows]

    def marks(self) -> dict[str, int]:
        marks = {}
        for part in ("gateway", *NODES):
            with sqlite3.connect(self.data_dir / f"{part}.db") as db:
                marks[part] = db.execute(
                    "select coalesce(max(seq), 0) from audit_event"
                ).fetchone()[0]
        return marks

    def since(self, marks: Mapping[str, int]) -> dict[str, list[Row]]:
        return {part: self._rows(part, after) for part, after in marks.items()}


@dataclass(frozen=True)
class Target:
    """What is fuzzed: the gateway or one node, its URL, schema, and who holds each field."""

    name: str
    url: str
    schema: GraphQLSchema
    owners: Mapping[tuple[str, str], frozenset[str]]
    """(type, field) -> the nodes whose subgraph defines it (any node when none does)."""

    @property
    def is_gateway(self) -> bool:
        return self.name == "gateway"


def send(client: httpx.Client, target: Target, request: FuzzRequest) -> httpx.Response:
    """The response, or AssertionError naming the request when none came in time (a hang)."""
    try:
        return client.request(
            request.method,
            target.url,
            content=request.content,
            params=list(request.params) or None,
            headers=list(request.headers),
            timeout=CLIENT_TIMEOUT_SECONDS,
        )
    except httpx.TimeoutException as error:
        raise AssertionError(
            f"{target.name} gave no answer within {CLIENT_TIMEOUT_SECONDS:g} s ({error!r})"
        ) from error


def check(
    target: Target, request: FuzzRequest, response: httpx.Response, new: Mapping[str, list[Row]]
) -> None:
    """Every property a fuzzed request's response and audit entries must have."""
    assert response.status_code < 500, (
        f"{target.name} answered {response.status_code}: {response.text[:1000]}"
    )
    assert response.status_code != 404, "the GraphQL endpoint must exist"
    assert response.headers.get("content-type", "").startswith("application/json"), (
        f"{target.name} answered {response.headers.get('content-type')!r}: {response.text[:500]}"
    )
    body = response.json()
    answers = body if isinstance(body, list) else [body]
    assert isinstance(body, dict) or (target.is_gateway and request.kind == "batch"), body
    for answer in answers:
        _check_shape(answer, response.status_code)
    request_id = request.request_id or (
        response.headers.get("x-request-id") if target.is_gateway else None
    )
    if request_id is not None:
        for part, rows in new.items():
            assert all(row.request_id == request_id for row in rows), (
                f"{part}'s entries for this request carry another request id: {rows}"
            )
    operations = _operations(request, len(answers))
    decided = [answer for answer in answers if _reached_policy(target, answer, operations)]
    own = new[target.name]
    assert len(own) >= len(decided), (
        f"{len(decided)} operation(s) reached {target.name}'s policy, but its ledger gained "
        f"{len(own)} entr(y/ies): {own}"
    )
    for answer, operation in zip(answers, operations, strict=False):
        if operation is None or not isinstance(answer.get("data"), dict):
            continue
        leaves = data_leaves(target.schema, *operation, answer["data"])
        if leaves:
            event("answered agency data")
        for type_name, field_name in leaves:
            holders = (
                frozenset({target.name})
                if not target.is_gateway
                else target.owners.get((type_name, field_name), frozenset(NODES))
            )
            assert any(_permitted(new[node]) for node in holders), (
                f"{target.name} answered {type_name}.{field_name} (held at "
                f"{', '.join(sorted(holders))}) without a permit entry there for this request; "
                f"new entries: {dict(new)}"
            )
        if target.is_gateway and _has_leaf(target.schema, operation, answer["data"]):
            assert _permitted(new["gateway"]), f"the gateway's ledger has no permit: {new}"


def _check_shape(answer: Any, status: int) -> None:
    """A GraphQL response (``data`` and/or ``errors``) or a JSON error body."""
    assert isinstance(answer, dict), answer
    assert "data" in answer or "errors" in answer or "error" in answer, answer
    assert set(answer) <= {"data", "errors", "extensions", "error"}, answer
    if "errors" in answer:
        errors = answer["errors"]
        assert isinstance(errors, list), answer
        assert errors, answer
        assert all(isinstance(e, dict) and isinstance(e.get("message"), str) for e in errors)
    if status != 200:
        assert answer.get("data") is None or "errors" in answer, (status, answer)


def _permitted(rows: Iterable[Row]) -> bool:
    return any(row.outcome == "permit" for row in rows)


def _codes(answer: Mapping[str, Any]) -> set[str]:
    return {
        str((error.get("extensions") or {}).get("code"))
        for error in answer.get("errors") or ()
        if isinstance(error, dict)
    }


def _reached_policy(
    target: Target, answer: Mapping[str, Any], operations: list[tuple | None]
) -> bool:
    """Refused by authentication or policy, or answered data that is not schema metadata."""
    if _codes(answer) & POLICY_CODES and answer.get("data") is None:
        return True
    data = answer.get("data")
    if not isinstance(data, dict):
        return False
    if target.is_gateway:
        return True  # the gateway decides (and audits) every operation it answers
    return any(_root_field(operations, key) not in METADATA_ROOTS for key in data)


def _root_field(operations: list[tuple | None], key: str) -> str:
    """The root field answered under response key ``key`` (an alias names another field)."""
    for operation in operations:
        if operation is None:
            continue
        document, name = parse(operation[0]), operation[1]
        chosen = _operation(document, name)
        if chosen is None:
            continue
        for selection in _flatten(document, chosen.selection_set):
            if (selection.alias or selection.name).value == key:
                return selection.name.value
    return key


def _operations(request: FuzzRequest, answers: int) -> list[tuple[str, str | None] | None]:
    """(query, operationName) of each operation sent, None where it was not a usable one."""
    if request.method == "GET":
        params = dict(request.params)
        sent: list[Any] = [
            {"query": params.get("query"), "operationName": params.get("operationName")}
        ]
    else:
        try:
            sent = json.loads(request.content or b"")
        except (ValueError, RecursionError):
            return [None] * answers
        sent = sent if isinstance(sent, list) else [sent]
    operations: list[tuple[str, str | None] | None] = []
    for item in sent[:answers]:
        if isinstance(item, dict) and isinstance(item.get("query"), str):
            name = item.get("operationName")
            operations.append((item["query"], name if isinstance(name, str) else None))
        else:
            operations.append(None)
    return operations + [None] * (answers - len(operations))


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _flatten(document: DocumentNode, selection_set: SelectionSetNode) -> list[FieldNode]:
    """The fields of a selection set, with fragments spread in (type conditions ignored)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    fields: list[FieldNode] = []
    pending, seen = [selection_set], set()
    while pending:
        current = pending.pop()
        for selection in current.selections:
            if isinstance(selection, FieldNode):
                fields.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
    return fields


def _has_leaf(schema: GraphQLSchema, operation: tuple[str, str | None], data: dict) -> bool:
    return bool(data_leaves(schema, *operation, data))


def data_leaves(
    schema: GraphQLSchema, query: str, operation_name: str | None, data: Any
) -> set[tuple[str, str]]:
    """The (type, field) of every non-null scalar in ``data`` that is agency data, and
    of every object field (``Query.areas``) with such a scalar under it.

    ``__typename``, introspection and ``_service`` are schema metadata, not data.
    """
    document = parse(query)
    operation = _operation(document, operation_name)
    found: set[tuple[str, str]] = set()
    if operation is not None and schema.query_type is not None:
        _walk(schema, document, operation.selection_set, schema.query_type, data, found)
    return found


def _walk(
    schema: GraphQLSchema,
    document: DocumentNode,
    selection_set: SelectionSetNode,
    parent: Any,
    value: Any,
    found: set[tuple[str, str]],
) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _walk(schema, document, selection_set, parent, item, found)
        return
    if not isinstance(value, dict):
        return
    if isinstance(parent, GraphQLAbstractType):
        concrete = schema.get_type(str(value.get("__typename")))
        members = schema.get_possible_types(parent)
        candidates = [concrete] if concrete in members else list(members)
    else:
        candidates = [parent]
    for concrete in candidates:
        if not isinstance(concrete, GraphQLObjectType):
            continue
        for selection in _flatten(document, selection_set):
            key = (selection.alias or selection.name).value
            name = selection.name.value
            definition = concrete.fields.get(name)
            if key not in value or definition is None or name.startswith("__"):
                continue
            if (concrete.name, name) in {("Query", "_service"), ("_Service", "sdl")}:
                continue
            inner = value[key]
            if selection.selection_set is None:
                if _non_null(inner):
                    found.add((concrete.name, name))
            else:  # an object field with data under it is that field's holder's data too
                below: set[tuple[str, str]] = set()
                _walk(
                    schema,
                    document,
                    selection.selection_set,
                    get_named_type(definition.type),
                    inner,
                    below,
                )
                found |= below | ({(concrete.name, name)} if below else set())


def _non_null(value: Any) -> bool:
    if isinstance(value, list):
        return any(_non_null(item) for item in value)
    return value is not None
