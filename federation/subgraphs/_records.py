"""Record-level reads: people and their encounters or care episodes, under a permit.

Each function runs one SQL statement for a whole batch of people (the ``_entities`` call's
representations, or a page of the root list), with the permit's row filters in its WHERE
clause: a person without a current consent, or on the national data opt-out list, is
never fetched. Rows come back keyed by the trust pseudonym; what leaves the node in which
form is the subgraph's business (``_pseudonyms``, masks). A person's list is in a total
order (start, then the source's own id), so it reads the same at any batch size and on
either database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, select

from datatrust.federation.subgraphs._filters import restrict
from datatrust.federation.subgraphs._one_of import one_of
from datatrust.policies import Permit, require_permit
from datatrust.store import CareEpisode, Encounter, Person

__all__ = [
    "CareEpisodeRow",
    "EncounterRow",
    "PersonRow",
    "care_episodes_of",
    "care_recipients",
    "encounters_of",
    "patients",
    "patients_by_pseudonym",
]


@dataclass(frozen=True, slots=True)
class PersonRow:
    pseudonym: str
    birth_year: int | None
    gender: str | None
    lsoa_code: str | None


@dataclass(frozen=True, slots=True)
class EncounterRow:
    pseudonym: str
    started_at: datetime
    ended_at: datetime | None
    class_code: str
    status: str


@dataclass(frozen=True, slots=True)
class CareEpisodeRow:
    pseudonym: str
    event_type: str
    service_type: str | None
    started_on: date
    ended_on: date | None


_PERSON_COLUMNS = (Person.pseudonym, Person.birth_year, Person.gender, Person.lsoa_code)


def patients(engine: Engine, permit: Permit, first: int, after: str | None) -> list[PersonRow]:
    """A page of the hospital's patients that the permit lets through, by pseudonym."""
    require_permit(permit)
    query = select(*_PERSON_COLUMNS).order_by(Person.pseudonym).limit(max(0, min(first, 1000)))
    if after is not None:
        query = query.where(Person.pseudonym > after)
    query = restrict(query, permit, subject=Person.pseudonym, when=None)
    with engine.connect() as connection:
        return [PersonRow(*row) for row in connection.execute(query)]


def patients_by_pseudonym(
    engine: Engine, permit: Permit, pseudonyms: Sequence[str]
) -> dict[str, PersonRow]:
    """The patients among ``pseudonyms`` that the permit lets through."""
    require_permit(permit)
    query = select(*_PERSON_COLUMNS).where(one_of(Person.pseudonym, pseudonyms))
    query = restrict(query, permit, subject=Person.pseudonym, when=None)
    with engine.connect() as connection:
        return {row[0]: PersonRow(*row) for row in connection.execute(query)}


def encounters_of(
    engine: Engine,
    permit: Permit,
    pseudonyms: Sequence[str],
    since: date | None,
    until: date | None,
) -> dict[str, list[EncounterRow]]:
    """Each person's encounters in the period (and inside the agreement's dates)."""
    require_permit(permit)
    query = (
        select(
            Encounter.pseudonym,
            Encounter.started_at,
            Encounter.ended_at,
            Encounter.class_code,
            Encounter.status,
        )
        .where(one_of(Encounter.pseudonym, pseudonyms))
        # The source's id breaks ties on start, so a list reads the same at any batch size.
        .order_by(Encounter.pseudonym, Encounter.started_at, Encounter.encounter_id)
    )
    query = restrict(
        query,
        permit,
        subject=Encounter.pseudonym,
        when=Encounter.started_at,
        since=since,
        until=until,
    )
    found: dict[str, list[EncounterRow]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            found.setdefault(row[0], []).append(EncounterRow(*row))
    return found


def care_recipients(engine: Engine, permit: Permit, first: int, after: str | None) -> list[str]:
    """A page of the pseudonyms of people with care episodes that the permit lets through."""
    require_permit(permit)
    query = (
        select(CareEpisode.pseudonym)
        .where(CareEpisode.pseudonym.is_not(None))
        .group_by(CareEpisode.pseudonym)
        .order_by(CareEpisode.pseudonym)
        .limit(max(0, min(first, 1000)))
    )
    if after is not None:
        query = query.where(CareEpisode.pseudonym > after)
    query = restrict(query, permit, subject=CareEpisode.pseudonym, when=None)
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(query)]


def care_episodes_of(
    engine: Engine, permit: Permit, pseudonyms: Sequence[str]
) -> dict[str, list[CareEpisodeRow]]:
    """Each person's care episodes (inside the agreement's dates)."""
    require_permit(permit)
    query = (
        select(
            CareEpisode.pseudonym,
            CareEpisode.event_type,
            CareEpisode.service_type,
            CareEpisode.started_on,
            CareEpisode.ended_on,
        )
        .where(one_of(CareEpisode.pseudonym, pseudonyms))
        # The source's reference breaks ties on start (episodes often share a start day).
        .order_by(CareEpisode.pseudonym, CareEpisode.started_on, CareEpisode.event_reference)
    )
    query = restrict(
        query, permit, subject=CareEpisode.pseudonym, when=CareEpisode.started_on, when_is_date=True
    )
    found: dict[str, list[CareEpisodeRow]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            found.setdefault(row[0], []).append(CareEpisodeRow(*row))
    return found
