"""WiFi presence, FHIR observations and conditions, housing cases, roll-ups, sealed quarantine.

* ``presence_observation``, ``observation``, ``condition``, ``housing_case``: the tables of
  the Meraki Scanning, FHIR Observation/Condition and H-CLIC sources.
* ``encounter.version``: FHIR ``meta.versionId``, so a newer version replaces the row.
* ``reading_hourly`` and ``wifi_daily``: roll-ups ingest keeps as data arrives, so planning
  queries over months read thousands of summary rows instead of millions of readings.
* ``quarantined_record.raw_sealed``: the unredacted record, encrypted under the node's
  quarantine key, so a replay can recover what the redacted ``raw`` hides.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _str(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable)


def _when(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _float(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Float(), nullable=nullable)


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns), unique=False)


def upgrade() -> None:
    op.create_table(
        "presence_observation",
        _id(),
        _str("device_token"),
        _str("ap_mac"),
        _when("seen_at"),
        _float("rssi", nullable=True),
        _str("kind"),
        _str("ssid", nullable=True),
        _str("network_id", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_presence_observation"),
        sa.UniqueConstraint(
            "device_token",
            "ap_mac",
            "seen_at",
            name="uq_presence_observation_device_token_ap_mac_seen_at",
        ),
    )
    _index("presence_observation", "ap_mac")

    op.create_table(
        "observation",
        _id(),
        _str("observation_id"),
        sa.Column("version", sa.Integer(), nullable=True),
        _str("pseudonym"),
        _str("status"),
        _str("code_system"),
        _str("code"),
        _str("display", nullable=True),
        _float("value", nullable=True),
        _str("unit", nullable=True),
        _when("effective_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_observation"),
        sa.UniqueConstraint("observation_id", name="uq_observation_observation_id"),
    )
    _index("observation", "pseudonym")

    op.create_table(
        "condition",
        _id(),
        _str("condition_id"),
        sa.Column("version", sa.Integer(), nullable=True),
        _str("pseudonym"),
        _str("code_system"),
        _str("code"),
        _str("display", nullable=True),
        _str("clinical_status", nullable=True),
        _when("onset_at", nullable=True),
        sa.Column("recorded_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_condition"),
        sa.UniqueConstraint("condition_id", name="uq_condition_condition_id"),
    )
    _index("condition", "pseudonym")

    op.create_table(
        "housing_case",
        _id(),
        _str("case_ref"),
        _str("pseudonym", nullable=True),
        _str("la_person_token"),
        sa.Column("approach_date", sa.Date(), nullable=False),
        _str("duty_type", nullable=True),
        sa.Column("duty_start", sa.Date(), nullable=True),
        sa.Column("duty_end", sa.Date(), nullable=True),
        _str("reason_code", nullable=True),
        _str("household_type", nullable=True),
        _str("lsoa_code", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_housing_case"),
        sa.UniqueConstraint("case_ref", name="uq_housing_case_case_ref"),
    )
    _index("housing_case", "pseudonym")
    _index("housing_case", "lsoa_code")

    op.create_table(
        "reading_hourly",
        _id(),
        _str("device_id"),
        _str("lsoa_code"),
        _str("quantity"),
        _when("hour"),
        sa.Column("count", sa.Integer(), nullable=False),
        _float("total"),
        _float("minimum"),
        _float("maximum"),
        sa.PrimaryKeyConstraint("id", name="pk_reading_hourly"),
        sa.UniqueConstraint(
            "device_id", "quantity", "hour", name="uq_reading_hourly_device_id_quantity_hour"
        ),
    )
    _index("reading_hourly", "lsoa_code", "quantity", "hour")

    op.create_table(
        "wifi_daily",
        _id(),
        _str("ap_mac"),
        _str("lsoa_code", nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_wifi_daily"),
        sa.UniqueConstraint("ap_mac", "day", name="uq_wifi_daily_ap_mac_day"),
    )
    _index("wifi_daily", "lsoa_code", "day")

    _backfill_rollups()

    with op.batch_alter_table("encounter") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
    with op.batch_alter_table("quarantined_record") as batch:
        batch.add_column(sa.Column("raw_sealed", sa.Text(), nullable=True))


def _backfill_rollups() -> None:
    """Summarise what a store already holds; from here on ingest keeps the roll-ups."""
    if op.get_bind().dialect.name == "postgresql":
        hour = "date_trunc('hour', r.received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        day = "(w.last_event_at AT TIME ZONE 'UTC')::date"
    else:  # SQLite keeps naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'
        hour = "strftime('%Y-%m-%d %H:00:00.000000', r.received_at)"
        day = "date(w.last_event_at)"
    op.execute(
        "INSERT INTO reading_hourly "  # noqa: S608 (our own table and column names)
        "(device_id, lsoa_code, quantity, hour, count, total, minimum, maximum) "
        f"SELECT r.device_id, s.lsoa_code, r.quantity, {hour}, count(*), sum(r.value), "
        "min(r.value), max(r.value) FROM reading r JOIN sensor s ON s.device_id = r.device_id "
        f"GROUP BY r.device_id, s.lsoa_code, r.quantity, {hour}"
    )
    op.execute(
        "INSERT INTO wifi_daily (ap_mac, lsoa_code, day, sessions) "  # noqa: S608 (our own table and column names)
        f"SELECT w.ap_mac, min(a.lsoa_code), {day}, count(*) FROM wifi_session w "
        f"LEFT JOIN access_point a ON a.ap_mac = w.ap_mac GROUP BY w.ap_mac, {day}"
    )


def downgrade() -> None:
    with op.batch_alter_table("quarantined_record") as batch:
        batch.drop_column("raw_sealed")
    with op.batch_alter_table("encounter") as batch:
        batch.drop_column("version")
    for table in (
        "wifi_daily",
        "reading_hourly",
        "housing_case",
        "condition",
        "observation",
        "presence_observation",
    ):
        op.drop_table(table)
