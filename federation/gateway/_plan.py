"""Plan a client operation into per-subgraph fetches.

Root fields are grouped by the subgraph that resolves them (one fetch each, run in
parallel). Inside a fetch, fields of an entity that the subgraph cannot resolve become a
dependent ``_entities`` fetch to their owner, one step later; the parent fetch selects the
entity's ``__typename`` and key fields so the gateway can build representations. All
dependent fetches to one subgraph in one step share one ``_entities`` call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    VariableDefinitionNode,
    get_operation_ast,
    parse,
    print_ast,
    validate,
)
from graphql.execution.values import get_variable_values

from datatrust.errors import QueryError

from ._errors import InvalidOperation
from ._planner import EntityTarget, Pending, Planner
from ._selection import (
    SelectedField,
    SelectedFragment,
    Selection,
    can_merge,
    merge,
    normalize,
    print_selections,
    variables_of,
)
from ._supergraph import Supergraph

_INTROSPECTION = frozenset({"__schema", "__type"})


@dataclass(frozen=True)
class Fetch:
    """One call to one subgraph: a root query, or ``_entities`` when it has ``targets``."""

    service: str
    selections: tuple[Selection, ...]
    operation: str
    variables: tuple[str, ...] = ()
    targets: tuple[EntityTarget, ...] = ()
    representations_variable: str = "representations"


@dataclass(frozen=True)
class QueryPlan:
    """Steps run one after another; the fetches inside a step run in parallel."""

    operation_name: str | None
    selections: tuple[Selection, ...]
    steps: tuple[tuple[Fetch, ...], ...]
    fields: frozenset[tuple[str, str]]
    variable_definitions: tuple[VariableDefinitionNode, ...] = ()
    introspection: str | None = None


def plan_operation(
    supergraph: Supergraph,
    document: str | DocumentNode,
    operation_name: str | None = None,
    *,
    keys_first: bool = True,
) -> QueryPlan:
    """Parse, validate and plan one query; InvalidOperation names what is wrong and where.

    ``keys_first`` runs a subgraph's own fields of an entity alongside the other subgraphs'
    fields of it, after a fetch of its keys (see ``_planner``); False keeps them in the
    first fetch, so the plan makes fewer calls but runs the subgraphs one after another.
    """
    if isinstance(document, str):
        document = _parse(document)
    errors = validate(supergraph.schema, document)
    if errors:
        raise InvalidOperation.from_graphql(errors)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        message = (
            f"the document has no operation named '{operation_name}'; send an operationName "
            "that the document defines"
            if operation_name
            else "the document has several operations; send operationName to choose one"
        )
        raise QueryError(message)
    if operation.operation is not OperationType.QUERY:
        raise QueryError(
            f"the gateway answers queries only, not a {operation.operation.value}; "
            "send it to the node that owns the data"
        )
    return _plan(supergraph, document, operation, keys_first)


def _parse(document: str) -> DocumentNode:
    try:
        return parse(document)
    except GraphQLError as error:
        raise InvalidOperation.from_graphql([error]) from error


def _plan(
    supergraph: Supergraph,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    keys_first: bool,
) -> QueryPlan:
    fragments = {
        node.name.value: node
        for node in document.definitions
        if node.kind == "fragment_definition"  # type: ignore[attr-defined]
    }
    query = supergraph.schema.query_type
    assert query is not None  # composition refuses a supergraph without root fields
    selections = normalize(supergraph.schema, operation.selection_set, query, fragments)
    planner = Planner(supergraph, keys_first)
    groups: dict[str, list[Selection]] = {}
    introspection = [s for s in selections if getattr(s, "name", "") in _INTROSPECTION]
    for selection in selections:
        assert isinstance(selection, SelectedField)
        if selection.name in _INTROSPECTION or selection.name == "__typename":
            continue
        owners = supergraph.owners_of("Query", selection.name)
        service = next((o for o in owners if o in groups), owners[0])
        groups.setdefault(service, []).append(selection)
    definitions = {node.variable.name.value: node for node in operation.variable_definitions or ()}
    root = tuple(
        _fetch(service, planner.split(tuple(fields), query, service, (), 0), definitions)
        for service, fields in groups.items()
    )
    steps = [root] if root else []
    for step in range(1, 1 + max((s for s, _ in planner.pending), default=0)):
        steps.append(
            tuple(
                _entity_fetch(service, pending, definitions)
                for (at, service), pending in planner.pending.items()
                if at == step
            )
        )
    return QueryPlan(
        operation_name=operation.name.value if operation.name else None,
        selections=selections,
        steps=tuple(steps),
        fields=frozenset(_touched(selections, "Query")),
        variable_definitions=tuple(operation.variable_definitions or ()),
        introspection=_document(tuple(introspection), definitions) if introspection else None,
    )


def _entity_fetch(
    service: str, pending: list[Pending], definitions: Mapping[str, VariableDefinitionNode]
) -> Fetch:
    """One ``_entities`` call for every target of ``service`` in one step.

    Targets of one type share one ``... on Type`` selection; a field that clashes with one
    already there (same response key, other arguments) is sent under an alias that the
    target renames back when its results are merged.
    """
    by_type: dict[str, tuple[Selection, ...]] = {}
    targets: list[EntityTarget] = []
    for number, item in enumerate(pending):
        selections = by_type.get(item.target.type_name, ())
        renames = []
        for selection in item.selections:
            if not can_merge(selections, (selection,)):
                assert isinstance(selection, SelectedField)
                alias = f"_{number}_{selection.response_key}"
                renames.append((alias, selection.response_key))
                selection = replace(selection, response_key=alias)
            selections = merge((*selections, selection))
        by_type[item.target.type_name] = selections
        targets.append(replace(item.target, renames=tuple(renames)))
    fragments = tuple(SelectedFragment(t, s) for t, s in by_type.items())
    name = "representations"
    while name in definitions:
        name = f"_{name}"
    entities = SelectedField(
        response_key="_entities",
        name="_entities",
        type_name="_Entity",
        arguments=f"(representations: ${name})",
        selections=fragments,
    )
    return replace(
        _fetch(service, (entities,), definitions, f"${name}: [_Any!]!"),
        selections=fragments,
        targets=tuple(targets),
        representations_variable=name,
    )


def _fetch(
    service: str,
    selections: tuple[Selection, ...],
    definitions: Mapping[str, VariableDefinitionNode],
    extra_variable: str = "",
) -> Fetch:
    used = variables_of(selections)
    variables = tuple(name for name in definitions if name in used)
    return Fetch(
        service=service,
        selections=selections,
        operation=_document(selections, definitions, extra_variable),
        variables=variables,
    )


def _document(
    selections: tuple[Selection, ...],
    definitions: Mapping[str, VariableDefinitionNode],
    extra_variable: str = "",
) -> str:
    used = variables_of(selections)
    declared = [extra_variable] if extra_variable else []
    declared += [print_ast(node) for name, node in definitions.items() if name in used]
    head = f"query({', '.join(declared)}) {{" if declared else "{"
    return "\n".join([head, *print_selections(selections), "}"])


def _touched(selections: tuple[Selection, ...], parent: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for selection in selections:
        if isinstance(selection, SelectedFragment):
            found |= _touched(selection.selections, selection.type_condition)
        elif not selection.name.startswith("__"):
            found.add((parent, selection.name))
            found |= _touched(selection.selections, selection.type_name)
    return found


def check_variables(
    supergraph: Supergraph, plan: QueryPlan, variables: Mapping[str, Any] | None
) -> None:
    """Refuse variables that do not fit the operation's declarations, as QueryErrors."""
    coerced = get_variable_values(supergraph.schema, plan.variable_definitions, variables or {})
    if isinstance(coerced, list):
        raise InvalidOperation.from_graphql(coerced)


