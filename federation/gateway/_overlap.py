"""Cross-agency counts: people known to several nodes, per area, without sharing identities.

``crossAgencyCounts`` is answered by the gateway itself. It draws a fresh random query id,
asks each named node for its cohort as values keyed for that id alone
(``Query.overlapTokens``, ``@inaccessible`` so no client reaches it through the API
schema) with the caller's own ``Authorization`` and ``Purpose``, intersects or unites the
opaque values, counts them per area, applies the deciding agreement's disclosure control
and returns counts only. It never holds a key that would turn a value back into a
pseudonym, and it keeps no value beyond the request. Protocol and threat model:
docs/cross-agency-counts.md.

Disclosure control here is suppression below the agreement's minimum cell size and
rounding to its base (a true 0 stays 0), both deterministic in the true count, so asking
again teaches nothing. Cell-key perturbation is not used: its noise must follow the
*people* counted, which needs a per-person key stable across queries, and giving the
gateway such a key would let it link the per-query values this protocol keeps apart.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    Visitor,
    execute,
    extend_schema,
    get_operation_ast,
    parse,
    validate,
    visit,
)
from graphql.execution.values import get_argument_values, get_variable_values

from datatrust._tracing import node_call_span
from datatrust.errors import DatatrustError, PeerError, QueryError, graphql_error

from ._errors import InvalidOperation, NodeRefused
from ._execute import FORWARDED_HEADERS
from ._supergraph import Supergraph

if TYPE_CHECKING:
    from ._gateway import Gateway

__all__ = [
    "CROSS_AGENCY_FIELD",
    "NODE_FIELDS",
    "AreaCount",
    "asks_cross_agency",
    "combine_counts",
    "cross_agency_participants",
    "new_query_id",
    "protect_count",
    "with_cross_agency_counts",
]

CROSS_AGENCY_FIELD = "crossAgencyCounts"
NODE_FIELD = "overlapTokens"
NODE_FIELDS = frozenset({("Query", NODE_FIELD), ("AreaTokens", "code"), ("AreaTokens", "tokens")})
"""What each node is asked for: the fields the gateway's own policy check rules on too."""

_API_SDL = '''
"""Whether a person must be known to every named node, or to any of them."""
enum CrossAgencyCombine { INTERSECTION UNION }

"""A disclosure-controlled count of people in one area."""
type AreaCount {
  """The GSS small-area code (LSOA, Data Zone)."""
  areaCode: ID!
  """How many people; null when suppressed under the agreement's minimum cell size."""
  count: Int
  """True when the count is withheld."""
  suppressed: Boolean!
}

extend type Query {
  """
  People known to all (INTERSECTION) or any (UNION) of the named nodes, per area of
  their latest record at the first node that has one. No node or gateway sees another
  node's identities; counts are suppressed and rounded under the deciding agreement.
  """
  crossAgencyCounts(
    nodes: [String!]!
    combine: CrossAgencyCombine! = INTERSECTION
    since: Date
    until: Date
  ): [AreaCount!]
}
'''

_NODE_QUERY = (
    "query($q: String!, $since: Date, $until: Date, $byArea: Boolean!, $padded: Boolean!) "
    "{ overlapTokens(queryId: $q, since: $since, until: $until, byArea: $byArea, "
    "padded: $padded) { keyCheck minCellSize roundTo areas { code tokens } } }"
)
_log = logging.getLogger("datatrust.federation.gateway")


# --- the API schema ----------------------------------------------------------------------


def cross_agency_participants(subgraph_sdl: Mapping[str, str]) -> tuple[str, ...]:
    """The subgraphs whose Query type serves ``overlapTokens``, in configuration order."""
    found = []
    for name, sdl in subgraph_sdl.items():
        document = parse(sdl)
        for node in document.definitions:
            if getattr(node, "name", None) and node.name.value == "Query":  # type: ignore[attr-defined]
                fields = getattr(node, "fields", None) or ()
                if any(field.name.value == NODE_FIELD for field in fields):
                    found.append(name)
                    break
    return tuple(found)


