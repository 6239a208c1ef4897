"""Research-and-planning opt-outs a citizen registers in the trust's portal, with history.

* ``citizen_opt_out``: one row per person who has opted out at this node through the
  portal and not removed it. The row filter ``national_data_opt_out`` excludes them beside
  the national list. It is its own table, not rows of ``national_opt_out``: a load of the
  national list replaces that table whole and would otherwise drop the citizen's choice.
* ``citizen_opt_out_event``: every registration and removal, who made it, when and how.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported, so this revision never changes when the models do.
_ACTIONS = "action IN ('OptOutRegistered', 'OptOutRemoved')"


def upgrade() -> None:
    op.create_table(
        "citizen_opt_out",
        sa.Column("pseudonym", sa.String(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", name="pk_citizen_opt_out"),
    )
    op.create_table(
        "citizen_opt_out_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_citizen_opt_out_event"),
        sa.CheckConstraint(_ACTIONS, name=op.f("ck_citizen_opt_out_event_action")),
    )
    op.create_index(
        "ix_citizen_opt_out_event_pseudonym", "citizen_opt_out_event", ["pseudonym"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_citizen_opt_out_event_pseudonym", table_name="citizen_opt_out_event")
    op.drop_table("citizen_opt_out_event")
    op.drop_table("citizen_opt_out")
