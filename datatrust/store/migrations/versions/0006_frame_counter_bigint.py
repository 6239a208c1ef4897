"""Widen reading.frame_counter to BIGINT: LoRaWAN frame counters run to 2^32 - 1.

A 32-bit frame counter (FCntUp) above 2,147,483,647 did not fit the signed INTEGER column,
so a long-lived device's uplinks would fail to load. On SQLite INTEGER already holds 64
bits; the batch operation keeps the schema the same on both databases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("reading", "frame_counter", type_=sa.BigInteger())
    else:
        with op.batch_alter_table("reading") as batch:
            batch.alter_column("frame_counter", type_=sa.BigInteger())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("reading", "frame_counter", type_=sa.Integer())
    else:
        with op.batch_alter_table("reading") as batch:
            batch.alter_column("frame_counter", type_=sa.Integer())
