"""The council node's subgraph: areas, footfall, air quality and public-WiFi use.

The council owns the trust's list of areas (ONS 2021 LSOAs) and is the root of area
queries; other nodes extend ``Area`` with their own fields through ``@key(fields: "code")``.
"""

from __future__ import annotations

from datetime import date

import strawberry

from datatrust.demo import coventry_lsoas
from datatrust.federation.subgraphs._base import SubgraphSchema, loader, permit_of
from datatrust.federation.subgraphs._batch import by_arguments, protected_counts
from datatrust.federation.subgraphs._data import (
    air_quality_by_area,
    footfall_by_area,
    wifi_sessions_by_area,
)

__all__ = ["schema"]

_AREA_NAMES = {lsoa.code: lsoa.name for lsoa in coventry_lsoas()}


@strawberry.type(description="Air quality from the council's LoRaWAN sensors in an area.")
class AirQuality:
    pm25_mean: float | None = strawberry.field(description="Mean PM2.5, µg/m³.")
    pm10_mean: float | None = strawberry.field(description="Mean PM10, µg/m³.")
    no2_mean: float | None = strawberry.field(description="Mean NO₂, µg/m³.")
    reading_count: int = strawberry.field(description="Readings behind these means.")


@strawberry.federation.type(keys=["code"], description="An ONS 2021 Lower layer Super Output Area.")
class Area:
    code: strawberry.ID = strawberry.field(description="GSS code, e.g. E01009522.")

    @strawberry.field(description="The ONS name of the area, e.g. 'Coventry 014A'.")
    def name(self, info: strawberry.Info) -> str | None:
        permit_of(info)
        return _AREA_NAMES.get(str(self.code))

    @strawberry.field(
        description="People counted entering the area's counters; null if suppressed."
    )
    async def footfall(
        self, info: strawberry.Info, since: date | None = None, until: date | None = None
    ) -> int | None:
        load = loader(info, "footfall", protected_counts(footfall_by_area, absent_is_zero=False))
        return await load.load((str(self.code), since, until))

    @strawberry.field(description="Pollutant means from the area's air-quality sensors.")
    async def air_quality(
        self, info: strawberry.Info, since: date | None = None, until: date | None = None
    ) -> AirQuality | None:
        load = loader(info, "air_quality", by_arguments(air_quality_by_area, None))
        values = await load.load((str(self.code), since, until))
        if values is None:
            return None
        return AirQuality(
            pm25_mean=values.get("pm2_5"),
            pm10_mean=values.get("pm10"),
            no2_mean=values.get("no2"),
            reading_count=int(values["count"]),
        )

    @strawberry.field(description="Public-WiFi sessions at the area's access points.")
    async def wifi_sessions(
        self, info: strawberry.Info, since: date | None = None, until: date | None = None
    ) -> int | None:
        load = loader(
            info, "wifi_sessions", protected_counts(wifi_sessions_by_area, absent_is_zero=False)
        )
        return await load.load((str(self.code), since, until))

    @classmethod
    def resolve_reference(cls, code: strawberry.ID) -> Area:
        return cls(code=code)


@strawberry.type
class Query:
    @strawberry.field(description="The trust's areas, optionally only the given codes.")
    def areas(
        self, info: strawberry.Info, codes: list[strawberry.ID] | None = None, first: int = 100
    ) -> list[Area]:
        permit_of(info)
        wanted = list(_AREA_NAMES) if codes is None else [str(c) for c in codes]
        return [Area(code=strawberry.ID(code)) for code in wanted[: max(first, 0)]]


schema = SubgraphSchema(query=Query, types=[Area])
