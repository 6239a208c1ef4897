"""The PostgreSQL fast path: rows into a temporary staging table with COPY.

``INSERT ... VALUES`` with executemany pays a round trip and a parse per batch of rows;
COPY streams them in one protocol exchange. The staging table has the target table's
column types and no keys, lives for the connection, and is emptied at each commit, so
``INSERT INTO target SELECT ... FROM stage ON CONFLICT ...`` then applies the same natural
keys as the SQLite path.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

__all__ = ["stage_rows"]


def stage_rows(connection: Connection, table: str, rows: list[dict[str, Any]]) -> list[str]:
    """COPY ``rows`` into ``stage_<table>`` (created on first use); returns the columns."""
    columns = list(rows[0])
    names = ", ".join(columns)
    stage = f"stage_{table}"
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "  # noqa: S608 (our own table and column names)
        f"AS SELECT {names} FROM {table} WITH NO DATA"
    )
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
        write, values = copy.write_row, itemgetter(*columns)
        for row in rows:
            write(values(row))
    return columns
