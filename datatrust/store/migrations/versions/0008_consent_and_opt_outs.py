"""Consent records with their history, and the cached national data opt-out list.

* ``consent`` grows from a placeholder into an ISO/IEC TS 27560 style record: schema
  version, controller, lawful basis, DPV state (checked), when it was given, last changed
  and lapses, its source, the notice version and how to withdraw. ``recorded_at`` becomes
  ``updated_at``. One record per (pseudonym, controller, purpose). The single pseudonym
  index gives way to the row filter's covering index (pseudonym, purpose_id, state,
  expires_at).
* ``consent_event``: the history of each record's states.
* ``national_opt_out`` and ``opt_out_list``: the exclusion list and its loads, kept apart
  from the person record as DESIGN.md section 6 requires.

Rows of the placeholder table (no code wrote any) are carried over with controller
``unknown:<record id>``, lawful basis ``unknown`` and one history event saying so; a state
that is not a DPV consent state becomes ``ConsentInvalidated``, so it can never count as
consent.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported, so this revision never changes when the models do.
_STATES = (
    "ConsentGiven",
    "ConsentRefused",
    "ConsentWithdrawn",
    "ConsentRevoked",
    "ConsentExpired",
    "ConsentInvalidated",
)
_STATE_LIST = ", ".join(f"'{state}'" for state in _STATES)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _str(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable)


def _when(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns), unique=False)


_NEW_REQUIRED = ("schema_version", "controller", "lawful_basis", "source")
_NEW_OPTIONAL = ("notice_version", "withdraw_how")


def upgrade() -> None:
    op.drop_index("ix_consent_pseudonym", table_name="consent")
    with op.batch_alter_table("consent") as batch:
        batch.alter_column("recorded_at", new_column_name="updated_at")
        for name in (*_NEW_REQUIRED, *_NEW_OPTIONAL):
            batch.add_column(_str(name, nullable=True))
        batch.add_column(_when("given_at", nullable=True))
        batch.add_column(_when("expires_at", nullable=True))

    op.execute(
        # The placeholder had no controller: each old record keeps its own, so two of them
        # for one person and purpose stay two records under the new unique key.
        "UPDATE consent SET schema_version = '0', controller = 'unknown:' || record_id, "
        "lawful_basis = 'unknown', source = 'before-0008', given_at = updated_at"
    )
    op.execute(
        "UPDATE consent SET state = 'ConsentInvalidated' "  # noqa: S608 (constant state names)
        f"WHERE state NOT IN ({_STATE_LIST})"
    )

    with op.batch_alter_table("consent") as batch:
        for name in _NEW_REQUIRED:
            batch.alter_column(name, existing_type=sa.String(), nullable=False)
        batch.alter_column("given_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_unique_constraint(
            "uq_consent_pseudonym_controller_purpose_id",
            ["pseudonym", "controller", "purpose_id"],
        )
        batch.create_check_constraint(op.f("ck_consent_state"), f"state IN ({_STATE_LIST})")
    _index("consent", "pseudonym", "purpose_id", "state", "expires_at")

    op.create_table(
        "consent_event",
        _id(),
        _str("record_id"),
        _str("state"),
        _str("actor"),
        _when("at"),
        _str("source"),
        _str("note", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_consent_event"),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["consent.record_id"],
            name="fk_consent_event_record_id_consent",
        ),
    )
    _index("consent_event", "record_id")
    op.execute(
        "INSERT INTO consent_event (record_id, state, actor, at, source, note) "
        "SELECT record_id, state, 'migration 0008', updated_at, 'before-0008', "
        "'carried over from the consent table before its history was kept' FROM consent"
    )

    op.create_table(
        "national_opt_out",
        _str("pseudonym"),
        _when("registered_at"),
        sa.PrimaryKeyConstraint("pseudonym", name="pk_national_opt_out"),
    )
    op.create_table(
        "opt_out_list",
        _id(),
        sa.Column("checked_on", sa.Date(), nullable=False),
        _when("loaded_at"),
        sa.Column("count", sa.Integer(), nullable=False),
        _str("source"),
        sa.PrimaryKeyConstraint("id", name="pk_opt_out_list"),
    )


def downgrade() -> None:
    for table in ("opt_out_list", "national_opt_out", "consent_event"):
        op.drop_table(table)
    op.drop_index("ix_consent_pseudonym_purpose_id_state_expires_at", table_name="consent")
    with op.batch_alter_table("consent") as batch:
        batch.drop_constraint(op.f("ck_consent_state"), type_="check")
        batch.drop_constraint("uq_consent_pseudonym_controller_purpose_id", type_="unique")
        for name in (*_NEW_REQUIRED, *_NEW_OPTIONAL, "given_at", "expires_at"):
            batch.drop_column(name)
        batch.alter_column("updated_at", new_column_name="recorded_at")
    _index("consent", "pseudonym")
