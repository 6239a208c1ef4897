"""Which columns a query's answer has: each leaf field's path, type and owning node.

The answer alone cannot say which agency's node produced a ``null``, yet that decides
whether it means "suppressed" (the node's disclosure control removed it) or "no data".
The query and the composed supergraph can: this walks the query's selections against the
API schema (aliases, inline fragments and named fragments included) and names, for each
leaf under a root list field, its response path, its GraphQL type and the nodes that
resolve it (``Supergraph.owners_of``). Pure: text and schema in, columns out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    parse,
)

__all__ = ["Column", "RootColumns", "query_columns"]

NUMERIC_TYPES = frozenset({"Int", "Float"})
Owners = Callable[[str, str], tuple[str, ...]]


@dataclass(frozen=True)
class Column:
    """One leaf of a row: ``path`` of response keys, e.g. ``("airQuality", "pm25Mean")``."""

    path: tuple[str, ...]
    type_name: str
    owners: tuple[str, ...]
    is_list: bool = False
    """A nested list (a person's encounters): shown as its number of items."""

    @property
    def label(self) -> str:
        return " ".join(self.path)

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def is_numeric(self) -> bool:
        return self.type_name in NUMERIC_TYPES and not self.is_list


@dataclass(frozen=True)
class RootColumns:
    """A root field whose answer is a list of objects: a table of ``columns``."""

    key: str
    columns: tuple[Column, ...]


def query_columns(
    schema: GraphQLSchema, owners: Owners, query: str, operation_name: str | None = None
) -> list[RootColumns]:
    """The tables a query's answer makes; empty when the text does not parse or fit."""
    try:
        document = parse(query)
    except GraphQLError:
        return []
    operation = _operation(document, operation_name)
    query_type = schema.query_type
    if operation is None or query_type is None or operation.operation.value != "query":
        return []
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    tables: list[RootColumns] = []
    for field, _parent in _fields(operation.selection_set, query_type, schema, fragments):
        definition = query_type.fields.get(field.name.value)
        if definition is None:
            continue
        nullable = get_nullable_type(definition.type)
        item = get_named_type(definition.type)
        if not isinstance(nullable, GraphQLList) or not isinstance(item, GraphQLObjectType):
            continue
        if field.selection_set is None:
            continue
        root_owners = owners(query_type.name, field.name.value)
        columns = _columns(field.selection_set, item, schema, fragments, owners, (), root_owners)
        tables.append(RootColumns(_key(field), tuple(columns)))
    return tables


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        return next((o for o in operations if o.name and o.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


def _key(field: FieldNode) -> str:
    return field.alias.value if field.alias else field.name.value


def _fields(
    selections: SelectionSetNode,
    parent: GraphQLObjectType,
    schema: GraphQLSchema,
    fragments: dict[str, FragmentDefinitionNode],
):
    """Each field selected on ``parent``, fragments expanded, once per response key."""
    seen: set[str] = set()
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            if _key(selection) not in seen and selection.name.value != "__typename":
                seen.add(_key(selection))
                yield selection, parent
            continue
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            inner = fragment.selection_set if fragment else None
            condition = fragment.type_condition.name.value if fragment else None
        elif isinstance(selection, InlineFragmentNode):
            inner = selection.selection_set
            condition = selection.type_condition.name.value if selection.type_condition else None
        else:
            continue
        target = schema.get_type(condition) if condition else parent
        if inner is None or not isinstance(target, GraphQLObjectType):
            continue
        for field, owner in _fields(inner, target, schema, fragments):
            if _key(field) not in seen:
                seen.add(_key(field))
                yield field, owner


def _columns(
    selections: SelectionSetNode,
    parent: GraphQLObjectType,
    schema: GraphQLSchema,
    fragments: dict[str, FragmentDefinitionNode],
    owners: Owners,
    prefix: tuple[str, ...],
    inherited: tuple[str, ...],
) -> list[Column]:
    columns: list[Column] = []
    for field, owner_type in _fields(selections, parent, schema, fragments):
        definition = owner_type.fields.get(field.name.value)
        if definition is None:
            continue
        path = (*prefix, _key(field))
        named = get_named_type(definition.type)
        nodes = owners(owner_type.name, field.name.value) or inherited
        if isinstance(get_nullable_type(definition.type), GraphQLList):
            columns.append(Column(path, named.name, nodes, is_list=True))
        elif is_leaf_type(named):
            columns.append(Column(path, named.name, nodes))
        elif isinstance(named, GraphQLObjectType) and field.selection_set is not None:
            columns += _columns(field.selection_set, named, schema, fragments, owners, path, nodes)
    return columns
