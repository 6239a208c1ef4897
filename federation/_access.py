"""What a GraphQL operation touches, as (parent type, field) pairs, for the policy.

Both the gateway (against the composed API schema) and each node (against its own
subgraph schema, including ``... on Area { ... }`` selections under ``_entities``) ask the
enforcement point about exactly these pairs. Introspection and ``_service`` are schema
metadata and carry no agency data, so they are reported apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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

__all__ = [
    "METADATA_FIELDS",
    "RECORD_TYPES",
    "OperationAccess",
    "operation_access",
]

# Root fields that read the schema, not data.
METADATA_FIELDS = frozenset({"__schema", "__type", "_service"})

# Types whose objects are one person's records: reading any of their fields is a
# record-level (not aggregate) request, whatever else the operation selects.
RECORD_TYPES = frozenset({"Person", "Encounter", "CareEpisode"})

# Entry points: what they return is decided by the fields selected under them.
_ROOT_TYPES = frozenset({"Query", "Mutation"})

# The envelope of a node's part in a cross-agency count (``Query.overlapTokens``): a key
# check and the node's own disclosure obligations, no agency data. The policy rules on
# what it carries, ``AreaTokens.code`` and ``AreaTokens.tokens``: per-query values no one
# outside the nodes can link to a person or to another query, from which the gateway
# releases counts only. So they are aggregate output (``AreaTokens`` is no record type),
# and an agreement shares them as ``aggregate-only``.
_ENVELOPE_TYPES = frozenset({"OverlapTokens"})


class OperationAccess:
    """The data fields an operation reads, and whether it reads only metadata."""

    __slots__ = ("fields", "metadata")

    def __init__(self, fields: frozenset[tuple[str, str]], metadata: frozenset[str]) -> None:
        self.fields = fields
        self.metadata = metadata

    @property
    def is_metadata_only(self) -> bool:
        return not self.fields

    @property
    def data_fields(self) -> frozenset[tuple[str, str]]:
        """The fields the data-use policy rules on: all but the root entry points."""
        return frozenset(f for f in self.fields if f[0] not in _ROOT_TYPES | _ENVELOPE_TYPES)

    @property
    def is_aggregate(self) -> bool:
        """True when the operation reads no field of a record-level type."""
        return not any(type_name in RECORD_TYPES for type_name, _ in self.fields)

    @property
    def is_mutation(self) -> bool:
        return any(type_name == "Mutation" for type_name, _ in self.fields)


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


def operation_access(
    schema: GraphQLSchema,
    document: DocumentNode,
    entity_keys: Mapping[str, Iterable[str]] | None = None,
) -> OperationAccess:
    """Collect every (type, field) the document selects; run it on a validated document.

    With ``entity_keys`` (type name -> its key fields), reading any field of an entity
    counts as reading its key too: the key identifies the record whether or not it is
    selected, and a node reads it from ``_entities`` representations and paging
    arguments, so its output form (e.g. pseudonymised) must always be decided.
    """
    type_info = TypeInfo(schema)
    collector = _Collector(type_info)
    visit(document, TypeInfoVisitor(type_info, collector))
    fields = set(collector.fields)
    for type_name in {t for t, _ in collector.fields}:
        fields.update((type_name, key) for key in (entity_keys or {}).get(type_name, ()))
    return OperationAccess(frozenset(fields), frozenset(collector.metadata))
