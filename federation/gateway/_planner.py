"""Split a normalised selection between subgraphs, one subgraph's share at a time.

A field the current subgraph resolves stays in its fetch; a field of an entity that it
cannot resolve moves to a pending ``_entities`` fetch to an owner one step later, and the
current fetch gains the entity's ``__typename`` and key fields to build representations.

With ``keys_first`` (the gateway's default), when other subgraphs will be asked about an
entity in the next step anyway, the current subgraph's costly fields of that entity (those
taking arguments or selecting further: aggregates, related records) go to that step too,
as an ``_entities`` fetch to itself, and the current fetch keeps the keys and plain
attributes. Every node's share then runs at once: a planning query waits for the slowest node's
aggregates instead of the council's and then the slowest other node's, one after the
other, at the price of one more (cheap) call to the first node.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from graphql import GraphQLNamedType, GraphQLSchema, is_object_type

from ._errors import CompositionError
from ._selection import SelectedField, SelectedFragment, Selection
from ._supergraph import Supergraph


@dataclass(frozen=True)
class EntityTarget:
    """Where a dependent fetch's entities come from and go back to.

    ``path`` is response keys from the root, ``"@"`` for each list level; ``keys`` pairs
    each representation field (``__typename`` first) with its response key in the parent;
    ``renames`` maps an alias used in the shared ``_entities`` call back to the response key.
    """

    path: tuple[str, ...]
    type_name: str
    keys: tuple[tuple[str, str], ...]
    renames: tuple[tuple[str, str], ...] = ()


@dataclass
class Pending:
    target: EntityTarget
    selections: tuple[Selection, ...]


@dataclass
class Planner:
    supergraph: Supergraph
    keys_first: bool = True
    pending: dict[tuple[int, str], list[Pending]] = field(default_factory=dict)

    @property
    def schema(self) -> GraphQLSchema:
        return self.supergraph.schema

    def split(
        self,
        selections: tuple[Selection, ...],
        parent: GraphQLNamedType,
        service: str,
        path: tuple[str, ...],
        step: int,
    ) -> tuple[Selection, ...]:
        """The part of ``selections`` that ``service`` resolves; the rest becomes pending."""
        if not is_object_type(parent):
            return self._split_abstract(selections, parent, service, path, step)
        mine: list[Selection] = []
        remote: dict[str, list[Selection]] = {}
        for selection in selections:
            assert isinstance(selection, SelectedField)  # fragments on objects are flattened
            owners = self.supergraph.owners_of(parent.name, selection.name)
            if selection.name == "__typename" or service in owners:
                mine.append(selection)
            else:
                owner = self._owner(parent.name, selection.name, owners, service)
                remote.setdefault(owner, []).append(selection)
        if remote and self.keys_first and self._keys(parent.name, service):
            mine, deferred = self._keep_keys(mine, parent.name, service)
            if deferred:
                remote = {service: deferred, **remote}
        local = [self._descend(selection, service, path, step) for selection in mine]
        added: list[Selection] = []
        for owner, fields in remote.items():
            key = self._key(parent.name, owner, service)
            keys = tuple((name, _ensure(local, added, name)) for name in ("__typename", *key))
            inner = self.split(tuple(fields), parent, owner, path, step + 1)
            target = EntityTarget(path, parent.name, keys)
            self.pending.setdefault((step + 1, owner), []).append(Pending(target, inner))
        return (*added, *local)

    def _keep_keys(
        self, local: list[Selection], type_name: str, service: str
    ) -> tuple[list[Selection], list[Selection]]:
        """``local`` split into what this fetch keeps and what waits for the next step's
        ``_entities`` call to ``service``: fields that take arguments or select further
        (aggregates over a period, related records) wait; ``__typename``, keys and plain
        attributes, which come with the keys' own row, stay."""
        keys = {name for key in self._keys(type_name, service) for name in key}
        kept: list[Selection] = []
        deferred: list[Selection] = []
        for selection in local:
            assert isinstance(selection, SelectedField)
            if selection.arguments or selection.selections:
                deferred.append(selection)
            else:
                kept.append(selection)
        if any(s.response_key in keys for s in deferred if isinstance(s, SelectedField)):
            return local, []  # a client alias takes a key's name: keep the plain plan
        return kept, deferred

    def _split_abstract(
        self,
        selections: tuple[Selection, ...],
        parent: GraphQLNamedType,
        service: str,
        path: tuple[str, ...],
        step: int,
    ) -> tuple[Selection, ...]:
        local: list[Selection] = []
        for selection in selections:
            if isinstance(selection, SelectedFragment):
                if service in self.supergraph.defined_in.get(selection.type_condition, ()):
                    narrowed = self.schema.get_type(selection.type_condition)
                    inner = self.split(selection.selections, narrowed, service, path, step)
                    local.append(replace(selection, selections=inner))
            elif selection.name == "__typename" or service in self.supergraph.owners_of(
                parent.name, selection.name
            ):
                local.append(self._descend(selection, service, path, step))
            else:
                raise CompositionError(
                    f"{parent.name}.{selection.name} cannot be fetched from subgraph "
                    f"'{service}': fields of abstract types are planned only within one subgraph",
                    type=parent.name,
                    field=selection.name,
                )
        added: list[Selection] = []
        _ensure(local, added, "__typename")
        return (*added, *local)

    def _descend(
        self, selection: SelectedField, service: str, path: tuple[str, ...], step: int
    ) -> SelectedField:
        if not selection.selections:
            return selection
        child = self.schema.get_type(selection.type_name)
        child_path = (*path, selection.response_key, *("@",) * selection.list_depth)
        inner = self.split(selection.selections, child, service, child_path, step)
        return replace(selection, selections=inner)

    def _owner(self, type_name: str, field_name: str, owners: tuple[str, ...], service: str) -> str:
        for owner in owners:
            if any(
                self._reachable(type_name, key, service) for key in self._keys(type_name, owner)
            ):
                return owner
        where = " or ".join(f"'{owner}'" for owner in owners) or "no subgraph"
        raise CompositionError(
            f"{type_name}.{field_name} is resolved by {where}, which subgraph '{service}' cannot "
            f"reach: {type_name} needs a @key that '{service}' resolves and the owner resolves "
            "by key",
            type=type_name,
            field=field_name,
        )

    def _keys(self, type_name: str, owner: str) -> tuple[tuple[str, ...], ...]:
        return self.supergraph.entity_keys(type_name, owner)

    def _reachable(self, type_name: str, key: tuple[str, ...], service: str) -> bool:
        return all(service in self.supergraph.owners_of(type_name, name) for name in key)

    def _key(self, type_name: str, owner: str, service: str) -> tuple[str, ...]:
        keys = self._keys(type_name, owner)
        return next(key for key in keys if self._reachable(type_name, key, service))


def _ensure(local: list[Selection], added: list[Selection], name: str) -> str:
    """The response key of plain field ``name`` in the selection, adding it if absent."""
    for selection in (*added, *local):
        if (
            isinstance(selection, SelectedField)
            and selection.name == name
            and not (selection.arguments or selection.conditions)
        ):
            return selection.response_key
    taken = {s.response_key for s in (*added, *local) if isinstance(s, SelectedField)}
    response_key = name
    while response_key in taken:
        response_key = f"_key_{response_key}"
    added.append(SelectedField(response_key=response_key, name=name, type_name="String"))
    return response_key
