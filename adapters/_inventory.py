"""Asset-register CSVs: the council's sensors and its WiFi access points."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from datatrust.errors import RecordError

from ._common import Output, build, csv_records, read_text
from ._records import AccessPointDevice, SensorDevice

__all__ = [
    "ACCESS_POINT_COLUMNS",
    "SENSOR_COLUMNS",
    "read_access_point_inventory_csv",
    "read_sensor_inventory_csv",
]

SENSOR_COLUMNS = ("device_id", "model", "kind", "lsoa_code", "latitude", "longitude")
ACCESS_POINT_COLUMNS = ("ap_mac", "ssid", "nas_identifier", "lsoa_code")


def read_sensor_inventory_csv(
    text: str | bytes,
    source: str,
    *,
    now: datetime | None = None,
) -> Iterator[Output]:
    """A ``SensorDevice`` or a located ``RecordError`` for each row, in file order.

    ``now`` is accepted because every reader takes it; asset registers carry no times.
    """
    return csv_records(read_text(text, source), source, SENSOR_COLUMNS, _sensor)


def read_access_point_inventory_csv(
    text: str | bytes,
    source: str,
    *,
    now: datetime | None = None,
) -> Iterator[Output]:
    """An ``AccessPointDevice`` or a located ``RecordError`` for each row, in file order."""
    return csv_records(read_text(text, source), source, ACCESS_POINT_COLUMNS, _access_point)


def _access_point(location: str, row: dict[str, str]) -> Output:
    return build(
        AccessPointDevice,
        location,
        ap_mac=row["ap_mac"],
        ssid=row["ssid"],
        nas_identifier=row["nas_identifier"],
        lsoa_code=row["lsoa_code"],
    )


def _sensor(location: str, row: dict[str, str]) -> Output:
    coordinates = {}
    for name in ("latitude", "longitude"):
        try:
            coordinates[name] = float(row[name])
        except ValueError:
            return RecordError(
                f"{name} {row[name]!r} is not a number; write decimal degrees, e.g. 52.4068",
                location=location,
                field=name,
            )
    return build(
        SensorDevice,
        location,
        device_id=row["device_id"],
        model=row["model"],
        kind=row["kind"],
        lsoa_code=row["lsoa_code"],
        **coordinates,
    )
