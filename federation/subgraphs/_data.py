"""The store queries behind subgraph fields: one SQL statement per batch of areas.

Every function aggregates in SQL (GROUP BY the area code) for all the areas a request
asks about at once, so an ``_entities`` call for fifty areas costs one query per field,
never one per area. Each takes the request's Permit, so no caller can read without one.

Counts of people's records (encounters, care episodes) come back as ``Count``s with the
cell key of the records they count and the number of distinct subjects, so the node can
apply disclosure control to the whole response and audit what it counted; the permit's row
filters (consent, opt-outs, agreement dates) are WHERE clauses on the same statement.

Footfall, air quality and WiFi sessions read the roll-ups ingest keeps (``reading_hourly``,
``wifi_daily``), not raw rows, so a planning query over a year reads thousands of summary
rows instead of millions of readings. Periods are whole UTC days, so the hourly and daily
buckets give exactly the raw rows' answer; an area is the one the sensor or access point
had when the data arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, func, literal, select
from sqlalchemy.sql import Select

from datatrust.federation.subgraphs._filters import restrict
from datatrust.federation.subgraphs._one_of import one_of
from datatrust.policies import Permit, require_permit
from datatrust.policies._disclosure import cell_key
from datatrust.store import CareEpisode, Encounter, ReadingHourly, WifiDaily

__all__ = [
    "PARTICULATE_QUANTITIES",
    "Count",
    "air_quality_by_area",
    "encounter_count_by_area",
    "footfall_by_area",
    "open_care_episodes_by_area",
    "wifi_sessions_by_area",
]

PARTICULATE_QUANTITIES = ("pm2_5", "pm10", "no2")


@dataclass(frozen=True, slots=True)
class Count:
    """A count of people's records in one cell: how many, their cell key, how many people."""

    count: int
    cell_key: int
    subjects: int


def _counts(engine: Engine, query: Select) -> dict[str, Count]:
    with engine.connect() as connection:
        return {
            code: Count(int(count or 0), int(key or 0), int(subjects or 0))
            for code, count, key, subjects in connection.execute(query)
        }


def _summed_roll_up(
    engine: Engine,
    permit: Permit,
    table,
    value,
    when,
    *conditions,
    since: date | None,
    until: date | None,
    salt: int,
    when_is_date: bool = False,
) -> dict[str, Count]:
    """A roll-up's ``value`` summed per area, with the cell key of the roll-up rows summed.

    Counts of people (footfall) and of devices (WiFi sessions) are disclosure-controlled;
    summing roll-up rows, the same area and period always have the same rows, so the same
    cell key and the same answer. No person is named in a roll-up, so no subjects.
    """
    require_permit(permit)
    query = (
        select(table.lsoa_code, func.sum(value), cell_key(table.id, salt), literal(0))
        .where(*conditions)
        .group_by(table.lsoa_code)
    )
    query = restrict(
        query,
        permit,
        subject=None,
        when=when,
        when_is_date=when_is_date,
        since=since,
        until=until,
    )
    return _counts(engine, query)


def footfall_by_area(
    engine: Engine,
    permit: Permit,
    codes: Sequence[str],
    since: date | None,
    until: date | None,
    *,
    salt: int = 0,
) -> dict[str, Count]:
    """People counted entering, summed over every people counter in each area."""
    hourly = ReadingHourly
    return _summed_roll_up(
        engine,
        permit,
        hourly,
        hourly.total,
        hourly.hour,
        hourly.quantity == "people_in",
        one_of(hourly.lsoa_code, codes),
        since=since,
        until=until,
        salt=salt,
    )


def air_quality_by_area(
    engine: Engine, permit: Permit, codes: Sequence[str], since: date | None, until: date | None
) -> dict[str, dict[str, float | int]]:
    """Mean of each pollutant (µg/m³) and the number of readings behind it, per area."""
    require_permit(permit)
    hourly = ReadingHourly
    query = (
        select(hourly.lsoa_code, hourly.quantity, func.sum(hourly.total), func.sum(hourly.count))
        .where(hourly.quantity.in_(PARTICULATE_QUANTITIES), one_of(hourly.lsoa_code, codes))
        .group_by(hourly.lsoa_code, hourly.quantity)
    )
    query = restrict(query, permit, subject=None, when=hourly.hour, since=since, until=until)
    result: dict[str, dict[str, float | int]] = {}
    with engine.connect() as connection:
        for code, quantity, total, count in connection.execute(query):
            area = result.setdefault(code, {"count": 0})
            area[quantity] = round(float(total) / int(count), 2)
            area["count"] = int(area["count"]) + int(count)
    return result


def wifi_sessions_by_area(
    engine: Engine,
    permit: Permit,
    codes: Sequence[str],
    since: date | None,
    until: date | None,
    *,
    salt: int = 0,
) -> dict[str, Count]:
    """Public-WiFi sessions (on the day of their last accounting event) in each area."""
    return _summed_roll_up(
        engine,
        permit,
        WifiDaily,
        WifiDaily.sessions,
        WifiDaily.day,
        one_of(WifiDaily.lsoa_code, codes),
        since=since,
        until=until,
        salt=salt,
        when_is_date=True,
    )


def encounter_count_by_area(
    engine: Engine,
    permit: Permit,
    codes: Sequence[str],
    since: date | None,
    until: date | None,
    *,
    salt: int = 0,
) -> dict[str, Count]:
    """Hospital encounters of residents of each area that started in the period."""
    require_permit(permit)
    query = (
        select(
            Encounter.lsoa_code,
            func.count(Encounter.id),
            cell_key(Encounter.id, salt),
            func.count(func.distinct(Encounter.pseudonym)),
        )
        .where(one_of(Encounter.lsoa_code, codes))
        .group_by(Encounter.lsoa_code)
    )
    query = restrict(
        query,
        permit,
        subject=Encounter.pseudonym,
        when=Encounter.started_at,
        since=since,
        until=until,
    )
    return _counts(engine, query)


def open_care_episodes_by_area(
    engine: Engine, permit: Permit, codes: Sequence[str], on: date | None, *, salt: int = 0
) -> dict[str, Count]:
    """Care episodes open on ``on`` (started on or before it, not ended before it)."""
    require_permit(permit)
    query = (
        select(
            CareEpisode.lsoa_code,
            func.count(CareEpisode.id),
            cell_key(CareEpisode.id, salt),
            func.count(func.distinct(CareEpisode.la_person_token)),
        )
        .where(one_of(CareEpisode.lsoa_code, codes))
        .group_by(CareEpisode.lsoa_code)
    )
    if on is None:
        query = query.where(CareEpisode.ended_on.is_(None))
    else:
        query = query.where(
            CareEpisode.started_on <= on,
            (CareEpisode.ended_on.is_(None)) | (CareEpisode.ended_on >= on),
        )
    query = restrict(
        query, permit, subject=CareEpisode.pseudonym, when=CareEpisode.started_on, when_is_date=True
    )
    return _counts(engine, query)
