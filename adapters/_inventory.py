"""Asset-register CSVs: the council's sensors and its WiFi access points."""

from __future__ import annotations

from collections.abc import Iterator

from datatrust.errors import RecordError

from ._common import Output, build, csv_rows, read_text
from ._records import AccessPointDevice, SensorDevice

__all__ = [
    "ACCESS_POINT_COLUMNS",
    "SENSOR_COLUMNS",
    "read_access_point_inventory_csv",
    "read_sensor_inventory_csv",
]

SENSOR_COLUMNS = ("device_id", "model", "kind", "lsoa_code", "latitude", "longitude")
ACCESS_POINT_COLUMNS = ("ap_mac", "ssid", "nas_identifier", "lsoa_code")


def read_sensor_inventory_csv(text: str | bytes, source: str) -> Iterator[Output]:
    """A ``SensorDevice`` or a located ``RecordError`` for each row, in file order."""
    rows = csv_rows(read_text(text, source), source, SENSOR_COLUMNS)
    return (_sensor(location, row) for location, row in rows)


def read_access_point_inventory_csv(text: str | bytes, source: str) -> Iterator[Output]:
    """An ``AccessPointDevice`` or a located ``RecordError`` for each row, in file order."""
    rows = csv_rows(read_text(text, source), source, ACCESS_POINT_COLUMNS)
    return (
        build(
            AccessPointDevice,
            location,
            ap_mac=row["ap_mac"],
            ssid=row["ssid"],
            nas_identifier=row["nas_identifier"],
            lsoa_code=row["lsoa_code"],
        )
        for location, row in rows
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
