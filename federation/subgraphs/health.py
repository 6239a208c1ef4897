"""The NHS trust node's subgraph: encounters per area, and patients' records where agreed.

``Area.encounterCount`` is an aggregate (disclosure-controlled under the deciding
agreement); ``Person`` and ``Encounter`` are record-level and reachable only under an
agreement that shares them, with its row filters applied in SQL and its masks and output
pseudonyms applied here.
"""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from datatrust.federation.subgraphs._base import NodeContext, SubgraphSchema, loader, permit_of
from datatrust.federation.subgraphs._batch import protected_counts
from datatrust.federation.subgraphs._data import encounter_count_by_area
from datatrust.federation.subgraphs._overlap import overlap_field
from datatrust.federation.subgraphs._people import pseudonym_in, pseudonym_out
from datatrust.federation.subgraphs._records import (
    EncounterRow,
    PersonRow,
    encounters_of,
    patients,
    patients_by_pseudonym,
)

__all__ = ["schema"]


@strawberry.federation.type(keys=["code"], description="An ONS 2021 Lower layer Super Output Area.")
class Area:
    code: strawberry.ID

    @strawberry.field(
        description="Encounters of the area's residents in the period; null if suppressed."
    )
    async def encounter_count(
        self, info: strawberry.Info, since: date | None = None, until: date | None = None
    ) -> int | None:
        load = loader(info, "encounter_count", protected_counts(encounter_count_by_area))
        return await load.load((str(self.code), since, until))

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> Area:
        return cls(code=code)


@strawberry.type(description="A hospital encounter (FHIR R4 Encounter) of one person.")
class Encounter:
    row: strawberry.Private[EncounterRow]

    @strawberry.field(description="When the encounter started (UTC).")
    def start(self) -> datetime:
        return self.row.started_at

    @strawberry.field(description="When it ended (UTC), if it has.")
    def end(self) -> datetime | None:
        return self.row.ended_at

    @strawberry.field(description="FHIR Encounter.class code, e.g. EMER, IMP, AMB.")
    def class_code(self) -> str:
        return self.row.class_code

    @strawberry.field(description="FHIR Encounter.status, e.g. finished.")
    def status(self) -> str:
        return self.row.status


def _load_patients(context: NodeContext, keys: list[str]) -> list[PersonRow | None]:
    found = patients_by_pseudonym(context.engine, context.permit, sorted(set(keys)))
    context.disclosed.records([p for p in keys if p in found])
    return [found.get(key) for key in keys]


def _load_encounters(context: NodeContext, keys: list[tuple]) -> list[list[EncounterRow]]:
    groups: dict[tuple, list[str]] = {}
    for pseudonym, since, until in keys:
        groups.setdefault((since, until), []).append(pseudonym)
    answers = {
        period: encounters_of(context.engine, context.permit, sorted(set(people)), *period)
        for period, people in groups.items()
    }
    rows = [answers[(since, until)].get(p, []) for p, since, until in keys]
    context.disclosed.records([row.pseudonym for found in rows for row in found])
    return rows


@strawberry.federation.type(
    keys=["pseudonym"], description="A person the hospital holds records about."
)
class Person:
    key: strawberry.Private[str]
    row: strawberry.Private[PersonRow | None]

    @strawberry.field(description="The person's pseudonym, in the form the agreement gives.")
    def pseudonym(self, info: strawberry.Info) -> strawberry.ID:
        return strawberry.ID(pseudonym_out(info, self.key))

    @strawberry.field(description="Year of birth.")
    def birth_year(self) -> int | None:
        return self.row.birth_year if self.row else None

    @strawberry.field(description="Administrative gender (FHIR).")
    def gender(self) -> str | None:
        return self.row.gender if self.row else None

    @strawberry.field(description="The LSOA of the person's address.")
    def area_code(self) -> str | None:
        return self.row.lsoa_code if self.row else None

    @strawberry.field(description="The person's encounters in the period.")
    async def encounters(
        self, info: strawberry.Info, since: date | None = None, until: date | None = None
    ) -> list[Encounter]:
        rows = await loader(info, "encounters", _load_encounters).load((self.key, since, until))
        return [Encounter(row=row) for row in rows]

    @classmethod
    async def resolve_reference(
        cls, info: strawberry.Info, pseudonym: strawberry.ID
    ) -> Person | None:
        """Any well-formed pseudonym resolves; someone this node may not show has no data.

        Another node's person may be unknown here, or not consented here: their fields are
        then null and their encounters an empty list (the row filters decide), never a null
        entity the gateway would have to spread over the rest of the answer.
        """
        key = pseudonym_in(info, str(pseudonym))
        if key is None:
            return None
        row = await loader(info, "patients", _load_patients).load(key)
        return cls(key=key, row=row)


@strawberry.type
class Query:
    overlap_tokens = overlap_field()

    @strawberry.field(
        description="Patients the purpose may see (consent, opt-outs applied), by pseudonym."
    )
    def patients(
        self, info: strawberry.Info, first: int = 100, after: strawberry.ID | None = None
    ) -> list[Person]:
        context: NodeContext = info.context
        permit = permit_of(info)
        start = pseudonym_in(info, str(after)) if after is not None else None
        rows = patients(context.engine, permit, first, start)
        context.disclosed.records([row.pseudonym for row in rows])
        return [Person(key=row.pseudonym, row=row) for row in rows]


schema = SubgraphSchema(query=Query, types=[Area, Person])
