"""Roll-ups kept as data arrives, so planning queries over months never scan raw rows.

``reading_hourly`` holds, per sensor, quantity and UTC hour, the count, sum, minimum and
maximum of the readings; ``wifi_daily`` the number of WiFi sessions per access point and
UTC day (a session counts on the day of its last accounting event, as the raw query
does). Ingest maintains both in the same transaction as the rows they summarise, from
the rows a chunk actually inserted or moved, so replays leave them unchanged. Each keeps
the area (LSOA) its sensor or access point had when the data arrived.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field

from datatrust.store._models import _StoreTable
from datatrust.store._types import UTCDateTime

__all__ = ["ReadingHourly", "WifiDaily"]


class ReadingHourly(_StoreTable, table=True):
    """Readings of one quantity from one sensor in one UTC hour, summarised."""

    __tablename__ = "reading_hourly"
    __table_args__ = (
        sa.UniqueConstraint("device_id", "quantity", "hour"),
        sa.Index("ix_reading_hourly_lsoa_code_quantity_hour", "lsoa_code", "quantity", "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    device_id: str
    lsoa_code: str
    quantity: str
    hour: datetime = Field(sa_type=UTCDateTime)
    count: int
    total: float
    minimum: float
    maximum: float


class WifiDaily(_StoreTable, table=True):
    """WiFi sessions at one access point on one UTC day."""

    __tablename__ = "wifi_daily"
    __table_args__ = (
        sa.UniqueConstraint("ap_mac", "day"),
        sa.Index("ix_wifi_daily_lsoa_code_day", "lsoa_code", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ap_mac: str
    lsoa_code: str | None = None
    day: date
    sessions: int
