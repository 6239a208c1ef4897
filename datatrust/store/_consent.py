"""Consent records and the national data opt-out list, as each node stores them.

* ``consent``: one record per (person, controller, purpose), in the spirit of ISO/IEC TS
  27560 and the W3C Data Privacy Vocabulary: its current DPV state and when it lapses.
  Row filters ask "does this pseudonym hold a current consent for this purpose", so the
  index leads with (pseudonym, purpose_id, state) and also carries ``expires_at``: the
  EXISTS subquery is answered from the index alone.
* ``consent_event``: every change of a record's state, with who made it, when and how;
  the history a citizen and a DPO read.
* ``national_opt_out``: the cached NHS national data opt-out exclusion list, one pseudonym
  per row. Opt-out status is deliberately kept apart from the person record (DESIGN.md
  section 6): it is a list the node holds, replaced whole on each load.
* ``opt_out_list``: one row per load of that list, with the date the NHS checked it, which
  every audit entry quotes.
* ``citizen_opt_out`` and ``citizen_opt_out_event``: research-and-planning opt-outs a
  citizen registered in the trust's portal, and their history. Kept apart from the
  national list, which each load replaces whole, so that a load never drops them.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field

from datatrust.store._models import _StoreTable
from datatrust.store._types import UTCDateTime

__all__ = [
    "CITIZEN_OPT_OUT_ACTIONS",
    "CONSENT_STATES",
    "CitizenOptOut",
    "CitizenOptOutEvent",
    "Consent",
    "ConsentEvent",
    "NationalOptOut",
    "OptOutListLoad",
]

CONSENT_STATES = (
    "ConsentGiven",
    "ConsentRefused",
    "ConsentWithdrawn",
    "ConsentRevoked",
    "ConsentExpired",
    "ConsentInvalidated",
)
"""The consent states of the W3C Data Privacy Vocabulary (``dpv:ConsentStatus``)."""

_STATE_CHECK = "state IN (" + ", ".join(f"'{state}'" for state in CONSENT_STATES) + ")"


class Consent(_StoreTable, table=True):
    """One consent record: a person's consent to one controller for one purpose."""

    __tablename__ = "consent"
    __table_args__ = (
        sa.UniqueConstraint("pseudonym", "controller", "purpose_id"),
        sa.CheckConstraint(_STATE_CHECK, name="state"),
        # The row filter's lookup, covering: (pseudonym, purpose, state) -> expires_at.
        sa.Index(
            "ix_consent_pseudonym_purpose_id_state_expires_at",
            "pseudonym",
            "purpose_id",
            "state",
            "expires_at",
        ),
    )

    record_id: str = Field(primary_key=True)
    schema_version: str
    pseudonym: str
    controller: str  # the agency id of the controller the consent was given to
    purpose_id: str
    lawful_basis: str
    state: str  # one of CONSENT_STATES
    given_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    source: str
    notice_version: str | None = None
    withdraw_how: str | None = None


class ConsentEvent(_StoreTable, table=True):
    """One change of a consent record's state: to what, by whom, when, through what."""

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    record_id: str = Field(foreign_key="consent.record_id", index=True)
    state: str
    actor: str
    at: datetime = Field(sa_type=UTCDateTime)
    source: str
    note: str | None = None


class NationalOptOut(_StoreTable, table=True):
    """A pseudonym on the cached national data opt-out list; ``registered_at`` is its first load."""

    __tablename__ = "national_opt_out"

    pseudonym: str = Field(primary_key=True)
    registered_at: datetime = Field(sa_type=UTCDateTime)


class OptOutListLoad(_StoreTable, table=True):
    """One load of the national data opt-out list, replacing the one before."""

    __tablename__ = "opt_out_list"

    id: int | None = Field(default=None, primary_key=True)
    checked_on: date
    loaded_at: datetime = Field(sa_type=UTCDateTime)
    count: int
    source: str


CITIZEN_OPT_OUT_ACTIONS = ("OptOutRegistered", "OptOutRemoved")
"""What a citizen can do to their research-and-planning opt-out at a node."""


class CitizenOptOut(_StoreTable, table=True):
    """A person who opted out of research and planning in the portal (migration 0010)."""

    __tablename__ = "citizen_opt_out"

    pseudonym: str = Field(primary_key=True)
    registered_at: datetime = Field(sa_type=UTCDateTime)


class CitizenOptOutEvent(_StoreTable, table=True):
    """One registration or removal of a citizen's opt-out: by whom, when, through what."""

    __tablename__ = "citizen_opt_out_event"
    __table_args__ = (
        sa.CheckConstraint(
            "action IN (" + ", ".join(f"'{a}'" for a in CITIZEN_OPT_OUT_ACTIONS) + ")",
            name="action",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    pseudonym: str = Field(index=True)
    action: str  # one of CITIZEN_OPT_OUT_ACTIONS
    actor: str
    at: datetime = Field(sa_type=UTCDateTime)
    source: str
