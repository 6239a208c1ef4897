"""The canonical records every adapter produces, each checking its own rules when built.

A record that breaks a rule raises :class:`InvalidField`, naming the field, the value, the
rule (with where the rule comes from) and a fix. Adapters turn that into a located
:class:`datatrust.errors.RecordError`; nothing is silently coerced or dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from ._records_health import Condition, Observation
from ._records_housing import HousingCase
from ._rules import (
    ACCT_STATUS_TYPES,
    CLD_EVENT_TYPES,
    ENCOUNTER_CLASSES,
    ENCOUNTER_STATUSES,
    GENDERS,
    PRESENCE_KINDS,
    SENSOR_KINDS,
    InvalidField,
    check_choice,
    check_count,
    check_lsoa,
    check_mac,
    check_nhs,
    check_text,
    check_tts_id,
    check_utc,
    finite,
    is_valid_nhs_number,
    normalise_mac,
    set_field,
)

__all__ = [
    "AccessPointDevice",
    "CareEvent",
    "Condition",
    "Encounter",
    "HousingCase",
    "InvalidField",
    "Observation",
    "Patient",
    "PresenceObservation",
    "Record",
    "SensorDevice",
    "SensorUplink",
    "WifiAccounting",
    "is_valid_nhs_number",
    "normalise_mac",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class SensorDevice:
    """One sensor from the council's device inventory."""

    device_id: str
    model: str
    kind: str
    lsoa_code: str
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        check_tts_id(self, "device_id")
        check_text(self, "model")
        check_choice(self, "kind", SENSOR_KINDS, "datatrust sensor kinds")
        check_lsoa(self, "lsoa_code")
        if not -90 <= finite("latitude", self.latitude) <= 90:
            raise InvalidField("latitude", self.latitude, "WGS84 latitude is -90..90", "swap?")
        if not -180 <= finite("longitude", self.longitude) <= 180:
            raise InvalidField("longitude", self.longitude, "WGS84 longitude is -180..180", "swap?")


