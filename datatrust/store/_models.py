"""The tables of one node's database, as SQLModel classes.

Every node has the same schema and fills only the tables of its own data: a council node
its sensors, readings, access points and WiFi sessions; a hospital node its people and
encounters; a social-care node its care episodes. The trust's own records (purposes,
agreements, consents, the audit ledger) and the ingest bookkeeping (batches, quarantine)
are on every node.

Personal identifiers never reach these tables in the clear: ``pseudonym`` is the trust's
keyed hash of an NHS number and ``device_token`` a keyed hash of a MAC address, both made
at ingest. Every datetime column is :class:`UTCDateTime` (aware UTC in and out).

The tables live in their own ``MetaData`` (``STORE_METADATA``) with a naming convention,
so constraint names are the same on SQLite and PostgreSQL and Alembic can alter them.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from datatrust.store._types import UTCDateTime

__all__ = [
    "STORE_METADATA",
    "AccessPoint",
    "Agreement",
    "AuditEvent",
    "CareEpisode",
    "Encounter",
    "IngestBatch",
    "Person",
    "Purpose",
    "QuarantinedRecord",
    "Reading",
    "Sensor",
    "WifiSession",
]

STORE_METADATA = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class _StoreTable(SQLModel, registry=registry(metadata=STORE_METADATA)):
    """Base of the store's tables: keeps them out of the global ``SQLModel.metadata``."""


# --- council: environmental sensors (LoRaWAN uplinks) ----------------------------------


class Sensor(_StoreTable, table=True):
    """A sensor device and where it stands."""

    __tablename__ = "sensor"

    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(unique=True)
    model: str
    kind: str
    lsoa_code: str = Field(index=True)
    latitude: float
    longitude: float


