"""Idempotent batched writes: loading the same rows twice leaves one copy.

Every table is written with INSERT ... ON CONFLICT on its natural key (device and time
for readings, the source's own ids elsewhere), so a file loaded twice, a webhook retried,
or an ingest resumed after a crash never duplicates a row. Reference rows (sensors, access
points, people, housing cases) are updated in place; FHIR resources are replaced only by a
newer ``version``; readings and presence sightings are never rewritten; WiFi sessions
merge their accounting records. Roll-ups move in the same transaction (see ``_rollup``).

One code path, chosen by dialect: on PostgreSQL each batch is COPied into a staging table
and moved with one ``INSERT ... SELECT ... ON CONFLICT``; on SQLite it is an executemany.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, column, func, select, table
from sqlalchemy.dialects import postgresql, sqlite

from datatrust.ingest._copy import stage_rows
from datatrust.ingest._rollup import (
    add_reading_rollups,
    old_session_days,
    pg_write_readings,
    session_deltas,
)
from datatrust.store import (
    AccessPoint,
    CareEpisode,
    Condition,
    Encounter,
    HousingCase,
    Observation,
    Person,
    PresenceObservation,
    Reading,
    Sensor,
    WifiSession,
    ensure_month_partitions,
)

__all__ = ["write_rows"]

_MODELS = (
    AccessPoint,
    CareEpisode,
    Condition,
    Encounter,
    HousingCase,
    Observation,
    Person,
    PresenceObservation,
    Reading,
    Sensor,
    WifiSession,
)
_TABLES = {model.__tablename__: model.__table__ for model in _MODELS}
# table -> (conflict columns, columns updated on conflict; empty: do nothing)
_CONFLICT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sensor": (("device_id",), ("model", "kind", "lsoa_code", "latitude", "longitude")),
    "reading": (("device_id", "received_at", "quantity"), ()),
    "access_point": (("ap_mac",), ("ssid", "nas_identifier", "lsoa_code")),
    "presence_observation": (("device_token", "ap_mac", "seen_at"), ()),
    "person": (("pseudonym",), ("lsoa_code", "birth_year", "gender")),
    "encounter": (("encounter_id",), ()),
    "observation": (("observation_id",), ()),
    "condition": (("condition_id",), ()),
    "care_episode": (("event_reference",), ()),
    "housing_case": (("case_ref",), ()),
    "wifi_session": (("unique_session_id", "session_month"), ()),
}
_VERSIONED = {"encounter", "observation", "condition"}  # FHIR: a newer version replaces
_REPLACED = {"housing_case"}  # a later statutory return restates the whole case
# Parents first: encounters take their area from the person row.
_ORDER = (
    "sensor",
    "access_point",
    "person",
    "reading",
    "presence_observation",
    "encounter",
    "observation",
    "condition",
    "care_episode",
    "housing_case",
    "wifi_session",
)


def write_rows(connection: Connection, rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Upsert ``rows`` (table -> rows) inside the caller's transaction; rows given per table."""
    written: dict[str, int] = {}
    is_pg = connection.dialect.name == "postgresql"
    for name in _ORDER:
        batch = rows.get(name)
        if not batch:
            continue
        if name == "encounter":
            _fill_encounter_areas(connection, batch)
        if name == "reading":
            _write_readings(connection, batch, is_pg=is_pg)
        elif name == "wifi_session":
            before = old_session_days(connection, batch)
            _keep_stored_months(batch, before)
            ensure_month_partitions(connection, name, {row["session_month"] for row in batch})
            _execute(connection, name, batch, is_pg=is_pg)
            session_deltas(connection, batch, before)
        else:
            _execute(connection, name, _dedupe(name, batch), is_pg=is_pg)
        written[name] = len(batch)
    return written


