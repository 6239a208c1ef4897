"""The store queries behind subgraph fields: one SQL statement per batch of areas.

Every function aggregates in SQL (GROUP BY the area code) for all the areas a request
asks about at once, so an ``_entities`` call for fifty areas costs one query per field,
never one per area. Each takes the request's Permit, so no caller can read without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.sql import Select

from datatrust.errors import AccessDenied
from datatrust.policies import Permit
from datatrust.store import AccessPoint, CareEpisode, Encounter, Reading, Sensor, WifiSession

__all__ = [
    "PARTICULATE_QUANTITIES",
    "air_quality_by_area",
    "encounter_count_by_area",
    "footfall_by_area",
    "open_care_episodes_by_area",
    "wifi_sessions_by_area",
]

PARTICULATE_QUANTITIES = ("pm2_5", "pm10", "no2")


def _require(permit: Permit) -> None:
    if not isinstance(permit, Permit):
        raise AccessDenied("access denied: no policy decision covers this read")


def _bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(since, time.min, UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, UTC) if until else None
    return start, end


def _in_period(query: Select, column, since: date | None, until: date | None) -> Select:
    start, end = _bounds(since, until)
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


def footfall_by_area(
    engine: Engine, permit: Permit, codes: Sequence[str], since: date | None, until: date | None
) -> dict[str, int]:
    """People counted entering, summed over every people counter in each area."""
    _require(permit)
    query = (
        select(Sensor.lsoa_code, func.sum(Reading.value))
        .join(Sensor, Sensor.device_id == Reading.device_id)
        .where(Reading.quantity == "people_in", Sensor.lsoa_code.in_(codes))
        .group_by(Sensor.lsoa_code)
    )
    query = _in_period(query, Reading.received_at, since, until)
    with engine.connect() as connection:
        return {code: int(total) for code, total in connection.execute(query)}


def air_quality_by_area(
    engine: Engine, permit: Permit, codes: Sequence[str], since: date | None, until: date | None
) -> dict[str, dict[str, float | int]]:
    """Mean of each pollutant (µg/m³) and the number of readings behind it, per area."""
    _require(permit)
    query = (
        select(Sensor.lsoa_code, Reading.quantity, func.avg(Reading.value), func.count())
        .join(Sensor, Sensor.device_id == Reading.device_id)
        .where(Reading.quantity.in_(PARTICULATE_QUANTITIES), Sensor.lsoa_code.in_(codes))
        .group_by(Sensor.lsoa_code, Reading.quantity)
    )
    query = _in_period(query, Reading.received_at, since, until)
    result: dict[str, dict[str, float | int]] = {}
    with engine.connect() as connection:
        for code, quantity, mean, count in connection.execute(query):
            area = result.setdefault(code, {"count": 0})
            area[quantity] = round(float(mean), 2)
            area["count"] = int(area["count"]) + int(count)
    return result


def wifi_sessions_by_area(
    engine: Engine, permit: Permit, codes: Sequence[str], since: date | None, until: date | None
) -> dict[str, int]:
    """Public-WiFi sessions started at access points in each area."""
    _require(permit)
    query = (
        select(AccessPoint.lsoa_code, func.count(WifiSession.id))
        .join(AccessPoint, AccessPoint.ap_mac == WifiSession.ap_mac)
        .where(AccessPoint.lsoa_code.in_(codes))
        .group_by(AccessPoint.lsoa_code)
    )
    query = _in_period(query, WifiSession.last_event_at, since, until)
    with engine.connect() as connection:
        return {code: int(count) for code, count in connection.execute(query)}


def encounter_count_by_area(
    engine: Engine, permit: Permit, codes: Sequence[str], since: date | None, until: date | None
) -> dict[str, int]:
    """Hospital encounters of residents of each area that started in the period."""
    _require(permit)
    query = (
        select(Encounter.lsoa_code, func.count(Encounter.id))
        .where(Encounter.lsoa_code.in_(codes))
        .group_by(Encounter.lsoa_code)
    )
    query = _in_period(query, Encounter.started_at, since, until)
    with engine.connect() as connection:
        return {code: int(count) for code, count in connection.execute(query)}


def open_care_episodes_by_area(
    engine: Engine, permit: Permit, codes: Sequence[str], on: date | None
) -> dict[str, int]:
    """Care episodes open on ``on`` (started on or before it, not ended before it)."""
    _require(permit)
    query = (
        select(CareEpisode.lsoa_code, func.count(CareEpisode.id))
        .where(CareEpisode.lsoa_code.in_(codes))
        .group_by(CareEpisode.lsoa_code)
    )
    if on is None:
        query = query.where(CareEpisode.ended_on.is_(None))
    else:
        query = query.where(
            CareEpisode.started_on <= on,
            (CareEpisode.ended_on.is_(None)) | (CareEpisode.ended_on >= on),
        )
    with engine.connect() as connection:
        return {code: int(count) for code, count in connection.execute(query)}
