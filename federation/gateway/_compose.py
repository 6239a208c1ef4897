"""Compose the subgraphs' Federation v2 SDL into one supergraph: API schema plus routing.

Works on the graphql-core AST, so the federation directives need no definitions. The
rules are a strict subset of Apollo's composition: a field shared by several subgraphs
must have one type and one argument list and be ``@shareable`` everywhere (key fields are
shareable implicitly); every subgraph that defines an entity defines all its key fields;
a value type (no ``@key``) has the same fields wherever it is defined; enums, inputs,
scalars and unions are identical wherever they are defined. Types and fields marked
``@inaccessible`` (a node's part in the gateway's own cross-agency counts) are left out of
the API schema, as Apollo's composition leaves them out.
"""

from __future__ import annotations

from collections.abc import Mapping

from graphql import (
    DirectiveNode,
    FieldDefinitionNode,
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    parse,
    print_ast,
)

from ._errors import CompositionError
from ._links import check_links
from ._merged import MergedField, MergedType, build_supergraph, strip
from ._overlap import with_cross_agency_counts
from ._supergraph import Supergraph

_FEDERATION_TYPES = frozenset({"_Any", "_Entity", "_Service", "_FieldSet", "FieldSet"})
_FEDERATION_ROOT_FIELDS = frozenset({"_entities", "_service"})
_KINDS = {
    "object_type": "an object type",
    "interface_type": "an interface",
    "enum_type": "an enum",
    "input_object_type": "an input type",
    "scalar_type": "a scalar",
    "union_type": "a union",
}


def compose(subgraph_sdl: Mapping[str, str]) -> Supergraph:
    """Compose ``{subgraph name: SDL}`` into a :class:`Supergraph`, or raise CompositionError."""
    if not subgraph_sdl:
        raise CompositionError("there are no subgraphs to compose; configure at least one node")
    types: dict[str, MergedType] = {}
    for name, sdl in subgraph_sdl.items():
        _read_subgraph(name, sdl, types)
    query = types.get("Query")
    if query is None or not query.fields:
        raise CompositionError("no subgraph defines a root Query field; add one to a subgraph")
    for merged in types.values():
        _check_type(merged)
    supergraph = build_supergraph(tuple(subgraph_sdl), types)
    return with_cross_agency_counts(supergraph, subgraph_sdl)


def _read_subgraph(subgraph: str, sdl: str, types: dict[str, MergedType]) -> None:
    try:
        document = parse(sdl)
    except GraphQLSyntaxError as error:
        raise CompositionError(
            f"subgraph '{subgraph}' SDL does not parse: {error.message}", subgraph=subgraph
        ) from error
    check_links(subgraph, document)
    roots = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}
    for node in document.definitions:
        if isinstance(node, SchemaDefinitionNode | SchemaExtensionNode):
            for operation in node.operation_types or ():
                roots[operation.operation.value] = operation.type.name.value
    skipped = {roots["mutation"], roots["subscription"]}
    for node in document.definitions:
        if not isinstance(node, TypeDefinitionNode | TypeExtensionNode):
            continue
        name = node.name.value
        if (
            name in _FEDERATION_TYPES
            or name in skipped
            or name.startswith(("link__", "federation__"))
        ):
            continue
        if _is_inaccessible(node.directives):
            continue  # @inaccessible: served to the gateway itself, never in the API schema
        if name == roots["query"]:
            name = "Query"
        kind = node.kind.removesuffix("_definition").removesuffix("_extension")
        merged = types.setdefault(name, MergedType(name, kind))
        if merged.kind != kind:
            first = next(iter(merged.nodes))
            raise CompositionError(
                f"type {name} is {_KINDS[merged.kind]} in subgraph '{first}' but "
                f"{_KINDS[kind]} in subgraph '{subgraph}'; define it the same way in both",
                type=name,
            )
        merged.nodes.setdefault(subgraph, []).append(node)
        if kind in ("object_type", "interface_type"):
            _read_fields(subgraph, node, merged)


def _read_fields(
    subgraph: str, node: TypeDefinitionNode | TypeExtensionNode, merged: MergedType
) -> None:
    directives = _directives(node.directives)
    type_shareable = "shareable" in directives
    keys = merged.keys.setdefault(subgraph, [])
    for key in directives.get("key", []):
        keys.append((_key_fields(subgraph, merged.name, key), _resolvable(key), _fields_arg(key)))
    key_names = {name for fields, _, _ in keys for name in fields}
    for definition in node.fields or ():
        name = definition.name.value
        if merged.name == "Query" and name in _FEDERATION_ROOT_FIELDS:
            continue
        field_directives = _directives(definition.directives)
        if "inaccessible" in field_directives:
            continue
        merged.fields.setdefault(name, []).append(
            MergedField(
                subgraph,
                definition,
                is_shareable=type_shareable or "shareable" in field_directives or name in key_names,
                is_external="external" in field_directives,
            )
        )


def _directives(nodes: tuple[DirectiveNode, ...] | None) -> dict[str, list[DirectiveNode]]:
    found: dict[str, list[DirectiveNode]] = {}
    for node in nodes or ():
        found.setdefault(node.name.value.removeprefix("federation__"), []).append(node)
    return found


def _is_inaccessible(nodes: tuple[DirectiveNode, ...] | None) -> bool:
    return "inaccessible" in _directives(nodes)


def _fields_arg(key: DirectiveNode) -> str:
    for argument in key.arguments or ():
        if argument.name.value == "fields":
            return getattr(argument.value, "value", "")
    return ""


