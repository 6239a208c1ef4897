"""Limits on what one request may ask of the gateway, checked before any node is called.

A GraphQL document can ask for far more work than its size suggests: nested lists multiply
(``areas { patients { encounters } }``), aliases repeat an expensive field, fragments are
spread many times. Each limit here bounds one of those, so that one caller cannot make
every node (and the gateway) work for minutes. The check is pure: a parsed document, the
schema and the variables in; a refusal naming the limit, the measured value and the field
where it was crossed out. It walks the operation once, stopping as soon as a limit is
crossed, so a hostile document costs at most ``max_cost`` steps to refuse.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
)
from graphql.language.location import get_location
from graphql.type.introspection import (
    SchemaMetaFieldDef,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
)

from datatrust.errors import SettingsError

from ._errors import QueryTooComplex, RequestTooLarge

LIST_SIZE_ARGUMENTS = ("first", "last", "limit")
"""Arguments whose integer value says how many items a list field returns."""


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """What one request may ask; the defaults admit every query the demo and docs use.

    ``max_depth`` is the longest chain of nested fields (``{ areas { code } }`` is 2); the
    standard introspection query GraphiQL sends is 15 deep. ``max_aliases`` counts aliased
    fields, fragments expanded (Apollo Router's default is 30). ``max_cost`` bounds the
    estimated number of field resolutions: each field counts once per object it is
    resolved on, and a list field multiplies what is under it by its ``first``, ``last``
    or ``limit`` argument, else that argument's schema default, else ``default_list_size``
    (GitHub's GraphQL API bounds the same product, at 500,000 nodes). Document size is
    checked before parsing and batch size before any operation is read.
    """

    max_depth: int = 20
    max_aliases: int = 30
    max_cost: int = 100_000
    default_list_size: int = 20
    max_document_bytes: int = 65_536
    max_batch: int = 10

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(
                    f"query limit {field.name} must be a whole number of at least 1, not {value!r}"
                )


@dataclass(frozen=True, slots=True)
class QueryMeasure:
    """What an operation was measured at: deepest nesting, aliases, estimated cost."""

    depth: int
    aliases: int
    cost: int


def check_document_size(document: str, limits: QueryLimits) -> None:
    """Refuse a document longer than ``max_document_bytes`` (UTF-8), before parsing it."""
    size = len(document.encode("utf-8"))
    if size > limits.max_document_bytes:
        raise RequestTooLarge(
            f"the query document is {size:,} bytes, over the gateway's limit of "
            f"{limits.max_document_bytes:,} (max_document_bytes); send a shorter document",
            limit="max_document_bytes",
            value=size,
            maximum=limits.max_document_bytes,
        )


def check_batch_size(count: int, limits: QueryLimits) -> None:
    """Refuse a batch of more than ``max_batch`` operations, before reading any of them."""
    if count > limits.max_batch:
        raise RequestTooLarge(
            f"the batch has {count} operations, over the gateway's limit of "
            f"{limits.max_batch} (max_batch); send at most {limits.max_batch} operations "
            "in one request",
            limit="max_batch",
            value=count,
            maximum=limits.max_batch,
        )


def check_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    limits: QueryLimits,
) -> QueryMeasure:
    """Measure the chosen operation; raise QueryTooComplex at the first limit it crosses.

    Works on any parsed document: names the schema does not know count as leaves, spreads
    of unknown or cyclic fragments are skipped, so the limits hold even before validation
    has run. An operation that cannot be chosen measures as empty (planning reports it).
    """
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return QueryMeasure(0, 0, 0)
    root = schema.get_root_type(operation.operation)
    if root is None:
        return QueryMeasure(0, 0, 0)
    fragments = {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    declared = {
        node.variable.name.value: _integer(node.default_value, {}, {})
        for node in operation.variable_definitions or ()
    }
    walk = _Walk(schema, fragments, dict(variables or {}), declared, limits)
    return walk.run(operation.selection_set, root)


_Frame = tuple[SelectionSetNode, GraphQLNamedType | None, int, int, tuple[str, ...], frozenset[str]]


class _Walk:
    """One pass over an operation with an explicit stack (no recursion limit to hit)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        declared: Mapping[str, int | None],
        limits: QueryLimits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.declared = declared
        self.limits = limits
        self.depth = self.aliases = self.cost = 0

    def run(self, selection_set: SelectionSetNode, root: GraphQLNamedType) -> QueryMeasure:
        stack: list[_Frame] = [(selection_set, root, 0, 1, (), frozenset())]
        while stack:
            selections, parent, depth, multiplier, path, spreading = stack.pop()
            inner_frames: list[_Frame] = []
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    frame = self._field(selection, parent, depth + 1, multiplier, path, spreading)
                    if frame is not None:
                        inner_frames.append(frame)
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    inner = self.schema.get_type(condition.name.value) if condition else None
                    inner_frames.append(
                        (
                            selection.selection_set,
                            inner or parent,
                            depth,
                            multiplier,
                            path,
                            spreading,
                        )
                    )
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or name in spreading:
                        continue
                    inner = self.schema.get_type(fragment.type_condition.name.value)
                    inner_frames.append(
                        (
                            fragment.selection_set,
                            inner or parent,
                            depth,
                            multiplier,
                            path,
                            spreading | {name},
                        )
                    )
            stack.extend(reversed(inner_frames))  # so they are walked in document order
        return QueryMeasure(self.depth, self.aliases, self.cost)

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType | None,
        depth: int,
        multiplier: int,
        path: tuple[str, ...],
        spreading: frozenset[str],
    ) -> _Frame | None:
        name = node.name.value
        at = (*path, node.alias.value if node.alias else name)
        limits = self.limits
        self.depth = max(self.depth, depth)
        if depth > limits.max_depth:
            raise self._refusal(
                node,
                at,
                "max_depth",
                depth,
                f"the query nests {depth} fields deep at {'.'.join(at)}, over the gateway's "
                f"limit of {limits.max_depth} (max_depth); ask for fewer nested levels, or "
                "split the query",
            )
        if node.alias is not None:
            self.aliases += 1
            if self.aliases > limits.max_aliases:
                raise self._refusal(
                    node,
                    at,
                    "max_aliases",
                    self.aliases,
                    f"the query uses more than {limits.max_aliases} aliases (number "
                    f"{self.aliases} is {'.'.join(at)}), over the gateway's limit of "
                    f"{limits.max_aliases} (max_aliases); ask for each field once, or split "
                    "the query",
                )
        self.cost += multiplier
        if self.cost > limits.max_cost:
            raise self._refusal(
                node,
                at,
                "max_cost",
                self.cost,
                f"the query's estimated cost reaches {self.cost:,} field resolutions at "
                f"{'.'.join(at)}, over the gateway's limit of {limits.max_cost:,} (max_cost); "
                f"a list counts as its first/last/limit argument, else "
                f"{limits.default_list_size} items: ask for fewer items or fewer nested "
                "lists, or split the query",
            )
        if node.selection_set is None:
            return None
        definition = _definition(self.schema, parent, name) if parent is not None else None
        if definition is None:  # unknown here: validation refuses it, but it still nests
            return (node.selection_set, None, depth, multiplier, at, spreading)
        size = 1
        if is_list_type(get_nullable_type(definition.type)):
            size = max(1, self._list_size(parent, name, definition, node))
        inner = get_named_type(definition.type)
        return (node.selection_set, inner, depth, multiplier * size, at, spreading)

    def _list_size(
        self, parent: GraphQLNamedType, name: str, definition: GraphQLField, node: FieldNode
    ) -> int:
        if parent.name.startswith("__"):
            return _introspection_sizes(self.schema).get(name, self.limits.default_list_size)
        given = [
            _integer(argument.value, self.variables, self.declared)
            for argument in node.arguments or ()
            if argument.name.value in LIST_SIZE_ARGUMENTS
        ]
        sizes = [size for size in given if size is not None]
        if not sizes:
            defaults = (
                _default(definition.args[argument])
                for argument in LIST_SIZE_ARGUMENTS
                if argument in definition.args
            )
            sizes = [size for size in defaults if size is not None]
        return max(sizes) if sizes else self.limits.default_list_size

    def _refusal(
        self, node: FieldNode, at: tuple[str, ...], limit: str, value: int, message: str
    ) -> QueryTooComplex:
        locations = None
        if node.loc is not None:
            where = get_location(node.loc.source, node.loc.start)
            locations = [{"line": where.line, "column": where.column}]
        return QueryTooComplex(
            message,
            limit=limit,
            value=value,
            maximum=getattr(self.limits, limit),
            at=".".join(at),
            locations=locations,
        )


def _definition(schema: GraphQLSchema, parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if name == "__typename":
        return TypeNameMetaFieldDef
    if parent is schema.query_type and name in ("__schema", "__type"):
        return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


def _default(argument: GraphQLArgument) -> int | None:
    """An argument's integer default (graphql-core 3.3 keeps it in ``default``)."""
    value = argument.default_value
    default = getattr(argument, "default", None)
    if value is Undefined and default is not None:
        value = getattr(default, "value", Undefined)
        if value is Undefined:
            value = _integer(getattr(default, "literal", None), {}, {})
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _integer(
    value: Any, variables: Mapping[str, Any], declared: Mapping[str, int | None]
) -> int | None:
    if isinstance(value, IntValueNode):
        return int(value.value)
    if isinstance(value, VariableNode):
        name = value.name.value
        given = variables.get(name)
        if isinstance(given, int) and not isinstance(given, bool):
            return given
        return declared.get(name)
    return None


@functools.lru_cache(maxsize=8)
def _introspection_sizes(schema: GraphQLSchema) -> dict[str, int]:
    """How long each introspection list is on average in ``schema``, at least 1.

    Introspection lists are not paged, but their lengths are known: the mean over all
    types makes ``types { fields { ... } }`` count exactly the schema's fields, while a
    hostile chain (``fields { type { ofType { fields ... } } }``) still multiplies.
    """
    types = list(schema.type_map.values())
    count = max(1, len(types))
    objects = [t for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
    all_fields = [f for t in objects for f in t.fields.values()]
    arguments = sum(len(f.args) for f in all_fields) + sum(len(d.args) for d in schema.directives)
    abstract = [t for t in types if isinstance(t, GraphQLInterfaceType)]
    possible = sum(len(schema.get_possible_types(t)) for t in abstract)

    def mean(total: int, over: int = count) -> int:
        return max(1, math.ceil(total / max(1, over)))

    return {
        "types": count,
        "directives": max(1, len(schema.directives)),
        "fields": mean(len(all_fields)),
        "inputFields": mean(
            sum(len(t.fields) for t in types if isinstance(t, GraphQLInputObjectType))
        ),
        "interfaces": mean(sum(len(t.interfaces) for t in objects)),
        "possibleTypes": mean(possible),
        "enumValues": mean(sum(len(t.values) for t in types if isinstance(t, GraphQLEnumType))),
        "args": mean(arguments, len(all_fields) + len(schema.directives)),
    }