def _write_readings(connection: Connection, batch: list[dict[str, Any]], *, is_pg: bool) -> None:
    if is_pg:
        pg_write_readings(connection, batch)
        return
    statement = _upsert(connection, "reading").returning(
        Reading.device_id, Reading.quantity, Reading.received_at, Reading.value
    )
    add_reading_rollups(connection, connection.execute(statement, batch).all())


def _execute(
    connection: Connection, name: str, batch: list[dict[str, Any]], *, is_pg: bool
) -> None:
    statement = _upsert(connection, name)
    if not is_pg:
        connection.execute(statement, batch)
        return
    columns = stage_rows(connection, name, batch)
    stage = table(f"stage_{name}", *(column(c, _TABLES[name].c[c].type) for c in columns))
    connection.execute(_upsert(connection, name, source=(columns, select(stage))))


def _dedupe(name: str, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per natural key (one statement may not touch a row twice): the newest FHIR
    version, else the last row."""
    keys = _CONFLICT[name][0]
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    versioned = name in _VERSIONED
    for row in batch:
        key = tuple(row[k] for k in keys)
        held = unique.get(key)
        if versioned and held is not None and (held["version"] or 0) > (row["version"] or 0):
            continue
        unique[key] = row
    return list(unique.values())


def _upsert(connection: Connection, name: str, *, source=None):
    """INSERT ... ON CONFLICT for table ``name``, of VALUES (executemany) or of a SELECT."""
    target = _TABLES[name]
    dialect = connection.dialect.name
    statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect](target)
    if source is not None:
        statement = statement.from_select(*source)
    keys, updates = _CONFLICT[name]
    new = statement.excluded
    if name == "wifi_session":
        return statement.on_conflict_do_update(
            index_elements=list(keys), set_=_merge_session(statement, dialect)
        )
    if name in _VERSIONED or name in _REPLACED:
        changing = [c.name for c in target.c if c.name not in ("id", *keys)]
        newer = (
            func.coalesce(new.version, -1) > func.coalesce(target.c.version, -1)
            if name in _VERSIONED
            else None
        )
        return statement.on_conflict_do_update(
            index_elements=list(keys), set_={c: new[c] for c in changing}, where=newer
        )
    if not updates:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: new[c] for c in updates}
    )


def _keep_stored_months(batch: list[dict[str, Any]], stored: dict[str, tuple[Any, Any]]) -> None:
    """A session already stored keeps its month, so its records merge into that one row
    even when this record's start (event time less session time) falls a second or a
    retry delay across a month boundary."""
    for row in batch:
        held = stored.get(row["unique_session_id"])
        if held is not None:
            row["session_month"] = held[0]


def _merge_session(statement, dialect: str) -> dict[str, Any]:
    current = WifiSession.__table__.c
    new = statement.excluded
    larger = func.greatest if dialect == "postgresql" else func.max

    def keep_larger(column: str):
        # NULL (not reported) never wins, and two NULLs stay NULL on both databases
        # (PostgreSQL's greatest() skips NULLs; SQLite's max() returns NULL if one is).
        old, incoming = current[column], new[column]
        return func.coalesce(larger(old, incoming), old, incoming)

    return {
        "started_at": func.coalesce(current.started_at, new.started_at),
        "stopped_at": func.coalesce(new.stopped_at, current.stopped_at),
        "last_event_at": case(
            (new.last_event_at > current.last_event_at, new.last_event_at),
            else_=current.last_event_at,
        ),
        "is_open": current.is_open & new.is_open,
        "session_time_seconds": keep_larger("session_time_seconds"),
        "input_octets": keep_larger("input_octets"),
        "output_octets": keep_larger("output_octets"),
    }


def _fill_encounter_areas(connection: Connection, batch: list[dict[str, Any]]) -> None:
    pseudonyms = sorted({row["pseudonym"] for row in batch})
    areas = dict(
        connection.execute(
            select(Person.pseudonym, Person.lsoa_code).where(Person.pseudonym.in_(pseudonyms))
        ).all()
    )
    for row in batch:
        row["lsoa_code"] = areas.get(row["pseudonym"])
