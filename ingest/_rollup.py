"""Roll-ups kept in step with the raw rows, inside the chunk's own transaction.

Readings are insert-only, so ``reading_hourly`` grows by exactly the readings a chunk
*inserted*: a replayed reading conflicts, is not inserted and adds nothing, whatever the
chunking. On PostgreSQL a chunk is first COPied straight into ``reading``, which either
inserts every row or none (see ``_copy.copy_new_rows``); when all went in, its hourly sums
are computed here in Python and merged with one ``INSERT ... ON CONFLICT DO UPDATE``. A
chunk holding a stored reading goes through a staging table and one statement (a
data-modifying CTE) that inserts the new readings and rolls up those ``RETURNING`` names.
On SQLite the rows ``RETURNING`` names are summed in Python.

A WiFi session counts on the UTC day of its last accounting event, which can move
forward as Interim-Update and Stop records arrive. So ``wifi_daily`` takes, per session in
the chunk, -1 on the day it counted on before (read under a row lock) and +1 on the day
it counts on after the merge; a replayed record moves nothing and changes nothing. The
stored session is looked up in its ``session_month`` and the months either side, so the
lookup touches three monthly partitions at most, and a record whose event time is a
little off (``Timestamp`` includes the NAS's retry delay) still finds its session.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from datatrust.ingest._copy import copy_new_rows, stage_rows
from datatrust.store import (
    AccessPoint,
    ReadingHourly,
    Sensor,
    WifiDaily,
    WifiSession,
    ensure_month_partitions,
)

__all__ = [
    "add_reading_rollups",
    "hourly_sums",
    "old_session_days",
    "pg_write_readings",
    "session_deltas",
]

_HOURLY = ReadingHourly.__table__

# (device_id, quantity, UTC hour) -> [count, total, minimum, maximum]
HourlySums = dict[tuple[str, str, datetime], list[Any]]

# PostgreSQL: insert the staged readings and roll up the ones inserted, in one statement.
_PG_READINGS = """
WITH new AS (
    INSERT INTO reading ({columns}) SELECT {columns} FROM stage_reading
    ON CONFLICT (device_id, received_at, quantity) DO NOTHING
    RETURNING device_id, quantity, received_at, value
), hourly AS (
    INSERT INTO reading_hourly
        (device_id, lsoa_code, quantity, hour, count, total, minimum, maximum)
    SELECT n.device_id, s.lsoa_code, n.quantity,
        date_trunc('hour', n.received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
        count(*), sum(n.value), min(n.value), max(n.value)
    FROM new n JOIN sensor s ON s.device_id = n.device_id
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (device_id, quantity, hour) DO UPDATE SET
        count = reading_hourly.count + excluded.count,
        total = reading_hourly.total + excluded.total,
        minimum = least(reading_hourly.minimum, excluded.minimum),
        maximum = greatest(reading_hourly.maximum, excluded.maximum)
    RETURNING 1
)
SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM hourly)
"""

# PostgreSQL: merge hourly sums staged from Python, each sensor's area from the inventory.
_PG_HOURLY = """
INSERT INTO reading_hourly (device_id, lsoa_code, quantity, hour, count, total, minimum, maximum)
SELECT d.device_id, s.lsoa_code, d.quantity, d.hour, d.count, d.total, d.minimum, d.maximum
FROM stage_reading_hourly d JOIN sensor s ON s.device_id = d.device_id
ON CONFLICT (device_id, quantity, hour) DO UPDATE SET
    count = reading_hourly.count + excluded.count,
    total = reading_hourly.total + excluded.total,
    minimum = least(reading_hourly.minimum, excluded.minimum),
    maximum = greatest(reading_hourly.maximum, excluded.maximum)
