"""Canonical records to table rows: pure functions, pseudonymising every identifier.

Each record type has one mapper, found by the record's class name in :data:`_MAPPERS` (one
dictionary lookup per record on the hot path, and no import of every adapter record
class). RADIUS accounting records are folded per session instead of mapped one by one,
and each session row carries its :func:`session_month`, the partition key PostgreSQL
files it under.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from datatrust.ingest._pseudonymise import Pseudonymiser

__all__ = ["Rows", "fhir_version", "rows_of", "session_month"]

Rows = dict[str, list[dict[str, Any]]]  # table name -> rows, in source order
_Mapper = Callable[[Any, Pseudonymiser, Rows], None]


def rows_of(records: Iterable[object], pseudonymiser: Pseudonymiser) -> Rows:
    """The rows a batch of canonical records becomes, grouped by table."""
    rows: Rows = {}
    sessions: dict[str, dict[str, Any]] = {}
    for record in records:
        name = type(record).__name__
        if name == "WifiAccounting":
            _fold_accounting(sessions, record, pseudonymiser)
            continue
        mapper = _MAPPERS.get(name)
        if mapper is None:
            raise TypeError(f"no table holds records of type {name}")
        mapper(record, pseudonymiser, rows)
    if sessions:
        rows["wifi_session"] = list(sessions.values())
    return rows


def fhir_version(version: object) -> int | None:
    """FHIR ``meta.versionId`` as a number to compare (servers send "3"); None if absent."""
    if version is None or isinstance(version, int):
        return version
    text = str(version).strip().removeprefix('W/"').strip('"')
    return int(text) if text.isdigit() else None


def _add(rows: Rows, table: str, row: dict[str, Any]) -> None:
    batch = rows.get(table)
    if batch is None:
        rows[table] = [row]
    else:
        batch.append(row)


def _fields(record: object, *names: str) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _sensor(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    _add(
        rows,
        "sensor",
        _fields(record, "device_id", "model", "kind", "lsoa_code", "latitude", "longitude"),
    )


def _uplink(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    batch = rows.setdefault("reading", [])
    units = record.units
    device_id, received_at = record.device_id, record.received_at
    device_time, frame_counter = record.device_time, record.frame_counter
    gateway_id, rssi, snr = record.gateway_id, record.rssi, record.snr
    for quantity, value in sorted(record.measurements.items()):
        batch.append(
            {
                "device_id": device_id,
                "received_at": received_at,
                "device_time": device_time,
                "frame_counter": frame_counter,
                "gateway_id": gateway_id,
                "rssi": rssi,
                "snr": snr,
                "quantity": quantity,
                "value": value,
                "unit": units.get(quantity, ""),
            }
        )


def _access_point(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    _add(rows, "access_point", _fields(record, "ap_mac", "ssid", "nas_identifier", "lsoa_code"))


def _presence(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    row = _fields(record, "ap_mac", "seen_at", "rssi", "kind", "ssid", "network_id")
    row["device_token"] = p.device(record.client_mac, record.seen_at)
    _add(rows, "presence_observation", row)


def _patient(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    row = _fields(record, "lsoa_code", "birth_year", "gender")
    row["pseudonym"] = p.person(record.nhs_number)
    _add(rows, "person", row)


def _encounter(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    row = _fields(record, "encounter_id", "class_code", "status", "started_at", "ended_at")
    row["pseudonym"] = p.person(record.nhs_number)
    row["lsoa_code"] = None  # filled from the person by the loader
    row["version"] = fhir_version(getattr(record, "version", None))
    _add(rows, "encounter", row)


def _observation(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    row = _fields(
        record,
        "observation_id",
        "status",
        "code_system",
        "code",
        "display",
        "value",
        "unit",
        "effective_at",
    )
    row["version"] = fhir_version(record.version)
    row["pseudonym"] = p.person(record.nhs_number)
    _add(rows, "observation", row)


def _condition(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    row = _fields(
        record,
        "condition_id",
        "code_system",
        "code",
        "display",
        "clinical_status",
        "onset_at",
    )
    row["recorded_on"] = _day(record.recorded_on)
    row["version"] = fhir_version(record.version)
    row["pseudonym"] = p.person(record.nhs_number)
    _add(rows, "condition", row)


def _care_event(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    row = _fields(
        record,
        "event_reference",
        "event_type",
        "service_type",
        "started_on",
        "ended_on",
        "lsoa_code",
    )
    row["pseudonym"] = p.person(record.nhs_number) if record.nhs_number else None
    row["la_person_token"] = p.local_person(record.la_person_id)
    _add(rows, "care_episode", row)


def _housing_case(record: Any, p: Pseudonymiser, rows: Rows) -> None:
    row = _fields(
        record,
        "case_ref",
        "approach_date",
        "duty_type",
        "duty_start",
        "duty_end",
        "reason_code",
        "household_type",
        "lsoa_code",
    )
    row["pseudonym"] = p.person(record.nhs_number) if record.nhs_number else None
    row["la_person_token"] = p.local_person(record.la_person_id)
    _add(rows, "housing_case", row)


def _day(value: date | datetime | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


_MAPPERS: dict[str, _Mapper] = {
    "SensorDevice": _sensor,
    "SensorUplink": _uplink,
    "AccessPointDevice": _access_point,
    "PresenceObservation": _presence,
    "Patient": _patient,
    "Encounter": _encounter,
    "Observation": _observation,
    "Condition": _condition,
    "CareEvent": _care_event,
    "HousingCase": _housing_case,
}


def session_month(event_time: datetime, session_time_seconds: int | None) -> date:
    """The first day of the UTC month a RADIUS session started in, from any of its records.

    Start is the record's event time less ``Acct-Session-Time`` (RFC 2866 5.7; a Start
    record has 0 or none), so Start, Interim-Update and Stop records all give the same
    month and the session stays one row in one monthly partition. ``event_time`` is UTC.
    """
    start = event_time - timedelta(seconds=session_time_seconds or 0)
    return date(start.year, start.month, 1)


def _fold_accounting(sessions: dict[str, dict[str, Any]], record: Any, p: Pseudonymiser) -> None:
    """Fold Start / Interim-Update / Stop records of one session into one row."""
    row = sessions.get(record.unique_session_id)
    if row is None:
        row = sessions[record.unique_session_id] = {
            "unique_session_id": record.unique_session_id,
            "session_month": session_month(record.event_time, record.session_time_seconds),
            "session_id": record.session_id,
            "device_token": p.device(record.calling_station_mac, record.event_time),
            "ap_mac": record.called_station_mac,
            "nas_identifier": record.nas_identifier,
            "started_at": None,
            "last_event_at": record.event_time,
            "stopped_at": None,
            "session_time_seconds": None,
            "input_octets": None,
            "output_octets": None,
            "is_open": True,
        }
    row["last_event_at"] = max(row["last_event_at"], record.event_time)
    if record.status_type == "Start":
        row["started_at"] = record.event_time
    if record.status_type == "Stop":
        row["stopped_at"] = record.event_time
        row["is_open"] = False
    for name in ("session_time_seconds", "input_octets", "output_octets"):
        value = getattr(record, name)
        if value is not None:
            row[name] = max(value, row[name] or 0)
