"""Tables of the second round of sources: WiFi presence, clinical observations and
conditions, and homelessness cases.

Like every store table they hold pseudonyms, never identifiers: ``device_token`` is the
day-keyed hash of a device MAC, ``pseudonym`` the trust's hash of an NHS number and
``la_person_token`` the hash of a council's own person id. FHIR resources keep their
``version`` (``meta.versionId``) so a newer version replaces the row and an older replay
does not.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field

from datatrust.store._models import _StoreTable
from datatrust.store._types import UTCDateTime

__all__ = ["Condition", "HousingCase", "Observation", "PresenceObservation"]


class PresenceObservation(_StoreTable, table=True):
    """One sighting of a device by an access point (Meraki Scanning API v3, WiFi or BLE)."""

    __tablename__ = "presence_observation"
    __table_args__ = (sa.UniqueConstraint("device_token", "ap_mac", "seen_at"),)

    id: int | None = Field(default=None, primary_key=True)
    device_token: str  # keyed hash of the client MAC, linkable within one UTC day only
    ap_mac: str = Field(index=True)
    seen_at: datetime = Field(sa_type=UTCDateTime)
    rssi: float | None = None
    kind: str  # "wifi" | "ble"
    ssid: str | None = None
    network_id: str | None = None


class Observation(_StoreTable, table=True):
    """A FHIR Observation (a measurement or finding) of a pseudonymised person."""

    __tablename__ = "observation"

    id: int | None = Field(default=None, primary_key=True)
    observation_id: str = Field(unique=True)
    version: int | None = None
    pseudonym: str = Field(index=True)
    status: str
    code_system: str
    code: str
    display: str | None = None
    value: float | None = None
    unit: str | None = None
    effective_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Condition(_StoreTable, table=True):
    """A FHIR Condition (a problem or diagnosis) of a pseudonymised person."""

    __tablename__ = "condition"

    id: int | None = Field(default=None, primary_key=True)
    condition_id: str = Field(unique=True)
    version: int | None = None
    pseudonym: str = Field(index=True)
    code_system: str
    code: str
    display: str | None = None
    clinical_status: str | None = None
    onset_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recorded_on: date | None = None


class HousingCase(_StoreTable, table=True):
    """A homelessness case from the council's H-CLIC return; a later return updates it."""

    __tablename__ = "housing_case"

    id: int | None = Field(default=None, primary_key=True)
    case_ref: str = Field(unique=True)
    pseudonym: str | None = Field(default=None, index=True)
    la_person_token: str
    approach_date: date
    duty_type: str | None = None
    duty_start: date | None = None
    duty_end: date | None = None
    reason_code: str | None = None
    household_type: str | None = None
    lsoa_code: str | None = Field(default=None, index=True)