class Reading(_StoreTable, table=True):
    """One measured quantity from one uplink (an uplink with three quantities is three rows)."""

    __tablename__ = "reading"
    __table_args__ = (
        sa.UniqueConstraint("device_id", "received_at", "quantity"),
        sa.Index("ix_reading_quantity_received_at", "quantity", "received_at"),
        # Covering: area statistics read (device, quantity, period) -> value from it alone.
        sa.Index(
            "ix_reading_device_id_quantity_received_at_value",
            "device_id",
            "quantity",
            "received_at",
            "value",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    device_id: str
    received_at: datetime = Field(sa_type=UTCDateTime)
    device_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    frame_counter: int | None = Field(default=None, sa_type=sa.BigInteger)
    gateway_id: str | None = None
    rssi: float | None = None
    snr: float | None = None
    quantity: str
    value: float
    unit: str


# --- council: public WiFi (RADIUS accounting) ------------------------------------------


class AccessPoint(_StoreTable, table=True):
    """A WiFi access point and the area it serves."""

    __tablename__ = "access_point"

    id: int | None = Field(default=None, primary_key=True)
    ap_mac: str = Field(unique=True)
    ssid: str
    nas_identifier: str
    lsoa_code: str = Field(index=True)


class WifiSession(_StoreTable, table=True):
    """One RADIUS accounting session, folded from its Start, Interim and Stop records.

    ``session_month`` is the first day of the UTC month the session started in (event time
    minus ``Acct-Session-Time``, the same for every record of the session). PostgreSQL
    partitions the table by it, and a partitioned table's unique keys must include the
    partition column, so the session's key is (``unique_session_id``, ``session_month``).
    """

    __tablename__ = "wifi_session"
    __table_args__ = (sa.UniqueConstraint("unique_session_id", "session_month"),)

    id: int | None = Field(default=None, primary_key=True)
    unique_session_id: str
    session_month: date
    session_id: str
    device_token: str  # keyed hash of the device MAC; the MAC itself is never stored
    ap_mac: str = Field(index=True)
    nas_identifier: str
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_event_at: datetime = Field(sa_type=UTCDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    session_time_seconds: int | None = None
    input_octets: int | None = Field(default=None, sa_type=sa.BigInteger)
    output_octets: int | None = Field(default=None, sa_type=sa.BigInteger)
    is_open: bool


# --- hospital: FHIR patients and encounters --------------------------------------------


class Person(_StoreTable, table=True):
    """A person known to this node, by pseudonym (keyed hash of the NHS number)."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    pseudonym: str = Field(unique=True)
    lsoa_code: str | None = Field(default=None, index=True)
    birth_year: int | None = None
    gender: str | None = None


class Encounter(_StoreTable, table=True):
    """A FHIR Encounter (attendance, admission, ...) of a pseudonymised person."""

    __tablename__ = "encounter"
    __table_args__ = (
        # Covering: per-area counts of a period read (area, start) -> pseudonym from it
        # alone (``id`` is the rowid); it serves lookups by area alone too (migration 0009).
        sa.Index(
            "ix_encounter_lsoa_code_started_at_pseudonym", "lsoa_code", "started_at", "pseudonym"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    encounter_id: str = Field(unique=True)
    pseudonym: str = Field(index=True)
    class_code: str
    status: str
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lsoa_code: str | None = None
    version: int | None = None  # FHIR meta.versionId: a newer version replaces the row


# --- social care: Client Level Data events ---------------------------------------------


class CareEpisode(_StoreTable, table=True):
    """An adult social care event (request, assessment, service) from a CLD return."""

    __tablename__ = "care_episode"
    __table_args__ = (
        # Covering: open episodes per area read (area, start, end) -> la_person_token from
        # it alone; it serves lookups by area alone too (migration 0009).
        sa.Index(
            "ix_care_episode_lsoa_code_started_on_ended_on_la_person_token",
            "lsoa_code",
            "started_on",
            "ended_on",
            "la_person_token",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_reference: str = Field(unique=True)
    pseudonym: str | None = Field(default=None, index=True)
    la_person_token: str
    event_type: str
    service_type: str | None = None
    started_on: date
    ended_on: date | None = None
    lsoa_code: str | None = None


# --- the trust's own records -----------------------------------------------------------


class Purpose(_StoreTable, table=True):
    """An entry of the trust's purpose register."""

    __tablename__ = "purpose"

    id: str = Field(primary_key=True)
    title: str
    dpv_term: str | None = None
    opt_out_applies: bool


class Agreement(_StoreTable, table=True):
    """One version of a data-sharing agreement; ``document`` is its JSON text."""

    __tablename__ = "agreement"

    id: str = Field(primary_key=True)
    title: str
    version: int
    status: str
    document: str = Field(sa_type=sa.Text)
    starts_on: date
    ends_on: date | None = None


# Consent records and the national data opt-out list: datatrust/store/_consent.py.


class AuditEvent(_StoreTable, table=True):
    """One entry of the node's hash-chained audit ledger; ``fields`` is a JSON array."""

    __tablename__ = "audit_event"
    # A ledger's sequence numbers are never reused, even after a row is removed.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, primary_key=True)
    recorded_at: datetime = Field(sa_type=UTCDateTime, index=True)
    node_id: str
    requester: str
    purpose: str | None = None
    operation: str
    fields: str = Field(sa_type=sa.Text)
    outcome: str
    code: str
    reason: str
    policy_version: str
    prev_hash: str
    entry_hash: str = Field(unique=True)
    # Added by migration 0007; ``entry_version`` says which fields the hash covers.
    entry_version: int = 1
    agency: str | None = None
    roles: str = Field(default="[]", sa_type=sa.Text)
    client_id: str | None = None
    subject: str | None = None
    aggregate: bool | None = None
    agreement: str | None = None
    reasons: str = Field(default="[]", sa_type=sa.Text)
    row_count: int | None = None
    subject_count: int | None = None
    subjects: str = Field(default="[]", sa_type=sa.Text)
    request_id: str | None = None
    opt_out_list_date: str | None = None
    # Added by migration 0011 (entry version 3): the request's OpenTelemetry trace id.
    trace_id: str | None = None


# --- ingest bookkeeping ----------------------------------------------------------------


class QuarantinedRecord(_StoreTable, table=True):
    """An input record that could not be loaded, kept with its reason for replay."""

    __tablename__ = "quarantined_record"

    id: int | None = Field(default=None, primary_key=True)
    source: str
    location: str
    format: str
    reason: str
    raw: str = Field(sa_type=sa.Text)  # redacted: no MAC address or NHS number
    raw_sealed: str | None = Field(default=None, sa_type=sa.Text)  # encrypted, for replay
    quarantined_at: datetime = Field(sa_type=UTCDateTime)
    replayed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IngestBatch(_StoreTable, table=True):
    """One load of one input (file, webhook body); ``(sha256, format)`` makes loads idempotent."""

    __tablename__ = "ingest_batch"
    __table_args__ = (sa.UniqueConstraint("sha256", "format"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    sha256: str
    format: str
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    records_loaded: int
    records_quarantined: int
    status: str
