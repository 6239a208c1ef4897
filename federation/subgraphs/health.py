"""The NHS trust node's subgraph: hospital encounters, counted per area of residence."""

from __future__ import annotations

from datetime import date

import strawberry

from datatrust.federation.subgraphs._base import SubgraphSchema, loader
from datatrust.federation.subgraphs._batch import by_arguments
from datatrust.federation.subgraphs._data import encounter_count_by_area

__all__ = ["schema"]


@strawberry.federation.type(keys=["code"], description="An ONS 2021 Lower layer Super Output Area.")
class Area:
    code: strawberry.ID

    @strawberry.field(description="Encounters (FHIR R4) of the area's residents in the period.")
    async def encounter_count(
        self, info: strawberry.Info, since: date | None = None, until: date | None = None
    ) -> int:
        load = loader(info, "encounter_count", by_arguments(encounter_count_by_area, 0))
        return await load.load((str(self.code), since, until))

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> Area:
        return cls(code=code)


schema = SubgraphSchema(types=[Area])
