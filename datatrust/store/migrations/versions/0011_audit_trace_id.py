"""The audit ledger records each request's OpenTelemetry trace id.

The gateway's entry and every node's entry for one request carry the same trace id, so
an operator can go from an entry to the request's trace and log lines. Entries written
before this migration keep ``trace_id`` null and their ``entry_version`` (1 or 2), whose
hash does not cover it, so they still verify; new entries are version 3.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("trace_id")
