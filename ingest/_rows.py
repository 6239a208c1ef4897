"""Canonical records to table rows: pure functions, pseudonymising every identifier."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from datatrust.adapters import (
    AccessPointDevice,
    CareEvent,
    Encounter,
    Patient,
    SensorDevice,
    SensorUplink,
    WifiAccounting,
)
from datatrust.ingest._pseudonymise import Pseudonymiser

__all__ = ["Rows", "rows_of"]

Rows = dict[str, list[dict[str, Any]]]  # table name -> rows, in source order


def rows_of(records: Iterable[object], pseudonymiser: Pseudonymiser) -> Rows:
    """The rows a batch of canonical records becomes, grouped by table."""
    rows: Rows = {}
    sessions: dict[str, dict[str, Any]] = {}
    for record in records:
        if isinstance(record, WifiAccounting):
            _fold_accounting(sessions, record, pseudonymiser)
            continue
        table, row = _row(record, pseudonymiser)
        rows.setdefault(table, []).extend(row)
    if sessions:
        rows["wifi_session"] = list(sessions.values())
    return rows


def _row(record: object, p: Pseudonymiser) -> tuple[str, list[dict[str, Any]]]:
    match record:
        case SensorDevice():
            return "sensor", [
                {
                    "device_id": record.device_id,
                    "model": record.model,
                    "kind": record.kind,
                    "lsoa_code": record.lsoa_code,
                    "latitude": record.latitude,
                    "longitude": record.longitude,
                }
            ]
        case SensorUplink():
            common = {
                "device_id": record.device_id,
                "received_at": record.received_at,
                "device_time": record.device_time,
                "frame_counter": record.frame_counter,
                "gateway_id": record.gateway_id,
                "rssi": record.rssi,
                "snr": record.snr,
            }
            return "reading", [
                {**common, "quantity": q, "value": v, "unit": record.units.get(q, "")}
                for q, v in sorted(record.measurements.items())
            ]
        case AccessPointDevice():
            return "access_point", [
                {
                    "ap_mac": record.ap_mac,
                    "ssid": record.ssid,
                    "nas_identifier": record.nas_identifier,
                    "lsoa_code": record.lsoa_code,
                }
            ]
        case Patient():
            return "person", [
                {
                    "pseudonym": p.person(record.nhs_number),
                    "lsoa_code": record.lsoa_code,
                    "birth_year": record.birth_year,
                    "gender": record.gender,
                }
            ]
        case Encounter():
            return "encounter", [
                {
                    "encounter_id": record.encounter_id,
                    "pseudonym": p.person(record.nhs_number),
                    "class_code": record.class_code,
                    "status": record.status,
                    "started_at": record.started_at,
                    "ended_at": record.ended_at,
                    "lsoa_code": None,  # filled from the person by the loader
                }
            ]
        case CareEvent():
            return "care_episode", [
                {
                    "event_reference": record.event_reference,
                    "pseudonym": p.person(record.nhs_number) if record.nhs_number else None,
                    "la_person_token": p.local_person(record.la_person_id),
                    "event_type": record.event_type,
                    "service_type": record.service_type,
                    "started_on": record.started_on,
                    "ended_on": record.ended_on,
                    "lsoa_code": record.lsoa_code,
                }
            ]
    raise TypeError(f"no table holds records of type {type(record).__name__}")


def _fold_accounting(
    sessions: dict[str, dict[str, Any]], record: WifiAccounting, p: Pseudonymiser
) -> None:
    """Fold Start / Interim-Update / Stop records of one session into one row."""
    row = sessions.get(record.unique_session_id)
    if row is None:
        row = sessions[record.unique_session_id] = {
            "unique_session_id": record.unique_session_id,
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
