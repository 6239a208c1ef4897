"""A covering index of readings by device, quantity and time; drop the device-only one.

Area statistics start from the sensors of the areas asked for and read each sensor's
readings of one quantity in a period. With only (quantity, received_at) the database
scans every reading of that quantity in the period, whatever the area; with
(device_id, quantity, received_at, value) it reads just the asked-for sensors' rows from
the index alone (measured on the demo data, five areas' air quality: 15.0 ms -> 3.7 ms;
the gap grows with the store).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_reading_device_id_quantity_received_at_value"


def upgrade() -> None:
    op.create_index(
        INDEX, "reading", ["device_id", "quantity", "received_at", "value"], unique=False
    )
    op.drop_index("ix_reading_device_id", table_name="reading")


def downgrade() -> None:
    op.create_index("ix_reading_device_id", "reading", ["device_id"], unique=False)
    op.drop_index(INDEX, table_name="reading")
