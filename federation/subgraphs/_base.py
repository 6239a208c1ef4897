"""What every node's subgraph shares: the request context, dates, and entity lookup rules.

Strawberry resolves each ``_entities`` representation on its own and turns one bad
representation into ``null`` for the whole list; ``SubgraphSchema`` checks each
representation first (known entity type, exactly its key fields, a well-formed key) so a
bad one gets an error for that entity alone, and the rest are answered.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import Engine
from strawberry.dataloader import DataLoader
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.types.arguments import StrawberryArgument

from datatrust.errors import DatatrustError, PermissionDenied
from datatrust.federation.subgraphs._offloop import run_off_loop
from datatrust.policies import Permit, Requester, require_permit
from datatrust.trust import PurposeRegister

if TYPE_CHECKING:
    from datatrust.network import DirectoryPeer

__all__ = [
    "FEDERATION_VERSION",
    "Disclosed",
    "MaskObligations",
    "NodeContext",
    "NodeKeys",
    "SubgraphSchema",
    "loader",
    "permit_of",
    "require_gateway_peer",
]

# Apollo composition, Hive composition and Apollo's subgraph compatibility checks all
# accept 2.7; strawberry's default is newer and Hive rejects it.
FEDERATION_VERSION = "2.7"
_GSS_SMALL_AREA = re.compile(r"^[EWSN]\d{8}$")


@dataclass(slots=True)
class Disclosed:
    """What a request's resolvers read: rows and subjects, for the audit entry.

    ``subjects`` are the trust pseudonyms of the people whose records were returned (a
    citizen's "who used your data" reads them); aggregates add to the counts only.
    """

    rows: int = 0
    subjects: set[str] = field(default_factory=set)
    counted_subjects: int = 0
    suppressed_cells: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """Batches read in worker threads while other resolvers run on the event loop."""

    def records(self, pseudonyms: list[str | None]) -> None:
        with self._lock:
            self.rows += len(pseudonyms)
            self.subjects.update(p for p in pseudonyms if p)

    def aggregate(self, rows: int, subjects: int) -> None:
        with self._lock:
            self.rows += rows
            self.counted_subjects += subjects

    def suppressed(self, cells: int) -> None:
        with self._lock:
            self.suppressed_cells += cells

    @property
    def subject_count(self) -> int:
        return len(self.subjects) + self.counted_subjects


@dataclass(slots=True)
class NodeContext:
    """Per-request state: the store, the permit policy gave, and this request's loaders.

    ``peer`` is the mutual-TLS client the trust directory accepted for this request (a
    ``DirectoryPeer``: member, gateway or tool), as ``RequireDirectoryPeer`` put it in the
    ASGI scope; None when the node is not served over mutual TLS, and then nothing that
    needs a particular peer is answered. ``refused`` is a refusal a resolver made after
    the policy permitted the request (a replayed query id, the wrong peer): the audit
    entry is then a deny with its reason, not a permit that happened to return nothing.
    ``notes`` are added to the audit entry's reasons (a cross-agency count's query id,
    which links the node's entry to the gateway's call).
    """

    engine: Engine
    permit: Permit | None
    node_id: str
    loaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict)
    requester: Requester | None = None
    disclosed: Disclosed = field(default_factory=Disclosed)
    keys: NodeKeys | None = None
    register: PurposeRegister | None = None
    peer: DirectoryPeer | None = None
    refused: DatatrustError | None = None
    notes: list[str] = field(default_factory=list)
    batch_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """One batch of this request at a time, as when they ran on the event loop."""

    def refuse(self, error: DatatrustError) -> DatatrustError:
        """Record ``error`` as this request's refusal (audited as a deny); raise what it returns."""
        if self.refused is None:
            self.refused = error
        return error


@dataclass(frozen=True, slots=True)
class NodeKeys:
    """Secrets a node's resolvers need: the trust pseudonym key and the SDC salt."""

    pseudonym_key: bytes
    sdc_salt: int


class MaskObligations(SchemaExtension):
    """Masked fields never leave the node: their resolvers are not even called.

    This runs for every field of every operation (aliases, fragments and ``_entities``
    alike resolve through it), so a field the deciding agreement masks is ``null``
    wherever the document reaches it.

    Wrapping a field costs a call per field of every object answered (thousands for a
    planning query over every area), so the wrapper is only put in place for a request
    whose permit masks something: strawberry asks each request's extension instance
    whether it resolves, once, after the context (and so the permit) is set and before
    execution starts. Anything other than a Permit without masks keeps the wrapper.
    """

    def _implements_resolve(self) -> bool:  # type: ignore[override]
        permit = getattr(getattr(self, "execution_context", None), "context", None)
        permit = getattr(permit, "permit", None)
        return not (isinstance(permit, Permit) and not permit.obligations.mask)

    def resolve(self, _next, root, info, *args, **kwargs):  # type: ignore[no-untyped-def]
        permit = getattr(info.context, "permit", None)
        masks = isinstance(permit, Permit) and permit.obligations.mask
        if masks and permit.is_masked(info.parent_type.name, info.field_name):
            return None
        return _next(root, info, *args, **kwargs)


def permit_of(info: strawberry.Info) -> Permit:
    """The request's Permit; no resolver reads the store without one (deny by default)."""
    return require_permit(getattr(info.context, "permit", None))