def with_cross_agency_counts(supergraph: Supergraph, subgraph_sdl: Mapping[str, str]) -> Supergraph:
    """``supergraph`` with ``Query.crossAgencyCounts`` when at least two nodes take part."""
    participants = cross_agency_participants(subgraph_sdl)
    if len(participants) < 2:
        return supergraph
    sdl = _API_SDL if supergraph.schema.get_type("Date") else "scalar Date\n" + _API_SDL
    schema = extend_schema(supergraph.schema, parse(sdl))
    return replace(supergraph, schema=schema, cross_agency_nodes=participants)


def new_query_id(now: float | None = None) -> str:
    """A fresh query id: its issue time (ms) and 256 random bits, used once at each node."""
    issued_ms = int((time.time() if now is None else now) * 1000)
    random = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"q1.{issued_ms:013d}.{random}"


# --- the pure core: combining and protecting ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AreaCount:
    area_code: str
    count: int | None

    def as_json(self) -> dict[str, Any]:
        return {"areaCode": self.area_code, "count": self.count, "suppressed": self.count is None}


NodeAnswer = Sequence[tuple[str | None, Sequence[str]]]
"""One node's lists: (area code, or None for "all people", values)."""


def combine_counts(answers: Sequence[NodeAnswer], combine: str) -> dict[str, int]:
    """People per area: known to every node (INTERSECTION) or to any (UNION).

    A person counts in the area the first node (in the order asked) gives them, or, for
    UNION, the first node that gives them one. Decoys match nothing, so they drop out of an
    intersection; the values themselves are not kept.
    """
    counts: dict[str, int] = {}
    if combine == "INTERSECTION":
        others = sorted(
            (set().union(*(values for _, values in answer)) for answer in answers[1:]), key=len
        )
        common = others[0].intersection(*others[1:]) if others else None
        for code, values in answers[0]:
            if code is None:
                continue
            found = len(common.intersection(values)) if common is not None else len(set(values))
            counts[code] = counts.get(code, 0) + found
        return counts
    seen: set[str] = set()
    for answer in answers:
        for code, values in answer:
            if code is None:
                continue
            fresh = set(values).difference(seen)
            counts[code] = counts.get(code, 0) + len(fresh)
            seen |= fresh
    return counts


