"""Idempotent batched writes: loading the same rows twice leaves one copy.

Every table is written with INSERT ... ON CONFLICT on its natural key (device and time
for readings, the source's own ids elsewhere), so a file loaded twice, a webhook retried,
or an ingest resumed after a crash never duplicates a row. Reference rows (sensors, access
points, people) are updated in place; event rows are never rewritten; WiFi sessions merge
their accounting records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from datatrust.store import (
    AccessPoint,
    CareEpisode,
    Encounter,
    Person,
    Reading,
    Sensor,
    WifiSession,
)

__all__ = ["write_rows"]

_TABLES = {
    model.__tablename__: model
    for model in (AccessPoint, CareEpisode, Encounter, Person, Reading, Sensor, WifiSession)
}
# table -> (conflict columns, columns updated on conflict; empty: do nothing)
_CONFLICT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sensor": (("device_id",), ("model", "kind", "lsoa_code", "latitude", "longitude")),
    "reading": (("device_id", "received_at", "quantity"), ()),
    "access_point": (("ap_mac",), ("ssid", "nas_identifier", "lsoa_code")),
    "person": (("pseudonym",), ("lsoa_code", "birth_year", "gender")),
    "encounter": (("encounter_id",), ()),
    "care_episode": (("event_reference",), ()),
    "wifi_session": (("unique_session_id",), ()),
}
# Parents first: encounters take their area from the person row.
_ORDER = (
    "sensor",
    "access_point",
    "person",
    "reading",
    "encounter",
    "care_episode",
    "wifi_session",
)


def write_rows(connection: Connection, rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Upsert ``rows`` (table -> rows) inside the caller's transaction; counts per table."""
    written: dict[str, int] = {}
    for table in _ORDER:
        batch = rows.get(table)
        if not batch:
            continue
        if table == "encounter":
            _fill_encounter_areas(connection, batch)
        connection.execute(_upsert(connection, table), _dedupe(table, batch))
        written[table] = len(batch)
    return written


def _dedupe(table: str, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Last row wins per natural key: one statement may not touch a row twice."""
    keys = _CONFLICT[table][0]
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in batch:
        unique[tuple(row[k] for k in keys)] = row
    return list(unique.values())


def _upsert(connection: Connection, table: str):
    """INSERT ... ON CONFLICT for ``table``, run as executemany (batched by SQLAlchemy)."""
    model = _TABLES[table]
    dialect = connection.dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = insert(model.__table__)
    keys, updates = _CONFLICT[table]
    if table == "wifi_session":
        return statement.on_conflict_do_update(
            index_elements=list(keys), set_=_merge_session(statement, dialect)
        )
    if not updates:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: statement.excluded[c] for c in updates}
    )


def _merge_session(statement, dialect: str) -> dict[str, Any]:
    table = WifiSession.__table__.c
    new = statement.excluded
    larger = func.greatest if dialect == "postgresql" else func.max

    def keep_larger(column: str):
        return larger(func.coalesce(table[column], new[column]), func.coalesce(new[column], 0))

    return {
        "started_at": func.coalesce(table.started_at, new.started_at),
        "stopped_at": func.coalesce(new.stopped_at, table.stopped_at),
        "last_event_at": case(
            (new.last_event_at > table.last_event_at, new.last_event_at),
            else_=table.last_event_at,
        ),
        "is_open": table.is_open & new.is_open,
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
