"""The adult social care node's subgraph: open care episodes per area of residence."""

from __future__ import annotations

from datetime import date

import strawberry

from datatrust.federation.subgraphs._base import SubgraphSchema, loader
from datatrust.federation.subgraphs._batch import by_arguments
from datatrust.federation.subgraphs._data import open_care_episodes_by_area

__all__ = ["schema"]


@strawberry.federation.type(keys=["code"], description="An ONS 2021 Lower layer Super Output Area.")
class Area:
    code: strawberry.ID

    @strawberry.field(
        description="Adult social care episodes open on the date (default: open now)."
    )
    async def open_care_episodes(self, info: strawberry.Info, on: date | None = None) -> int:
        return await loader(
            info, "open_care_episodes", by_arguments(open_care_episodes_by_area, 0)
        ).load((str(self.code), on))

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> Area:
        return cls(code=code)


schema = SubgraphSchema(types=[Area])