class PlanCache:
    """A small LRU of plans keyed by (normalised document text, operation name).

    Clients resend the very same text, so each text seen is also remembered with its
    normalised key: a repeat skips parsing and printing the document (about a millisecond
    a request), and still finds only plans the normalised LRU holds.
    """

    def __init__(
        self, supergraph: Supergraph, *, max_size: int = 256, keys_first: bool = True
    ) -> None:
        self.supergraph = supergraph
        self.max_size = max_size
        self.keys_first = keys_first
        self._plans: OrderedDict[tuple[str, str | None], QueryPlan] = OrderedDict()
        self._keys: OrderedDict[tuple[str, str | None], tuple[str, str | None]] = OrderedDict()

    def plan(self, document: str, operation_name: str | None = None) -> QueryPlan:
        seen = (document, operation_name)
        key = self._keys.get(seen)
        if key is not None and key in self._plans:
            self._keys.move_to_end(seen)
            self._plans.move_to_end(key)
            return self._plans[key]
        parsed = _parse(document)
        key = (print_ast(parsed), operation_name)
        self._keys[seen] = key
        if len(self._keys) > 4 * self.max_size:
            self._keys.popitem(last=False)
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plan = plan_operation(self.supergraph, parsed, operation_name, keys_first=self.keys_first)
        self._plans[key] = plan
        if len(self._plans) > self.max_size:
            self._plans.popitem(last=False)
        return plan

    def __len__(self) -> int:
        return len(self._plans)
