"""Widen the audit ledger: who asked (agency, roles, client), what decided, what flowed.

The policy issue needs each entry to say which agreement decided and why, whether the
request was for aggregates, how many rows and subjects it returned and which subjects'
records (their pseudonyms, so a citizen can see who used their data), and the check date
of the national data opt-out list the node applied. ``entry_version`` records which set
of fields an entry's hash covers: entries written before this migration stay at 1 and
still verify; new entries are 2.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT_COLUMNS = ("agency", "client_id", "subject", "agreement", "request_id", "opt_out_list_date")
_JSON_COLUMNS = ("roles", "reasons", "subjects")


def upgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(
            sa.Column("entry_version", sa.Integer(), nullable=False, server_default="1")
        )
        for name in _TEXT_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(), nullable=True))
        for name in _JSON_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("aggregate", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("row_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("subject_count", sa.Integer(), nullable=True))
    op.create_index("ix_audit_event_recorded_at", "audit_event", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_event_recorded_at", table_name="audit_event")
    with op.batch_alter_table("audit_event") as batch:
        for name in ("entry_version", *_TEXT_COLUMNS, *_JSON_COLUMNS):
            batch.drop_column(name)
        for name in ("aggregate", "row_count", "subject_count"):
            batch.drop_column(name)
