"""What a GraphQL operation touches, as (parent type, field) pairs, for the policy.

Both the gateway (against the composed API schema) and each node (against its own
subgraph schema, including ``... on Area { ... }`` selections under ``_entities``) ask the
enforcement point about exactly these pairs. Introspection and ``_service`` are schema
metadata and carry no agency data, so they are reported apart.
"""

from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    visit,
)

__all__ = ["METADATA_FIELDS", "OperationAccess", "operation_access"]

# Root fields that read the schema, not data.
METADATA_FIELDS = frozenset({"__schema", "__type", "_service"})


class OperationAccess:
    """The data fields an operation reads, and whether it reads only metadata."""

    __slots__ = ("fields", "metadata")

    def __init__(self, fields: frozenset[tuple[str, str]], metadata: frozenset[str]) -> None:
        self.fields = fields
        self.metadata = metadata

    @property
    def is_metadata_only(self) -> bool:
        return not self.fields


class _Collector(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.fields: set[tuple[str, str]] = set()
        self.metadata: set[str] = set()
        self._metadata_depth = 0

    def enter_field(self, node: FieldNode, *_args: object) -> None:
        parent = self.type_info.get_parent_type()
        name = node.name.value
        if self._metadata_depth or name in METADATA_FIELDS:
            self._metadata_depth += 1
            self.metadata.add(name)
            return
        if name == "__typename" or parent is None:
            return
        self.fields.add((get_named_type(parent).name, name))

    def leave_field(self, node: FieldNode, *_args: object) -> None:
        if self._metadata_depth:
            self._metadata_depth -= 1


def operation_access(schema: GraphQLSchema, document: DocumentNode) -> OperationAccess:
    """Collect every (type, field) the document selects; run it on a validated document."""
    type_info = TypeInfo(schema)
    collector = _Collector(type_info)
    visit(document, TypeInfoVisitor(type_info, collector))
    return OperationAccess(frozenset(collector.fields), frozenset(collector.metadata))
