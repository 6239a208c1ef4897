"""The adult social care node's subgraph: open care episodes per area of residence."""

from __future__ import annotations

from datetime import date

import strawberry

from datatrust.federation.subgraphs._base import NodeContext, SubgraphSchema, loader
from datatrust.federation.subgraphs._data import open_care_episodes_by_area

__all__ = ["schema"]


def _open_on(context: NodeContext, keys: list[tuple[str, date | None]]) -> list[int]:
    groups: dict[date | None, list[str]] = {}
    for code, on in keys:
        groups.setdefault(on, []).append(code)
    answers = {
        on: open_care_episodes_by_area(context.engine, context.permit, sorted(set(codes)), on)
        for on, codes in groups.items()
    }
    return [answers[on].get(code, 0) for code, on in keys]


@strawberry.federation.type(keys=["code"], description="An ONS 2021 Lower layer Super Output Area.")
class Area:
    code: strawberry.ID

    @strawberry.field(
        description="Adult social care episodes open on the date (default: open now)."
    )
    async def open_care_episodes(self, info: strawberry.Info, on: date | None = None) -> int:
        return await loader(info, "open_care_episodes", _open_on).load((str(self.code), on))

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> Area:
        return cls(code=code)


schema = SubgraphSchema(types=[Area])