def require_gateway_peer(info: strawberry.Info, field_name: str) -> None:
    """Refuse (FORBIDDEN, audited as a deny) unless the trust's gateway is the mTLS peer.

    Some fields are a step in a protocol the gateway runs and must never reach anyone
    else: ``overlapTokens`` gives exact per-area values that only the gateway's disclosure
    control turns into publishable counts. The peer comes from the node's directory check
    only; a node served without mutual TLS knows no peer and so refuses (fail closed).
    """
    context: NodeContext = info.context
    peer = context.peer
    if peer is not None and getattr(peer, "kind", None) == "gateway":
        return
    if peer is None:
        who = (
            "a client without a trust-directory certificate (this node is not served over "
            "mutual TLS, so it takes no part in cross-agency counts)"
        )
    else:
        who = f"{peer.kind} {peer.name!r}"
    raise context.refuse(
        PermissionDenied(
            f"forbidden: {field_name} answers the trust's gateway only, never a direct call; "
            f"this request came from {who}. Ask the gateway (crossAgencyCounts) instead",
            peer=f"{peer.kind}:{peer.name}" if peer is not None else None,
        )
    )


def loader(
    info: strawberry.Info, name: str, batch: Callable[[NodeContext, list[Any]], list[Any]]
) -> DataLoader[Any, Any]:
    """This request's DataLoader called ``name``: one store query per batch of keys."""
    context: NodeContext = info.context
    permit_of(info)
    if name not in context.loaders:

        def read(_: object, keys: list[Any]) -> list[Any]:
            with context.batch_lock:
                return batch(context, keys)

        async def load(keys: list[Any]) -> list[Any]:
            # Off the event loop: one request's store read (the planning query's is tens of
            # milliseconds of SQL) no longer holds up every other request at this node.
            # run_off_loop waits for the worker even when the request is cancelled, so the
            # audit entry written after it counts everything that was read.
            return await run_off_loop(functools.partial(read, keys=keys))

        context.loaders[name] = DataLoader(load_fn=load)
    return context.loaders[name]


class _RememberedArgumentNames(NameConverter):
    """Strawberry's names, with each argument's GraphQL name worked out once.

    Strawberry asks for an argument's GraphQL name each time it converts that argument,
    so once per field per entity (tens of thousands of times for a planning query over
    every area), and camel-cases it afresh each time. The name never changes.
    """

    def __init__(self) -> None:
        super().__init__()
        self._arguments: dict[int, tuple[StrawberryArgument, str]] = {}

    def from_argument(self, argument: StrawberryArgument) -> str:
        known = self._arguments.get(id(argument))
        if known is None or known[0] is not argument:
            known = (argument, super().from_argument(argument))
            self._arguments[id(argument)] = known
        return known[1]


class SubgraphSchema(strawberry.federation.Schema):
    """A Federation 2.7 subgraph whose entity lookups fail one entity at a time."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("config", StrawberryConfig(name_converter=_RememberedArgumentNames()))
        # The endpoint has parsed and validated the document already; strawberry's caches
        # keep execute from doing both again for the same text.
        kwargs.setdefault(
            "extensions",
            [MaskObligations, ParserCache(maxsize=512), ValidationCache(maxsize=512)],
        )
        super().__init__(federation_version=FEDERATION_VERSION, **kwargs)
        self._entity_keys = {
            definition.name: {
                key.fields
                for key in getattr(definition, "directives", [])
                if hasattr(key, "fields")
            }
            for definition in (
                getattr(t, "__strawberry_definition__", None) for t in kwargs.get("types", ())
            )
            if definition is not None
        }

    @property
    def entity_key_fields(self) -> dict[str, tuple[str, ...]]:
        """Each entity type's key fields (all of them, across its ``@key``s)."""
        return {
            name: tuple(sorted({f for key in keys for f in key.split()}))
            for name, keys in self._entity_keys.items()
        }

    def entities_resolver(
        self, info: strawberry.Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        # Checked one by one, resolved together: the reference resolvers only queue their
        # keys on the request's DataLoaders, so the good ones still cost one query per batch.
        problems = [self._representation_problem(r) for r in representations]
        good = [
            dict(r) for r, problem in zip(representations, problems, strict=True) if not problem
        ]
        resolved = iter(super().entities_resolver(info, good))
        return [
            GraphQLError(f"representations[{index}]: {problem}") if problem else next(resolved)
            for index, problem in enumerate(problems)
        ]

    def _representation_problem(self, representation: Any) -> str | None:
        if not isinstance(representation, dict):
            return "a representation must be an object with __typename and its key fields"
        type_name = representation.get("__typename")
        if not isinstance(type_name, str) or type_name not in self._entity_keys:
            known = ", ".join(sorted(self._entity_keys)) or "none"
            return f"unknown entity type {type_name!r}; this subgraph resolves: {known}"
        fields = set(representation) - {"__typename"}
        keys = self._entity_keys[type_name]
        if " ".join(sorted(fields)) not in {" ".join(sorted(k.split())) for k in keys}:
            return (
                f"{type_name} is looked up by exactly its key ({' | '.join(sorted(keys))}); "
                f"got fields {', '.join(sorted(fields)) or 'none'}"
            )
        for name in sorted(fields):
            if not isinstance(representation[name], str):  # every key here is an ID
                return (
                    f"{type_name}.{name} must be a string (an ID), "
                    f"got {type(representation[name]).__name__} {representation[name]!r}"
                )
        code = representation.get("code")
        if type_name == "Area" and not (isinstance(code, str) and _GSS_SMALL_AREA.match(code)):
            return f"Area.code {code!r} is not a GSS small-area code such as E01009522"
        return None
