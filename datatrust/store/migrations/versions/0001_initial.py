"""Initial schema of a node store: canonical records, the trust's records, ingest bookkeeping.

Drafted with autogenerate, then written out by hand with plain SQLAlchemy types so this
revision never changes when the models do. ``DateTime(timezone=True)`` is the storage
type of the models' ``UTCDateTime`` (which adds the UTC handling in Python only).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _str(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable)


def _when(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns), unique=False)


def upgrade() -> None:
    # council: sensors and readings
    op.create_table(
        "sensor",
        _id(),
        _str("device_id"),
        _str("model"),
        _str("kind"),
        _str("lsoa_code"),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sensor"),
        sa.UniqueConstraint("device_id", name="uq_sensor_device_id"),
    )
    _index("sensor", "lsoa_code")

    op.create_table(
        "reading",
        _id(),
        _str("device_id"),
        _when("received_at"),
        _when("device_time", nullable=True),
        sa.Column("frame_counter", sa.Integer(), nullable=True),
        _str("gateway_id", nullable=True),
        sa.Column("rssi", sa.Float(), nullable=True),
        sa.Column("snr", sa.Float(), nullable=True),
        _str("quantity"),
        sa.Column("value", sa.Float(), nullable=False),
        _str("unit"),
        sa.PrimaryKeyConstraint("id", name="pk_reading"),
        sa.UniqueConstraint(
            "device_id",
            "received_at",
            "quantity",
            name="uq_reading_device_id_received_at_quantity",
        ),
    )
    _index("reading", "device_id")
    _index("reading", "quantity", "received_at")

    # council: WiFi
    op.create_table(
        "access_point",
        _id(),
        _str("ap_mac"),
        _str("ssid"),
        _str("nas_identifier"),
        _str("lsoa_code"),
        sa.PrimaryKeyConstraint("id", name="pk_access_point"),
        sa.UniqueConstraint("ap_mac", name="uq_access_point_ap_mac"),
    )
    _index("access_point", "lsoa_code")

    op.create_table(
        "wifi_session",
        _id(),
        _str("unique_session_id"),
        _str("session_id"),
        _str("device_token"),
        _str("ap_mac"),
        _str("nas_identifier"),
        _when("started_at", nullable=True),
        _when("last_event_at"),
        _when("stopped_at", nullable=True),
        sa.Column("session_time_seconds", sa.Integer(), nullable=True),
        sa.Column("input_octets", sa.BigInteger(), nullable=True),
        sa.Column("output_octets", sa.BigInteger(), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_wifi_session"),
        sa.UniqueConstraint("unique_session_id", name="uq_wifi_session_unique_session_id"),
    )
    _index("wifi_session", "ap_mac")

    # hospital: people and encounters
    op.create_table(
        "person",
        _id(),
        _str("pseudonym"),
        _str("lsoa_code", nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        _str("gender", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_person"),
        sa.UniqueConstraint("pseudonym", name="uq_person_pseudonym"),
    )
    _index("person", "lsoa_code")

    op.create_table(
        "encounter",
        _id(),
        _str("encounter_id"),
        _str("pseudonym"),
        _str("class_code"),
        _str("status"),
        _when("started_at"),
        _when("ended_at", nullable=True),
        _str("lsoa_code", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_encounter"),
        sa.UniqueConstraint("encounter_id", name="uq_encounter_encounter_id"),
    )
    _index("encounter", "pseudonym")
    _index("encounter", "lsoa_code")

    # social care
    op.create_table(
        "care_episode",
        _id(),
        _str("event_reference"),
        _str("pseudonym", nullable=True),
        _str("la_person_token"),
        _str("event_type"),
        _str("service_type", nullable=True),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        _str("lsoa_code", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_care_episode"),
        sa.UniqueConstraint("event_reference", name="uq_care_episode_event_reference"),
    )
    _index("care_episode", "pseudonym")
    _index("care_episode", "lsoa_code")

    # the trust's own records
    op.create_table(
        "purpose",
        _str("id"),
        _str("title"),
        _str("dpv_term", nullable=True),
        sa.Column("opt_out_applies", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_purpose"),
    )

    op.create_table(
        "agreement",
        _str("id"),
        _str("title"),
        sa.Column("version", sa.Integer(), nullable=False),
        _str("status"),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agreement"),
    )

    op.create_table(
        "consent",
        _str("record_id"),
        _str("pseudonym"),
        _str("purpose_id"),
        _str("state"),
        _when("recorded_at"),
        sa.PrimaryKeyConstraint("record_id", name="pk_consent"),
    )
    _index("consent", "pseudonym")

    op.create_table(
        "audit_event",
        sa.Column("seq", sa.Integer(), nullable=False),
        _when("recorded_at"),
        _str("node_id"),
        _str("requester"),
        _str("purpose", nullable=True),
        _str("operation"),
        sa.Column("fields", sa.Text(), nullable=False),
        _str("outcome"),
        _str("code"),
        _str("reason"),
        _str("policy_version"),
        _str("prev_hash"),
        _str("entry_hash"),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_event"),
        sa.UniqueConstraint("entry_hash", name="uq_audit_event_entry_hash"),
        sqlite_autoincrement=True,
    )

    # ingest bookkeeping
    op.create_table(
        "quarantined_record",
        _id(),
        _str("source"),
        _str("location"),
        _str("format"),
        _str("reason"),
        sa.Column("raw", sa.Text(), nullable=False),
        _when("quarantined_at"),
        _when("replayed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quarantined_record"),
    )

    op.create_table(
        "ingest_batch",
        _id(),
        _str("source"),
        _str("sha256"),
        _str("format"),
        _when("started_at"),
        _when("finished_at", nullable=True),
        sa.Column("records_loaded", sa.Integer(), nullable=False),
        sa.Column("records_quarantined", sa.Integer(), nullable=False),
        _str("status"),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_batch"),
        sa.UniqueConstraint("sha256", "format", name="uq_ingest_batch_sha256_format"),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes with it.
    for table in (
        "ingest_batch",
        "quarantined_record",
        "audit_event",
        "consent",
        "agreement",
        "purpose",
        "care_episode",
        "encounter",
        "person",
        "wifi_session",
        "access_point",
        "reading",
        "sensor",
    ):
        op.drop_table(table)
