"""The composed supergraph: the API schema clients see, plus where each field lives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graphql import GraphQLSchema, print_schema


@dataclass(frozen=True)
class Supergraph:
    """What composition produced: the API schema and the routing metadata for planning.

    ``owners`` maps ``(type name, field name)`` to the subgraphs that can resolve that field,
    in configuration order; ``keys`` maps each entity type to ``{subgraph: key field sets}``
    for the subgraphs that can resolve it by key through ``_entities``; ``defined_in`` maps
    each type to the subgraphs that define it.
    """

    schema: GraphQLSchema
    subgraphs: tuple[str, ...]
    owners: Mapping[tuple[str, str], tuple[str, ...]]
    keys: Mapping[str, Mapping[str, tuple[tuple[str, ...], ...]]]
    defined_in: Mapping[str, tuple[str, ...]]
    cross_agency_nodes: tuple[str, ...] = ()
    """Subgraphs that serve ``overlapTokens`` (``crossAgencyCounts`` is in the API schema
    when there are at least two of them)."""

    @property
    def sdl(self) -> str:
        """The API schema as SDL, without any federation machinery."""
        return print_schema(self.schema)

    def owners_of(self, type_name: str, field_name: str) -> tuple[str, ...]:
        """The subgraphs that resolve ``type_name.field_name`` (empty when none does)."""
        return self.owners.get((type_name, field_name), ())

    def entity_keys(self, type_name: str, subgraph: str) -> tuple[tuple[str, ...], ...]:
        """The key field sets by which ``subgraph`` resolves ``type_name`` via ``_entities``."""
        return self.keys.get(type_name, {}).get(subgraph, ())