def _resolvable(key: DirectiveNode) -> bool:
    return all(
        getattr(argument.value, "value", True) is not False
        for argument in key.arguments or ()
        if argument.name.value == "resolvable"
    )


def _key_fields(subgraph: str, type_name: str, key: DirectiveNode) -> tuple[str, ...]:
    text = _fields_arg(key)
    try:
        selection = parse(f"{{ {text} }}").definitions[0].selection_set.selections  # type: ignore[attr-defined]
    except GraphQLError as error:
        raise CompositionError(
            f"{type_name} @key(fields: \"{text}\") in subgraph '{subgraph}' does not parse: "
            f"{error.message}",
            type=type_name,
            subgraph=subgraph,
        ) from error
    if not all(isinstance(node, FieldNode) and node.selection_set is None for node in selection):
        raise CompositionError(
            f"{type_name} @key(fields: \"{text}\") in subgraph '{subgraph}' nests a selection; "
            'the gateway supports keys of plain fields only, such as "code"',
            type=type_name,
            subgraph=subgraph,
        )
    return tuple(node.name.value for node in selection)  # type: ignore[union-attr]


def _check_type(merged: MergedType) -> None:
    if merged.kind not in ("object_type", "interface_type"):
        _check_identical(merged)
        return
    for name, definitions in merged.fields.items():
        _check_field(merged.name, name, definitions)
    is_entity = any(merged.keys.values())
    for owner, keys in merged.keys.items():
        for fields, _, text in keys:
            for subgraph in merged.nodes:
                missing = [name for name in fields if not _defines(merged, name, subgraph)]
                if missing:
                    raise CompositionError(
                        f"{merged.name} @key(fields: \"{text}\") in subgraph '{owner}' uses field "
                        f"'{missing[0]}', which subgraph '{subgraph}' does not define on "
                        f"{merged.name}; define it there or change the key",
                        type=merged.name,
                        field=missing[0],
                    )
    _check_keys_resolvable(merged)
    if not is_entity and merged.name != "Query" and len(merged.nodes) > 1:
        for name, definitions in merged.fields.items():
            lacking = [s for s in merged.nodes if s not in {d.subgraph for d in definitions}]
            if lacking:
                raise CompositionError(
                    f"{merged.name}.{name} is defined in subgraph '{definitions[0].subgraph}' but "
                    f"not in subgraph '{lacking[0]}', and {merged.name} has no @key; define the "
                    f"same fields in every subgraph, or make {merged.name} an entity with @key",
                    type=merged.name,
                    field=name,
                )


def _check_keys_resolvable(merged: MergedType) -> None:
    """A key a subgraph refers to entities by (``resolvable: false``) must be resolvable somewhere.

    Otherwise the gateway would hold representations it can send to no ``_entities``.
    """
    resolvable = {
        frozenset(fields) for keys in merged.keys.values() for fields, ok, _ in keys if ok
    }
    for owner, keys in merged.keys.items():
        for fields, is_resolvable, text in keys:
            if not is_resolvable and frozenset(fields) not in resolvable:
                raise CompositionError(
                    f'{merged.name} @key(fields: "{text}", resolvable: false) in subgraph '
                    f"'{owner}' refers to {merged.name} entities by that key, but no subgraph "
                    f'resolves {merged.name} by it; add @key(fields: "{text}") to the subgraph '
                    f"that owns {merged.name}",
                    type=merged.name,
                    subgraph=owner,
                )


def _defines(merged: MergedType, name: str, subgraph: str) -> bool:
    return any(definition.subgraph == subgraph for definition in merged.fields.get(name, ()))


def _check_field(type_name: str, name: str, definitions: list[MergedField]) -> None:
    where = f"{type_name}.{name}"
    for aspect, printed in (
        ("types", [print_ast(d.node.type) for d in definitions]),
        ("arguments", [_arguments(d.node) for d in definitions]),
    ):
        if len(set(printed)) > 1:
            listed = ", ".join(
                f"{text or '(none)'} in subgraph '{d.subgraph}'"
                for d, text in zip(definitions, printed, strict=True)
            )
            raise CompositionError(
                f"{where} has different {aspect}: {listed}; "
                f"declare it with the same {aspect} in every subgraph",
                type=type_name,
                field=name,
            )
    resolvers = [d for d in definitions if not d.is_external]
    unshared = [d.subgraph for d in resolvers if not d.is_shareable]
    if len(resolvers) > 1 and unshared:
        names = " and ".join(f"'{d.subgraph}'" for d in resolvers)
        marks = " and ".join(f"'{s}'" for s in unshared)
        raise CompositionError(
            f"{where} is resolved by subgraphs {names} but is not marked @shareable in {marks}; "
            "mark it @shareable in every subgraph that resolves it, or keep it in one subgraph",
            type=type_name,
            field=name,
        )


def _arguments(node: FieldDefinitionNode) -> str:
    return ", ".join(print_ast(strip(argument, keep=False)) for argument in node.arguments or ())


def _check_identical(merged: MergedType) -> None:
    printed = {
        subgraph: "\n".join(print_ast(strip(node, keep=False)) for node in nodes)
        for subgraph, nodes in merged.nodes.items()
    }
    if len(set(printed.values())) > 1:
        first, *others = printed
        other = next(s for s in others if printed[s] != printed[first])
        raise CompositionError(
            f"{merged.name} is defined differently in subgraphs '{first}' and '{other}'; "
            "define it identically in every subgraph",
            type=merged.name,
        )
