"""The adult social care node's subgraph: open episodes per area, and care records where agreed.

``Area.openCareEpisodes`` is an aggregate (disclosure-controlled); ``Person`` and
``CareEpisode`` are record-level, reachable only under an agreement that shares them, with
its row filters applied in SQL. ``Person`` is the same entity as the hospital's (the trust
pseudonym, or the agreement's pseudonym for it), so one query can join both nodes' records.
"""

from __future__ import annotations

from datetime import date

import strawberry

from datatrust.federation.subgraphs._base import NodeContext, SubgraphSchema, loader, permit_of
from datatrust.federation.subgraphs._batch import protected_counts
from datatrust.federation.subgraphs._data import open_care_episodes_by_area
from datatrust.federation.subgraphs._overlap import overlap_field
from datatrust.federation.subgraphs._people import pseudonym_in, pseudonym_out
from datatrust.federation.subgraphs._records import (
    CareEpisodeRow,
    care_episodes_of,
    care_recipients,
)

__all__ = ["schema"]


@strawberry.federation.type(keys=["code"], description="An ONS 2021 Lower layer Super Output Area.")
class Area:
    code: strawberry.ID

    @strawberry.field(
        description="Care episodes open on the date (default: now); null if suppressed."
    )
    async def open_care_episodes(self, info: strawberry.Info, on: date | None = None) -> int | None:
        load = loader(info, "open_care_episodes", protected_counts(open_care_episodes_by_area))
        return await load.load((str(self.code), on))

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> Area:
        return cls(code=code)


@strawberry.type(description="An adult social care event (Client Level Data) of one person.")
class CareEpisode:
    row: strawberry.Private[CareEpisodeRow]

    @strawberry.field(description="CLD event type: request, assessment or service.")
    def event_type(self) -> str:
        return self.row.event_type

    @strawberry.field(description="CLD service type, e.g. 'Long Term Support: Community'.")
    def service_type(self) -> str | None:
        return self.row.service_type

    @strawberry.field(description="The day the event started.")
    def start(self) -> date:
        return self.row.started_on

    @strawberry.field(description="The day it ended, if it has.")
    def end(self) -> date | None:
        return self.row.ended_on


def _load_episodes(context: NodeContext, keys: list[str]) -> list[list[CareEpisodeRow]]:
    found = care_episodes_of(context.engine, context.permit, sorted(set(keys)))
    rows = [found.get(key, []) for key in keys]
    context.disclosed.records([row.pseudonym for episodes in rows for row in episodes])
    return rows


@strawberry.federation.type(
    keys=["pseudonym"], description="A person adult social care holds records about."
)
class Person:
    key: strawberry.Private[str]

    @strawberry.field(description="The person's pseudonym, in the form the agreement gives.")
    def pseudonym(self, info: strawberry.Info) -> strawberry.ID:
        return strawberry.ID(pseudonym_out(info, self.key))

    @strawberry.field(description="The person's care events (inside the agreement's dates).")
    async def care_episodes(self, info: strawberry.Info) -> list[CareEpisode]:
        rows = await loader(info, "care_episodes", _load_episodes).load(self.key)
        return [CareEpisode(row=row) for row in rows]

    @classmethod
    def resolve_reference(cls, info: strawberry.Info, pseudonym: strawberry.ID) -> Person | None:
        """Any well-formed pseudonym resolves; someone this node may not show has no episodes.

        Another node's person may be unknown here, or not consented here: their episodes
        are then an empty list (the row filters decide), never a null the gateway would
        have to spread over the rest of the answer.
        """
        key = pseudonym_in(info, str(pseudonym))
        return None if key is None else cls(key=key)


@strawberry.type
class Query:
    overlap_tokens = overlap_field()

    @strawberry.field(description="People with care records the purpose may see, by pseudonym.")
    def care_recipients(
        self, info: strawberry.Info, first: int = 100, after: strawberry.ID | None = None
    ) -> list[Person]:
        context: NodeContext = info.context
        permit = permit_of(info)
        start = pseudonym_in(info, str(after)) if after is not None else None
        keys = care_recipients(context.engine, permit, first, start)
        context.disclosed.records(keys)
        return [Person(key=key) for key in keys]


schema = SubgraphSchema(query=Query, types=[Area, Person])