@dataclass(frozen=True, kw_only=True, slots=True)
class SensorUplink:
    """One LoRaWAN uplink: measurements from one device, as the network server saw it."""

    device_id: str
    received_at: datetime
    device_time: datetime | None
    frame_counter: int | None
    gateway_id: str | None
    rssi: float | None
    snr: float | None
    measurements: dict[str, float]
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_tts_id(self, "device_id")
        check_utc(self, "received_at")
        check_utc(self, "device_time", optional=True)
        check_count(self, "frame_counter")
        check_text(self, "gateway_id", optional=True)
        for name, value in (("rssi", self.rssi), ("snr", self.snr)):
            if value is not None and (checked := finite(name, value)) is not value:
                set_field(self, name, checked)
        values = self.measurements
        if not isinstance(values, dict) or not values:
            raise InvalidField(
                "measurements",
                values,
                "an uplink must carry at least one measurement",
                "check the payload codec for this device model",
            )
        # A finite float passes as it is (``v - v`` is 0.0 only for finite v); only other
        # values pay for ``finite`` and the field name it may need.
        values = {
            name: v if type(v) is float and v - v == 0.0 else finite(f"measurements.{name}", v)
            for name, v in values.items()
        }
        set_field(self, "measurements", values)
        units = self.units
        if type(units) is dict and units.keys() >= values.keys():
            return
        missing = sorted(set(values) - set(units))
        if missing:
            raise InvalidField(
                "units", self.units, f"every measurement needs a unit, missing {missing}", "add it"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class AccessPointDevice:
    """One WiFi access point from the council's access-point inventory."""

    ap_mac: str
    ssid: str
    nas_identifier: str
    lsoa_code: str

    def __post_init__(self) -> None:
        check_mac(self, "ap_mac")
        check_text(self, "ssid")
        check_text(self, "nas_identifier")
        check_lsoa(self, "lsoa_code")


@dataclass(frozen=True, kw_only=True, slots=True)
class WifiAccounting:
    """One RADIUS accounting request (RFC 2866). ``calling_station_mac`` is the raw device MAC:
    ingest must pseudonymise it before storing anything."""

    status_type: str
    session_id: str
    unique_session_id: str
    calling_station_mac: str
    called_station_mac: str
    ssid: str | None
    nas_identifier: str
    event_time: datetime
    session_time_seconds: int | None
    input_octets: int | None
    output_octets: int | None

    def __post_init__(self) -> None:
        check_choice(self, "status_type", ACCT_STATUS_TYPES, "RFC 2866 Acct-Status-Type")
        check_text(self, "session_id")
        check_text(self, "unique_session_id")
        check_mac(self, "calling_station_mac")
        check_mac(self, "called_station_mac")
        check_text(self, "ssid", optional=True)
        check_text(self, "nas_identifier")
        check_utc(self, "event_time")
        for name in ("session_time_seconds", "input_octets", "output_octets"):
            check_count(self, name)


@dataclass(frozen=True, kw_only=True, slots=True)
class PresenceObservation:
    """One sighting of a WiFi or Bluetooth device by the access points (Meraki Scanning API).
    ``client_mac`` is the raw device MAC: ingest must pseudonymise it before storing anything."""

    client_mac: str
    ap_mac: str
    seen_at: datetime
    rssi: float | None
    kind: str
    ssid: str | None
    network_id: str | None

    def __post_init__(self) -> None:
        check_mac(self, "client_mac")
        check_mac(self, "ap_mac")
        check_utc(self, "seen_at")
        if self.rssi is not None:
            set_field(self, "rssi", finite("rssi", self.rssi))
        check_choice(self, "kind", PRESENCE_KINDS, "Meraki Scanning API v3 type, WiFi or BLE")
        check_text(self, "ssid", optional=True)
        check_text(self, "network_id", optional=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class Patient:
    """One patient from a FHIR bundle, reduced to what the trust may need."""

    nhs_number: str
    lsoa_code: str | None
    birth_year: int | None
    gender: str | None
    source_id: str

    def __post_init__(self) -> None:
        check_nhs(self, "nhs_number")
        check_lsoa(self, "lsoa_code", optional=True)
        if self.birth_year is not None and not (
            isinstance(self.birth_year, int) and 1880 <= self.birth_year <= 2100
        ):
            raise InvalidField(
                "birth_year", self.birth_year, "must be 1880..2100", "check birthDate"
            )
        if self.gender is not None:
            check_choice(self, "gender", GENDERS, "FHIR R4 AdministrativeGender")
        check_text(self, "source_id")


@dataclass(frozen=True, kw_only=True, slots=True)
class Encounter:
    """One encounter between a patient and the health service."""

    encounter_id: str
    nhs_number: str
    class_code: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    version: str | None = None

    def __post_init__(self) -> None:
        check_text(self, "encounter_id")
        check_text(self, "version", optional=True)
        check_nhs(self, "nhs_number")
        check_choice(self, "class_code", ENCOUNTER_CLASSES, "HL7 v3 ActEncounterCode")
        check_choice(self, "status", ENCOUNTER_STATUSES, "FHIR R4 EncounterStatus")
        check_utc(self, "started_at")
        check_utc(self, "ended_at", optional=True)
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise InvalidField(
                "ended_at",
                self.ended_at.isoformat(),
                "an encounter cannot end before it starts",
                "check period.start and period.end",
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class CareEvent:
    """One adult social care event (request, assessment, service or review)."""

    event_reference: str
    la_person_id: str
    nhs_number: str | None
    event_type: str
    service_type: str | None
    started_on: date
    ended_on: date | None
    lsoa_code: str | None

    def __post_init__(self) -> None:
        check_text(self, "event_reference")
        check_text(self, "la_person_id")
        check_nhs(self, "nhs_number", optional=True)
        check_choice(self, "event_type", CLD_EVENT_TYPES, "CLD specification, Event Type")
        check_text(self, "service_type", optional=True)
        for name in ("started_on", "ended_on"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
                raise InvalidField(name, value, "must be a calendar date", "send YYYY-MM-DD")
        if self.ended_on is not None and self.ended_on < self.started_on:
            raise InvalidField(
                "ended_on",
                self.ended_on.isoformat(),
                "an event cannot end before it starts",
                "check Event Start Date and Event End Date",
            )
        check_lsoa(self, "lsoa_code", optional=True)


Record = (
    SensorDevice
    | SensorUplink
    | AccessPointDevice
    | WifiAccounting
    | PresenceObservation
    | Patient
    | Encounter
    | Observation
    | Condition
    | CareEvent
    | HousingCase
)
