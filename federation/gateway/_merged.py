"""The merged view of the subgraphs' types, and the API schema built from it.

Composition (``_compose``) fills :class:`MergedType` records from each subgraph's AST and
checks them; :func:`build_supergraph` then prints the API schema with every federation
directive stripped and records where each field is resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from graphql import (
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    FieldDefinitionNode,
    GraphQLError,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    NamedTypeNode,
    NameNode,
    Node,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    UnionTypeDefinitionNode,
    build_ast_schema,
)
from graphql.language import Visitor, visit
from graphql.language.visitor import REMOVE

from ._errors import CompositionError
from ._supergraph import Supergraph

_KEPT_DIRECTIVES = frozenset({"deprecated", "specifiedBy", "oneOf"})


@dataclass
class MergedField:
    """One subgraph's definition of one field."""

    subgraph: str
    node: FieldDefinitionNode
    is_shareable: bool
    is_external: bool


@dataclass
class MergedType:
    """One named type across subgraphs: its AST per subgraph, fields and ``@key``s."""

    name: str
    kind: str
    nodes: dict[str, list[TypeDefinitionNode | TypeExtensionNode]] = field(default_factory=dict)
    fields: dict[str, list[MergedField]] = field(default_factory=dict)
    keys: dict[str, list[tuple[tuple[str, ...], bool, str]]] = field(default_factory=dict)


class _DirectiveStripper(Visitor):
    def __init__(self, *, keep: bool) -> None:
        super().__init__()
        self.keep = keep

    def enter_directive(self, node: DirectiveNode, *_: object) -> object:
        return None if self.keep and node.name.value in _KEPT_DIRECTIVES else REMOVE

    def enter(self, node: Node, *_: object) -> object:
        if self.keep or getattr(node, "description", None) is None:
            return None
        return replace(node, description=None)  # type: ignore[type-var]


def strip(node, *, keep: bool = True):  # type: ignore[no-untyped-def]
    """A copy of ``node`` without federation directives (and, unless ``keep``, descriptions)."""
    return visit(node, _DirectiveStripper(keep=keep))


def build_supergraph(subgraphs: tuple[str, ...], types: dict[str, MergedType]) -> Supergraph:
    """The API schema and routing metadata of checked merged types."""
    definitions = []
    owners: dict[tuple[str, str], tuple[str, ...]] = {}
    keys: dict[str, Mapping[str, tuple[tuple[str, ...], ...]]] = {}
    for merged in types.values():
        nodes = [node for group in merged.nodes.values() for node in group]
        description = next((n.description for n in nodes if getattr(n, "description", None)), None)
        if merged.kind not in ("object_type", "interface_type"):
            first = strip(nodes[0])
            definitions.append(_as_definition(first, merged.kind))
            continue
        interfaces = {i.name.value: i for n in nodes for i in n.interfaces or ()}
        fields = []
        for name, found in merged.fields.items():
            owners[(merged.name, name)] = tuple(d.subgraph for d in found if not d.is_external)
            fields.append(strip(found[0].node))
        node_class = (
            ObjectTypeDefinitionNode
            if merged.kind == "object_type"
            else InterfaceTypeDefinitionNode
        )
        definitions.append(
            node_class(
                name=NameNode(value=merged.name),
                description=description,
                interfaces=tuple(NamedTypeNode(name=NameNode(value=n)) for n in interfaces),
                directives=(),
                fields=tuple(fields),
            )
        )
        resolvable = {
            subgraph: tuple(fields for fields, is_resolvable, _ in found_keys if is_resolvable)
            for subgraph, found_keys in merged.keys.items()
            if found_keys
        }
        if resolvable:
            keys[merged.name] = MappingProxyType(resolvable)
    try:
        schema = build_ast_schema(DocumentNode(definitions=tuple(definitions)))
    except (GraphQLError, TypeError) as error:
        raise CompositionError(f"the composed API schema is invalid: {error}") from error
    return Supergraph(
        schema=schema,
        subgraphs=subgraphs,
        owners=MappingProxyType(owners),
        keys=MappingProxyType(keys),
        defined_in=MappingProxyType({name: tuple(t.nodes) for name, t in types.items()}),
    )


def _as_definition(node, kind: str):  # type: ignore[no-untyped-def]
    """Turn a type extension (``extend enum ...``) into a definition of the same kind."""
    classes = {
        "enum_type": EnumTypeDefinitionNode,
        "input_object_type": InputObjectTypeDefinitionNode,
        "scalar_type": ScalarTypeDefinitionNode,
        "union_type": UnionTypeDefinitionNode,
    }
    cls = classes[kind]
    if isinstance(node, cls):
        return node
    return cls(**{key: getattr(node, key, None) for key in cls.keys if key != "loc"})