def protect_count(count: int, *, min_cell: int, round_to: int) -> int | None:
    """A count as it may be published: 0 stays 0; 1 to ``min_cell - 1`` is suppressed
    (None); anything else is rounded to the nearest ``round_to`` and suppressed if that
    falls below ``min_cell``. The same true count always gives the same answer."""
    if count == 0 or (min_cell == 0 and round_to <= 1):
        return count
    if count < min_cell:
        return None
    value = (count + round_to // 2) // round_to * round_to if round_to > 1 else count
    return None if value < max(min_cell, 1) else value


# --- the request -------------------------------------------------------------------------


def asks_cross_agency(query: str, document: DocumentNode) -> bool:
    """Whether the document selects ``crossAgencyCounts`` anywhere (not merely names it in a
    comment or a string); the text test first keeps this off every other request's path."""
    if CROSS_AGENCY_FIELD not in query:
        return False
    found = False

    class _Finder(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            nonlocal found
            found = found or node.name.value == CROSS_AGENCY_FIELD

    visit(document, _Finder())
    return found


async def answer_cross_agency(
    gateway: Gateway,
    supergraph: Supergraph,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    headers: Mapping[str, str],
) -> dict[str, Any]:
    """The response to an operation that asks for ``crossAgencyCounts`` (alone).

    Everything the caller could get wrong (the document, the arguments, the purpose at the
    gateway's own policy check) is refused before any node is asked, with its own status;
    what the nodes answer (a refusal, a failure) comes back as an error on the field.
    """
    schema = supergraph.schema
    errors = validate(schema, document)
    if errors:
        raise InvalidOperation.from_graphql(errors)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        raise QueryError("name the operation to run with operationName")
    field_node = _only_field(operation.selection_set, document)
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        raise InvalidOperation.from_graphql(coerced)
    definition = schema.query_type.fields[CROSS_AGENCY_FIELD]  # type: ignore[union-attr]
    asked = _arguments(supergraph, get_argument_values(definition, field_node, coerced))
    if gateway.authorize is not None:
        outcome = gateway.authorize(_header(headers, "purpose"), NODE_FIELDS, headers)
        if inspect.isawaitable(outcome):
            await outcome
    notes: dict[str, Any] = {}

    async def resolve(info: Any, **_: Any) -> list[dict[str, Any]]:
        counts, note = await _count(gateway, asked, headers)
        notes[CROSS_AGENCY_FIELD] = note
        return [count.as_json() for count in counts]

    result = execute(
        schema,
        document,
        root_value={CROSS_AGENCY_FIELD: resolve},
        variable_values=dict(variables or {}),
        operation_name=operation_name,
    )
    if inspect.isawaitable(result):
        result = await result
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_format(error) for error in result.errors]
    if notes:
        body["extensions"] = {"disclosureControl": notes}
    return body


def _only_field(selection_set: SelectionSetNode, document: DocumentNode) -> FieldNode:
    """The one ``crossAgencyCounts`` field of the operation, which may ask for nothing else."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    found: list[FieldNode] = []

    def walk(selections: SelectionSetNode, seen: frozenset[str]) -> None:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value != "__typename":
                    found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    walk(fragments[name].selection_set, seen | {name})

    walk(selection_set, frozenset())
    others = sorted({f.name.value for f in found if f.name.value != CROSS_AGENCY_FIELD})
    if others:
        raise QueryError(
            f"{CROSS_AGENCY_FIELD} is answered by the gateway itself and must be alone in its "
            f"operation; ask for {', '.join(others)} in another request"
        )
    if len(found) != 1:
        raise QueryError(
            f"ask for {CROSS_AGENCY_FIELD} once per operation: two counts in one answer could "
            "be differenced against each other"
        )
    return found[0]


@dataclass(frozen=True, slots=True)
class _Asked:
    nodes: list[str]
    combine: str
    since: date | None
    until: date | None


def _arguments(supergraph: Supergraph, arguments: Mapping[str, Any]) -> _Asked:
    nodes = list(arguments["nodes"])
    combine = str(arguments.get("combine") or "INTERSECTION")
    known = supergraph.cross_agency_nodes
    unknown = [node for node in nodes if node not in known]
    if unknown:
        raise QueryError(
            f"node {unknown[0]!r} takes no part in cross-agency counts; these do: "
            f"{', '.join(known)}"
        )
    if len(set(nodes)) != len(nodes) or len(nodes) < 2:
        raise QueryError(
            "crossAgencyCounts needs at least two different nodes (a node's own count is "
            "one of its fields), each named once"
        )
    period = [_date(arguments.get(name), name) for name in ("since", "until")]
    since, until = period
    if since is not None and until is not None and since > until:
        raise QueryError(f"since ({since}) is after until ({until}); give a period forwards")
    return _Asked(nodes, combine, since, until)


def _date(value: Any, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise QueryError(f"{name} must be a date such as 2026-10-01, not {value!r}") from error


async def _count(
    gateway: Gateway, asked: _Asked, headers: Mapping[str, str]
) -> tuple[list[AreaCount], dict[str, Any]]:
    nodes, combine, since, until = asked.nodes, asked.combine, asked.since, asked.until
    query_id = new_query_id()
    forwarded = _forwarded(headers)
    intersect = combine == "INTERSECTION"
    asks = [
        {
            "q": query_id,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "byArea": not intersect or index == 0,
            "padded": intersect,
        }
        for index in range(len(nodes))
    ]
    answers = await asyncio.gather(
        *(_ask(gateway, node, ask, forwarded) for node, ask in zip(nodes, asks, strict=True))
    )
    failed = {node: problem for node, (_, problem) in zip(nodes, answers, strict=True) if problem}
    if failed:
        raise _refusal(failed)
    envelopes = [envelope for envelope, _ in answers]
    checks = {node: e["keyCheck"] for node, e in zip(nodes, envelopes, strict=True)}
    if len(set(checks.values())) != 1:
        raise PeerError(
            "the nodes derived different keys for this count (they decided under different "
            "agreements, or hold different overlap keys), so their values cannot be matched: "
            + ", ".join(f"'{node}'" for node in nodes),
            nodes=nodes,
        )
    min_cell = max(int(e["minCellSize"]) for e in envelopes)
    round_to = max(int(e["roundTo"]) for e in envelopes)
    lists = [[(a["code"], a["tokens"]) for a in e["areas"]] for e in envelopes]
    del envelopes, answers
    true_counts = combine_counts(lists, combine)
    del lists
    counts = [
        AreaCount(code, protect_count(true_counts[code], min_cell=min_cell, round_to=round_to))
        for code in sorted(true_counts)
    ]
    _log.info("cross-agency count (%s) over %s: %d areas", combine, ", ".join(nodes), len(counts))
    note = {
        "method": "suppression below the minimum cell size, rounding (no cell-key perturbation)",
        "minCellSize": min_cell,
        "roundedTo": round_to,
        "suppressedCells": sum(1 for count in counts if count.count is None),
        "nodes": nodes,
        "combine": combine,
    }
    return counts, note


async def _ask(
    gateway: Gateway, node: str, variables: dict[str, Any], headers: dict[str, str]
) -> tuple[dict[str, Any], str | dict[str, Any] | None]:
    """One node's envelope, or what went wrong (a message, or the node's own error)."""
    body = {"query": _NODE_QUERY, "variables": variables}
    timeout = gateway.timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            with node_call_span(node) as trace_headers:
                response = await gateway.client.post(
                    gateway.urls[node],
                    json=body,
                    headers={**headers, **trace_headers},
                    timeout=timeout,
                )
        answer = orjson.loads(response.content)  # megabytes of values: parsed at C speed
    except TimeoutError:
        return {}, f"did not answer within {timeout:g} s"
    except httpx.HTTPError as error:
        return {}, f"could not be reached ({type(error).__name__})"
    except ValueError:
        return {}, f"answered HTTP {response.status_code} without a GraphQL body"
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if errors:
        first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
        return {}, first
    envelope = (answer.get("data") or {}).get(NODE_FIELD) if isinstance(answer, dict) else None
    if not _well_formed(envelope):
        return {}, "answered without a well-formed overlapTokens"
    return envelope, None


def _well_formed(envelope: Any) -> bool:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("areas"), list):
        return False
    if not isinstance(envelope.get("keyCheck"), str):
        return False
    if not all(isinstance(envelope.get(k), int) for k in ("minCellSize", "roundTo")):
        return False
    return all(
        isinstance(area, dict)
        and (area.get("code") is None or isinstance(area.get("code"), str))
        and isinstance(area.get("tokens"), list)
        for area in envelope["areas"]
    )


def _refusal(failed: Mapping[str, str | dict[str, Any]]) -> DatatrustError:
    """One error naming every node that refused or failed, and each one's reason."""
    parts, codes = [], set()
    details: dict[str, dict[str, Any]] = {}
    for node, problem in failed.items():
        if isinstance(problem, dict):
            message = str(problem.get("message", "refused without a message"))
            extensions = problem.get("extensions")
            code = extensions.get("code") if isinstance(extensions, dict) else None
        else:
            message, code = problem, None
        codes.add(code)
        details[node] = {"code": code, "message": message}
        parts.append(f"node '{node}': {message}")
    text = "cross-agency count not made, nothing was counted; " + "; ".join(parts)
    code = next(iter(codes)) if len(codes) == 1 else None
    if code:
        return NodeRefused(text, code=str(code), nodes=details)
    return PeerError(text, nodes=details)


def _forwarded(headers: Mapping[str, str]) -> dict[str, str]:
    wanted = {name.lower(): name for name in FORWARDED_HEADERS}
    return {wanted[k.lower()]: v for k, v in headers.items() if k.lower() in wanted}


def _format(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, DatatrustError):
        return graphql_error(original, path=error.path)
    if original is None:
        return error.formatted
    _log.error("cross-agency count failed unexpectedly", exc_info=original)
    return {"message": "Unexpected error.", "path": error.path, "extensions": {"code": "INTERNAL"}}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)