"""
_HOURLY_STAGED = ("device_id", "quantity", "hour", "count", "total", "minimum", "maximum")
_SUMMED = itemgetter("device_id", "quantity", "received_at", "value")
# Connection.info key: the last chunk on this connection held stored readings, so the next
# one (a replay, most likely) goes the staging way without trying COPY first.
_STAGE_FIRST = "datatrust.ingest.stage_readings_first"


def pg_write_readings(connection: Connection, batch: list[dict[str, Any]]) -> int:
    """Insert the new readings of ``batch`` and add them to ``reading_hourly`` (PostgreSQL,
    inside the caller's transaction); returns how many were new."""
    sums = hourly_sums(map(_SUMMED, batch))
    ensure_month_partitions(connection, "reading", {hour for _, _, hour in sums})
    if not connection.info.get(_STAGE_FIRST) and copy_new_rows(connection, "reading", batch):
        rows = [(*key, *s) for key, s in sums.items()]
        stage_rows(connection, "reading_hourly", rows, columns=_HOURLY_STAGED, binary=True)
        connection.exec_driver_sql(_PG_HOURLY)
        return len(batch)
    names = ", ".join(stage_rows(connection, "reading", batch, binary=True))
    inserted, _ = connection.exec_driver_sql(_PG_READINGS.format(columns=names)).one()
    connection.info[_STAGE_FIRST] = inserted < len(batch)
    return int(inserted)


def hourly_sums(readings: Iterable[tuple[str, str, datetime, float]]) -> HourlySums:
    """``(device_id, quantity, received_at, value)`` readings summed per UTC hour."""
    sums: HourlySums = {}
    hours: dict[datetime, datetime] = {}  # an uplink's readings share their time
    for device_id, quantity, received_at, value in readings:
        hour = hours.get(received_at)
        if hour is None:
            at = received_at.astimezone(UTC) if received_at.utcoffset() else received_at
            hour = hours[received_at] = at.replace(minute=0, second=0, microsecond=0)
        key = (device_id, quantity, hour)
        s = sums.get(key)
        if s is None:
            sums[key] = [1, value, value, value]
        else:
            s[0] += 1
            s[1] += value
            if value < s[2]:
                s[2] = value
            elif value > s[3]:
                s[3] = value
    return sums


def add_reading_rollups(connection: Connection, inserted: list[Any]) -> None:
    """Add ``(device_id, quantity, received_at, value)`` rows just inserted to the hourly sums."""
    if not inserted:
        return
    sums = hourly_sums(inserted)
    devices = sorted({device_id for device_id, _, _ in sums})
    areas = dict(
        connection.execute(
            select(Sensor.device_id, Sensor.lsoa_code).where(Sensor.device_id.in_(devices))
        ).all()
    )
    statement = _insert(connection)(_HOURLY)
    new = statement.excluded
    is_pg = connection.dialect.name == "postgresql"
    low, high = (func.least, func.greatest) if is_pg else (func.min, func.max)
    statement = statement.on_conflict_do_update(
        index_elements=["device_id", "quantity", "hour"],
        set_={
            "count": _HOURLY.c["count"] + new["count"],
            "total": _HOURLY.c.total + new.total,
            "minimum": low(_HOURLY.c.minimum, new.minimum),
            "maximum": high(_HOURLY.c.maximum, new.maximum),
        },
    )
    rows = [
        {
            "device_id": device_id,
            "lsoa_code": areas.get(device_id, ""),
            "quantity": quantity,
            "hour": hour,
            "count": s[0],
            "total": s[1],
            "minimum": s[2],
            "maximum": s[3],
        }
        for (device_id, quantity, hour), s in sums.items()
    ]
    connection.execute(statement, rows)


def old_session_days(
    connection: Connection, batch: list[dict[str, Any]]
) -> dict[str, tuple[date, datetime]]:
    """``unique_session_id -> (session_month, last_event_at)`` of the batch's sessions
    already stored (locked), searched in each row's month and the months either side.

    A session stored twice (two loaders racing across a month boundary) answers with its
    earliest month.
    """
    ids = [row["unique_session_id"] for row in batch]
    months = sorted({m for row in batch for m in _months_around(row["session_month"])})
    query = (
        select(WifiSession.unique_session_id, WifiSession.session_month, WifiSession.last_event_at)
        .where(WifiSession.unique_session_id.in_(ids), WifiSession.session_month.in_(months))
        .order_by(WifiSession.session_month.desc())
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return {uid: (month, last) for uid, month, last in connection.execute(query)}


def _months_around(month: date) -> tuple[date, date, date]:
    before = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
    after = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return before, month, after


def session_deltas(
    connection: Connection, batch: list[dict[str, Any]], before: dict[str, tuple[date, datetime]]
) -> None:
    """Move each session's count in ``wifi_daily`` from its old day to its new one."""
    deltas: dict[tuple[str, date], int] = defaultdict(int)
    for row in batch:
        stored = before.get(row["unique_session_id"])
        old = None if stored is None else stored[1]
        new = row["last_event_at"] if old is None else max(old, row["last_event_at"])
        if old is not None:
            deltas[(row["ap_mac"], old.date())] -= 1
        deltas[(row["ap_mac"], new.date())] += 1
    changes = {key: n for key, n in deltas.items() if n}
    if not changes:
        return
    aps = sorted({ap for ap, _ in changes})
    areas = dict(
        connection.execute(
            select(AccessPoint.ap_mac, AccessPoint.lsoa_code).where(AccessPoint.ap_mac.in_(aps))
        ).all()
    )
    statement = _insert(connection)(WifiDaily.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["ap_mac", "day"],
        set_={"sessions": WifiDaily.__table__.c.sessions + statement.excluded.sessions},
    )
    connection.execute(
        statement,
        [
            {"ap_mac": ap, "lsoa_code": areas.get(ap), "day": day, "sessions": n}
            for (ap, day), n in sorted(changes.items())
        ],
    )


def _insert(connection: Connection):
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[connection.dialect.name]
