"""What a node tells a citizen about themself: who used their records, and what it holds.

Both answers come from this node alone (it is the controller of its records and keeper of
its ledger), for the person the access token names; Polar decides in ``_consent.py``.

``data_uses`` reads the audit ledger. Its ``subjects`` hold trust pseudonyms (``p-`` +
keyed hash), the same form as the token's ``person`` claim: the resolvers record
``Disclosed.records`` from the store's own ``pseudonym`` column or from ``pseudonym_in``,
which turns an agreement's output pseudonym (``r-...``) back into the trust pseudonym
before anything is read. So the person claim is the ledger's key as it is; no
per-agreement form is ever stored and none needs computing. Only permitted entries are
uses: a refused request returned nothing. A citizen reading this list is itself audited
by the endpoint (operation, fields, requester), with no subjects, so it never shows up as
a use of their data.

``record_counts`` counts the person's rows per kind in this node's store: a plain count,
no agreement applies (the person is not a recipient of their data under an agreement,
they are its subject, UK GDPR Art. 15).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Engine

from datatrust.store import CareEpisode, Encounter, Person
from datatrust.trust import read_audit_entries

__all__ = ["MAX_USES", "RECORD_KINDS", "DataUse", "data_uses", "record_counts"]

MAX_USES = 5000
"""The newest uses one answer carries at most; older ones are reached with ``before``."""

RECORD_KINDS = {
    "person": Person,
    "encounter": Encounter,
    "care-episode": CareEpisode,
}
"""Kinds of record a node may hold about a person, by the table that holds them."""


@dataclass(frozen=True, slots=True)
class DataUse:
    """One permitted request that returned the person's records, as the ledger has it."""

    seq: int
    at: datetime
    node: str
    agency: str | None
    client_id: str | None
    purpose: str | None
    operation: str
    fields: tuple[str, ...]
    agreement: str | None
    policy_version: str
    aggregate: bool | None
    request_id: str | None


def data_uses(
    engine: Engine,
    pseudonym: str,
    *,
    since: datetime | None = None,
    before: datetime | None = None,
    limit: int = MAX_USES,
) -> list[DataUse]:
    """The person's uses in this ledger, newest first (at most ``limit``)."""
    rows = read_audit_entries(engine, since=since, subject=pseudonym)
    uses = [
        DataUse(
            seq=seq,
            at=at,
            node=entry.node_id,
            agency=entry.agency,
            client_id=entry.client_id,
            purpose=entry.purpose,
            operation=entry.operation,
            fields=entry.fields,
            agreement=entry.agreement,
            policy_version=entry.policy_version,
            aggregate=entry.aggregate,
            request_id=entry.request_id,
        )
        for seq, at, entry in reversed(rows)
        if entry.outcome == "permit" and (before is None or at < before)
    ]
    return uses[: max(0, min(limit, MAX_USES))]


def record_counts(engine: Engine, pseudonym: str) -> dict[str, int]:
    """The person's rows per kind in this store (kinds with none are left out)."""
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        for kind, table in RECORD_KINDS.items():
            column = table.__table__.c.pseudonym  # type: ignore[attr-defined]
            query = sa.select(sa.func.count()).where(column == pseudonym)
            count = int(connection.execute(query).scalar_one() or 0)
            if count:
                counts[kind] = count
    return counts
