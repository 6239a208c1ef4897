"""Column types shared by every store table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.operators import OperatorType

__all__ = ["UTCDateTime"]


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A ``DateTime(timezone=True)`` that only takes aware datetimes and returns aware UTC.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as
    naive UTC text and given back its UTC zone when read. A naive datetime is refused on
    the way in (its zone would be a guess), rather than silently stored as local time.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def __repr__(self) -> str:
        return "UTCDateTime()"

    def coerce_compared_value(
        self, op: OperatorType | None, value: Any
    ) -> sa.types.TypeEngine[Any]:
        if isinstance(value, timedelta):
            return sa.Interval()
        return self

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(
                f"UTCDateTime column given {type(value).__name__} {value!r}, not a datetime"
            )
        if value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to a UTC column; "
                "give it a zone, e.g. datetime.now(UTC) or value.replace(tzinfo=UTC)"
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
