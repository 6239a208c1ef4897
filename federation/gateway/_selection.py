"""A client's selection, normalised: named fragments expanded, fragments on the concrete
type flattened, fields with one response key merged. Plain frozen data, printable back
into GraphQL for a subgraph fetch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLSchema,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    print_ast,
)
from graphql.language import Visitor, visit
from graphql.type import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef


@dataclass(frozen=True)
class Condition:
    """An ``@skip`` or ``@include`` on a selection, by literal or by variable."""

    directive: str
    value: bool | None = None
    variable: str | None = None

    def holds(self, variables: Mapping[str, Any]) -> bool:
        value = bool(variables.get(self.variable)) if self.variable else bool(self.value)
        return not value if self.directive == "skip" else value

    def __str__(self) -> str:
        argument = f"${self.variable}" if self.variable else str(self.value).lower()
        return f"@{self.directive}(if: {argument})"


@dataclass(frozen=True)
class SelectedField:
    """One field as the client asked for it: response key, arguments and sub-selection."""

    response_key: str
    name: str
    type_name: str
    arguments: str = ""
    conditions: tuple[Condition, ...] = ()
    selections: tuple[Selection, ...] = ()
    list_depth: int = 0
    variables: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SelectedFragment:
    """A fragment kept because its type is narrower than the abstract type it sits in."""

    type_condition: str
    selections: tuple[Selection, ...]


Selection = SelectedField | SelectedFragment

_META_FIELDS = {
    "__typename": TypeNameMetaFieldDef,
    "__schema": SchemaMetaFieldDef,
    "__type": TypeMetaFieldDef,
}


def normalize(
    schema: GraphQLSchema,
    selection_set: SelectionSetNode,
    parent: GraphQLNamedType,
    fragments: Mapping[str, FragmentDefinitionNode],
    inherited: tuple[Condition, ...] = (),
) -> tuple[Selection, ...]:
    """Normalise a validated selection set whose parent type is ``parent``."""
    found: list[Selection] = []
    for node in selection_set.selections:
        conditions = inherited + _conditions(node)
        if isinstance(node, FieldNode):
            found.append(_field(schema, node, parent, fragments, conditions))
            continue
        if isinstance(node, FragmentSpreadNode):
            fragment = fragments[node.name.value]
            condition, selections = fragment.type_condition.name.value, fragment.selection_set
        else:
            condition = node.type_condition.name.value if node.type_condition else parent.name
            selections = node.selection_set
        narrowed = schema.get_type(condition)
        if is_object_type(parent) or narrowed is parent or narrowed is None:
            found.extend(normalize(schema, selections, parent, fragments, conditions))
        else:
            inner = normalize(schema, selections, narrowed, fragments, conditions)
            found.append(SelectedFragment(condition, inner))
    return merge(tuple(found))


def _field(
    schema: GraphQLSchema,
    node: FieldNode,
    parent: GraphQLNamedType,
    fragments: Mapping[str, FragmentDefinitionNode],
    conditions: tuple[Condition, ...],
) -> SelectedField:
    name = node.name.value
    definition = _META_FIELDS.get(name) or parent.fields[name]  # type: ignore[attr-defined]
    named = get_named_type(definition.type)
    arguments = ", ".join(print_ast(argument) for argument in node.arguments or ())
    children = normalize(schema, node.selection_set, named, fragments) if node.selection_set else ()
    return SelectedField(
        response_key=node.alias.value if node.alias else name,
        name=name,
        type_name=named.name,
        arguments=f"({arguments})" if arguments else "",
        conditions=conditions,
        selections=children,
        list_depth=_list_depth(definition.type),
        variables=frozenset(_variables(node.arguments))
        | {c.variable for c in conditions if c.variable},
    )


def _list_depth(type_: Any) -> int:
    depth = 0
    while is_list_type(type_) or is_non_null_type(type_):
        depth += is_list_type(type_)
        type_ = type_.of_type
    return depth


def _conditions(node: Any) -> tuple[Condition, ...]:
    found = []
    for directive in node.directives or ():
        if directive.name.value in ("skip", "include"):
            value = directive.arguments[0].value
            if isinstance(value, VariableNode):
                found.append(Condition(directive.name.value, variable=value.name.value))
            elif isinstance(value, BooleanValueNode):
                found.append(Condition(directive.name.value, value=value.value))
    return tuple(found)


class _VariableCollector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_variable(self, node: VariableNode, *_: object) -> None:
        self.names.append(node.name.value)


def _variables(nodes: Any) -> list[str]:
    collector = _VariableCollector()
    for node in nodes or ():
        visit(node, collector)
    return collector.names


def merge(selections: tuple[Selection, ...]) -> tuple[Selection, ...]:
    """Merge fields with one response key and conditions, and fragments on one type."""
    merged: dict[tuple[str, ...], Selection] = {}
    for selection in selections:
        if isinstance(selection, SelectedField):
            slot: tuple[str, ...] = (
                "field",
                selection.response_key,
                *map(str, selection.conditions),
            )
        else:
            slot = ("fragment", selection.type_condition)
        previous = merged.get(slot)
        if previous is None:
            merged[slot] = selection
        else:
            merged[slot] = replace(
                previous, selections=merge(previous.selections + selection.selections)
            )
    return tuple(merged.values())


def can_merge(first: tuple[Selection, ...], second: tuple[Selection, ...]) -> bool:
    """Whether two selections on one type can share one fetch without a field conflict."""
    fields = {s.response_key: s for s in first if isinstance(s, SelectedField)}
    for selection in second:
        if isinstance(selection, SelectedField) and selection.response_key in fields:
            other = fields[selection.response_key]
            if (other.name, other.arguments) != (selection.name, selection.arguments):
                return False
            if not can_merge(other.selections, selection.selections):
                return False
    return True


def variables_of(selections: tuple[Selection, ...]) -> set[str]:
    """Every variable a selection uses, in arguments and in ``@skip``/``@include``."""
    found: set[str] = set()
    for selection in selections:
        if isinstance(selection, SelectedField):
            found |= selection.variables
        found |= variables_of(selection.selections)
    return found


def print_selections(selections: tuple[Selection, ...], depth: int = 1) -> list[str]:
    """GraphQL text lines for a selection, indented two spaces per level from ``depth``."""
    pad = "  " * depth
    lines = []
    for selection in selections:
        if isinstance(selection, SelectedFragment):
            head = f"{pad}... on {selection.type_condition}"
        else:
            alias = (
                f"{selection.response_key}: " if selection.response_key != selection.name else ""
            )
            conditions = "".join(f" {condition}" for condition in selection.conditions)
            head = f"{pad}{alias}{selection.name}{selection.arguments}{conditions}"
        if selection.selections:
            lines.append(f"{head} {{")
            lines.extend(print_selections(selection.selections, depth + 1))
            lines.append(f"{pad}}}")
        else:
            lines.append(head)
    return lines
