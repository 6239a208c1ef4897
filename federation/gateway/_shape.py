"""Merge node answers, then cut the merged tree to exactly the shape the client asked for.

Fields the gateway added for its own use (``__typename``, key fields, aliases) disappear
because only the client's selection is copied; a field no node answered is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import GraphQLSchema, is_abstract_type, is_object_type

from ._selection import SelectedField, SelectedFragment, Selection

_INTROSPECTION = frozenset({"__schema", "__type"})


def deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Merge ``source`` into ``target`` in place: objects by key, equal-length lists by item."""
    for key, value in source.items():
        present = target.get(key)
        if isinstance(present, dict) and isinstance(value, dict):
            deep_merge(present, value)
        elif isinstance(present, list) and isinstance(value, list) and len(present) == len(value):
            for mine, theirs in zip(present, value, strict=True):
                if isinstance(mine, dict) and isinstance(theirs, dict):
                    deep_merge(mine, theirs)
        else:
            target[key] = value


def shape(
    schema: GraphQLSchema,
    selections: tuple[Selection, ...],
    raw: Mapping[str, Any],
    variables: Mapping[str, Any],
) -> dict[str, Any]:
    """The client's response ``data`` for its root ``selections`` from the merged ``raw``."""
    query = schema.query_type
    return _object(schema, selections, raw, query.name if query else "Query", variables)


def _object(
    schema: GraphQLSchema,
    selections: tuple[Selection, ...],
    raw: Mapping[str, Any],
    type_name: str | None,
    variables: Mapping[str, Any],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for selection in selections:
        if isinstance(selection, SelectedFragment):
            if _applies(schema, selection.type_condition, type_name):
                deep_merge(out, _object(schema, selection.selections, raw, type_name, variables))
            continue
        if selection.conditions and not all(c.holds(variables) for c in selection.conditions):
            continue
        if selection.name == "__typename":
            value = raw.get(selection.response_key) or type_name
        elif selection.name in _INTROSPECTION:
            value = raw.get(selection.response_key)
        else:
            value = _value(schema, selection, raw.get(selection.response_key), variables)
        if selection.response_key in out:  # the same key selected twice (fields, fragments)
            deep_merge(out, {selection.response_key: value})
        else:
            out[selection.response_key] = value
    return out


def _value(
    schema: GraphQLSchema, selection: SelectedField, value: Any, variables: Mapping[str, Any]
) -> Any:
    if value is None or not selection.selections:
        return value
    if isinstance(value, list):
        return [_value(schema, selection, item, variables) for item in value]
    if not isinstance(value, dict):
        return None
    field_type = schema.get_type(selection.type_name)
    type_name = value.get("__typename") if is_abstract_type(field_type) else selection.type_name
    return _object(schema, selection.selections, value, type_name, variables)


def _applies(schema: GraphQLSchema, condition: str, type_name: str | None) -> bool:
    if type_name is None:
        return False
    if condition == type_name:
        return True
    narrowed, concrete = schema.get_type(condition), schema.get_type(type_name)
    return (
        is_abstract_type(narrowed)
        and is_object_type(concrete)
        and schema.is_sub_type(narrowed, concrete)  # type: ignore[arg-type]
    )
