"""Roll-ups kept in step with the raw rows, inside the chunk's own transaction.

Readings are insert-only, so ``reading_hourly`` grows by exactly the readings a chunk
*inserted* (``RETURNING`` of ``INSERT ... ON CONFLICT DO NOTHING`` names them): a replayed
reading conflicts, is not returned and adds nothing, whatever the chunking. On PostgreSQL
the insert and the roll-up are one statement (a data-modifying CTE); on SQLite the
returned rows are summed in Python.

A WiFi session counts on the UTC day of its last accounting event, which can move
forward as Interim-Update and Stop records arrive. So ``wifi_daily`` takes, per session in
the chunk, -1 on the day it counted on before (read under a row lock) and +1 on the day
it counts on after the merge; a replayed record moves nothing and changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from datatrust.store import AccessPoint, ReadingHourly, Sensor, WifiDaily, WifiSession

__all__ = ["add_reading_rollups", "old_session_days", "pg_insert_readings", "session_deltas"]

_HOURLY = ReadingHourly.__table__

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


def pg_insert_readings(connection: Connection, columns: list[str]) -> int:
    """Move the staged readings into ``reading`` and ``reading_hourly``; readings inserted."""
    names = ", ".join(columns)
    inserted, _ = connection.exec_driver_sql(_PG_READINGS.format(columns=names)).one()
    return int(inserted)


def add_reading_rollups(connection: Connection, inserted: list[Any]) -> None:
    """Add ``(device_id, quantity, received_at, value)`` rows just inserted to the hourly sums."""
    if not inserted:
        return
    devices = sorted({row[0] for row in inserted})
    areas = dict(
        connection.execute(
            select(Sensor.device_id, Sensor.lsoa_code).where(Sensor.device_id.in_(devices))
        ).all()
    )
    sums: dict[tuple[str, str, datetime], list[float]] = {}
    for device_id, quantity, received_at, value in inserted:
        key = (device_id, quantity, received_at.replace(minute=0, second=0, microsecond=0))
        s = sums.get(key)
        if s is None:
            sums[key] = [1, value, value, value]
        else:
            s[0] += 1
            s[1] += value
            s[2] = min(s[2], value)
            s[3] = max(s[3], value)
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


def old_session_days(connection: Connection, batch: list[dict[str, Any]]) -> dict[str, datetime]:
    """``unique_session_id -> last_event_at`` of the batch's sessions already stored (locked)."""
    ids = [row["unique_session_id"] for row in batch]
    query = select(WifiSession.unique_session_id, WifiSession.last_event_at).where(
        WifiSession.unique_session_id.in_(ids)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return dict(connection.execute(query).all())


def session_deltas(
    connection: Connection, batch: list[dict[str, Any]], before: dict[str, datetime]
) -> None:
    """Move each session's count in ``wifi_daily`` from its old day to its new one."""
    deltas: dict[tuple[str, date], int] = defaultdict(int)
    for row in batch:
        old = before.get(row["unique_session_id"])
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
