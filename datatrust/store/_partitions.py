"""Monthly partitions of raw readings and WiFi sessions on PostgreSQL, made as data arrives.

Migration 0004 makes ``reading`` a table range-partitioned by ``received_at``, and 0005
makes ``wifi_session`` one partitioned by ``session_month`` (the first day of the month
the session started in: stable across its Start, Interim-Update and Stop records, so one
session is one row in one partition). Each has a default partition. Before loading a
chunk, ingest calls :func:`ensure_month_partitions` with the months the chunk touches; a
month without its own partition gets one (``reading_y2026m10``), and any rows the default
partition already holds for that month move into it. On SQLite this does nothing. Each
process remembers the partitions it has seen, so the check costs one catalogue lookup per
new month, not one per chunk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime

import sqlalchemy as sa

__all__ = [
    "PARTITIONED_TABLES",
    "ensure_month_partitions",
    "is_partition",
    "month_partition_name",
]

PARTITIONED_TABLES = {"reading": "received_at", "wifi_session": "session_month"}
"""Table -> the column its monthly partitions are ranges of (PostgreSQL only)."""

_DATE_COLUMNS = {"session_month"}  # ``date`` columns; the others are ``timestamptz``

_KNOWN: set[tuple[str, str, date]] = set()  # (database, table, month) already partitioned


def is_partition(name: str | None) -> bool:
    """Whether ``name`` is one of our partitions (not a table of the models' own)."""
    return bool(name) and any(
        re.fullmatch(rf"{table}_(default|y\d{{4}}m\d{{2}})", name) for table in PARTITIONED_TABLES
    )


def month_partition_name(table: str, month: date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def ensure_month_partitions(
    connection: sa.Connection, table: str, months: Iterable[date]
) -> list[str]:
    """Create the missing monthly partitions of ``table`` (inside the caller's transaction).

    ``months`` are any dates in the months wanted. Returns the partitions created.
    """
    if connection.dialect.name != "postgresql":
        return []
    column = PARTITIONED_TABLES[table]
    database = str(connection.engine.url)
    created = []
    for month in sorted({date(m.year, m.month, 1) for m in months}):
        if (database, table, month) in _KNOWN:
            continue
        name = month_partition_name(table, month)
        # One creator at a time per table; others wait, then find the partition there.
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": table}
        )
        exists = connection.execute(sa.text("SELECT to_regclass(:name)"), {"name": name}).scalar()
        if exists is None:
            _create(connection, table, column, name, month)
            created.append(name)
        _KNOWN.add((database, table, month))
    return created


def _create(connection: sa.Connection, table: str, column: str, name: str, month: date) -> None:
    start: date = date(month.year, month.month, 1)
    end: date = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    if column not in _DATE_COLUMNS:  # a UTC instant, never the session's time zone
        start = datetime(start.year, start.month, 1, tzinfo=UTC)
        end = datetime(end.year, end.month, 1, tzinfo=UTC)
    bounds = {"start": start, "end": end}
    connection.exec_driver_sql(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS)')
    # Rows that landed in the default partition before this month had its own move over,
    # or ATTACH would refuse (the default partition may not overlap a named one).
    connection.execute(
        sa.text(
            f'WITH moved AS (DELETE FROM "{table}_default" WHERE {column} >= :start '  # noqa: S608
            f"AND {column} < :end RETURNING *) "
            f'INSERT INTO "{name}" SELECT * FROM moved'
        ),
        bounds,
    )
    start_text, end_text = start.isoformat(), end.isoformat()
    connection.exec_driver_sql(
        f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" '
        f"FOR VALUES FROM ('{start_text}') TO ('{end_text}')"
    )
