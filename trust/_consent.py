"""Consent records at a node: give, withdraw or revoke, read the current ones and the history.

A record follows ISO/IEC TS 27560 and the W3C Data Privacy Vocabulary: one per person
(pseudonym), controller (agency) and purpose, with its lawful basis, source, notice version
and how to withdraw, and every change kept as an event with its actor, time and source.
Which change may follow which state is :mod:`datatrust.trust._consent_states`; this module
validates the request, applies the change in one transaction and reads records back.

Expiry happens at query time: a record given until ``expires_at`` stops being current at
that instant, in these reads and in the row filter (:func:`has_current_consent`) alike.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc

from datatrust.errors import ConsentError
from datatrust.store import BEGIN_IMMEDIATE, Consent, ConsentEvent, store_unavailable
from datatrust.trust._consent_states import (
    ConsentChange,
    ConsentState,
    effective_state,
    next_state,
)
from datatrust.trust._purposes import PurposeRegister, demo_purpose_register

__all__ = [
    "CONSENT_SCHEMA_VERSION",
    "ConsentGrant",
    "ConsentRecord",
    "ConsentStatusChange",
    "consent_history",
    "current_consents",
    "give_consent",
    "give_consents",
    "withdraw_consent",
]

CONSENT_SCHEMA_VERSION = "datatrust-consent/1 (ISO/IEC TS 27560:2023, DPV 2)"
"""What a record's fields mean; stored in each record so a later schema can tell them apart."""

_LAWFUL_BASIS = re.compile(r"^6\(1\)\((?:a|b|c|d|e|ea|f)\)(?:\+9\(2\)\([a-j]\))?$")
_CONSENT: sa.Table = Consent.__table__  # type: ignore[assignment]
_EVENT: sa.Table = ConsentEvent.__table__  # type: ignore[assignment]
_T = TypeVar("_T")

# Built once: a statement object keeps its compiled form and cache key, which matters when
# a bulk load gives thousands of consents (building them per call cost ~1 ms each).
_SELECT_RECORD = (
    sa.select(_CONSENT)
    .where(
        _CONSENT.c.pseudonym == sa.bindparam("key_pseudonym"),
        _CONSENT.c.controller == sa.bindparam("key_controller"),
        _CONSENT.c.purpose_id == sa.bindparam("key_purpose"),
    )
    .with_for_update()
)
_INSERT_RECORD = _CONSENT.insert()
_UPDATE_RECORD = _CONSENT.update().where(_CONSENT.c.record_id == sa.bindparam("key_record_id"))
_INSERT_EVENT = _EVENT.insert()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRecord:
    """One consent record as it stands at the time it was read (``state`` is effective)."""

    record_id: str
    schema_version: str
    pseudonym: str
    controller: str
    purpose: str
    lawful_basis: str
    state: ConsentState
    given_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    source: str
    notice_version: str | None
    withdraw_how: str | None

    @property
    def is_current(self) -> bool:
        """True if this consent counts now: given and not past its expiry."""
        return self.state is ConsentState.GIVEN


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentStatusChange:
    """One entry of a person's consent history: a record entering a state."""

    record_id: str
    controller: str
    purpose: str
    state: ConsentState
    actor: str
    at: datetime
    source: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentGrant:
    """One consent to record: whose, to which controller, for what, on what basis, how.

    Checks itself when built: every name non-empty, the lawful basis a UK GDPR Art. 6 basis
    (optionally with an Art. 9 condition) and any expiry a time with a zone.
    """

    pseudonym: str
    controller: str
    purpose: str
    lawful_basis: str
    source: str
    actor: str
    expires_at: datetime | None = None
    notice_version: str | None = None
    withdraw_how: str | None = None

    def __post_init__(self) -> None:
        _require(
            pseudonym=self.pseudonym,
            controller=self.controller,
            purpose=self.purpose,
            source=self.source,
            actor=self.actor,
        )
        if not isinstance(self.lawful_basis, str) or not _LAWFUL_BASIS.match(self.lawful_basis):
            raise ConsentError(
                f"lawful basis {self.lawful_basis!r} is not a UK GDPR Art. 6 basis: write it "
                "as '6(1)(a)' (consent) or another 6(1)(x), optionally with an Art. 9 "
                "condition as '6(1)(a)+9(2)(a)'",
                field="lawful_basis",
            )
        if self.expires_at is not None:
            _aware(self.expires_at, "expires_at")


def give_consent(
    engine: sa.Engine,
    *,
    pseudonym: str,
    controller: str,
    purpose: str,
    lawful_basis: str,
    source: str,
    actor: str,
    expires_at: datetime | None = None,
    now: datetime | None = None,
    notice_version: str | None = None,
    withdraw_how: str | None = None,
    register: PurposeRegister | None = None,
) -> ConsentRecord:
    """Record that ``pseudonym`` consents to ``controller`` using their data for ``purpose``.

    Giving again renews a current consent and starts a fresh one after a withdrawal,
    revocation, refusal or expiry. ``register`` is the trust's purpose register (the demo
    trust's when not given); an unknown purpose is PurposeUnknown, a bad lawful basis,
    expiry or empty field ConsentError.
    """
    grant = ConsentGrant(
        pseudonym=pseudonym,
        controller=controller,
        purpose=purpose,
        lawful_basis=lawful_basis,
        source=source,
        actor=actor,
        expires_at=expires_at,
        notice_version=notice_version,
        withdraw_how=withdraw_how,
    )
    [record] = give_consents(engine, [grant], now=now, register=register)
    return record


def give_consents(
    engine: sa.Engine,
    grants: Iterable[ConsentGrant],
    *,
    now: datetime | None = None,
    register: PurposeRegister | None = None,
) -> list[ConsentRecord]:
    """Record many consents in one transaction (a bulk load): all of them, or none.

    Each is checked as :func:`give_consent` checks one, before anything is written.
    """
    now = _aware(now or datetime.now(UTC), "now")
    register = register or demo_purpose_register()
    checked = []
    for grant in grants:
        purpose_id = register.resolve(grant.purpose).id
        if grant.expires_at is not None and grant.expires_at <= now:
            raise ConsentError(
                f"expires_at {grant.expires_at.isoformat()} is not after the time of giving "
                f"{now.isoformat()}; give a later expiry or none",
                field="expires_at",
            )
        checked.append((grant, purpose_id))

    def give_all(connection: sa.Connection) -> list[ConsentRecord]:
        return [_give(connection, grant, purpose_id, now) for grant, purpose_id in checked]

    return _write(engine, give_all)


def _give(
    connection: sa.Connection, grant: ConsentGrant, purpose_id: str, now: datetime
) -> ConsentRecord:
    key = (grant.pseudonym, grant.controller, purpose_id)
    row = _locked(connection, *key)
    current = None if row is None else effective_state(row.state, row.expires_at, now)
    state = next_state(current, ConsentChange.GIVE, record=_label(*key))
    values = {
        "schema_version": CONSENT_SCHEMA_VERSION,
        "lawful_basis": grant.lawful_basis,
        "state": state.value,
        "given_at": now,
        "updated_at": now,
        "expires_at": grant.expires_at,
        "source": grant.source,
        "notice_version": grant.notice_version,
        "withdraw_how": grant.withdraw_how,
    }
    if row is None:
        record_id = f"urn:uuid:{uuid.uuid4()}"
        connection.execute(
            _INSERT_RECORD,
            {
                "record_id": record_id,
                "pseudonym": grant.pseudonym,
                "controller": grant.controller,
                "purpose_id": purpose_id,
                **values,
            },
        )
        note = None
    else:
        record_id = row.record_id
        if current is ConsentState.EXPIRED:
            _add_event(
                connection,
                record_id,
                ConsentState.EXPIRED,
                actor="datatrust",
                at=row.expires_at,
                source="expiry",
                note="reached its expiry date",
            )
        connection.execute(_UPDATE_RECORD, {"key_record_id": record_id, **values})
        note = "renewed" if current is ConsentState.GIVEN else None
    _add_event(
        connection, record_id, state, actor=grant.actor, at=now, source=grant.source, note=note
    )
    return ConsentRecord(
        record_id=record_id,
        schema_version=CONSENT_SCHEMA_VERSION,
        pseudonym=grant.pseudonym,
        controller=grant.controller,
        purpose=purpose_id,
        lawful_basis=grant.lawful_basis,
        state=effective_state(state, grant.expires_at, now),
        given_at=now,
        updated_at=now,
        expires_at=grant.expires_at,
        source=grant.source,
        notice_version=grant.notice_version,
        withdraw_how=grant.withdraw_how,
    )


def withdraw_consent(
    engine: sa.Engine,
    *,
    pseudonym: str,
    controller: str,
    purpose: str,
    actor: str,
    by_subject: bool = True,
    now: datetime | None = None,
    source: str = "node-api",
    note: str | None = None,
    register: PurposeRegister | None = None,
) -> ConsentRecord:
    """End a current consent: withdrawn by the person (``by_subject``), else revoked.

    It takes effect on the very next query: the row filter reads the same table. A
    withdrawal is honoured even if the purpose has since left the register; one of a consent
    never given (or no longer current) is ConsentStateConflict.
    """
    now = _aware(now or datetime.now(UTC), "now")
    _require(pseudonym=pseudonym, controller=controller, purpose=purpose, actor=actor)
    _require(source=source)
    change = ConsentChange.WITHDRAW if by_subject else ConsentChange.REVOKE
    label = _label(pseudonym, controller, purpose)

    def withdraw(connection: sa.Connection) -> ConsentRecord:
        row = _locked(connection, pseudonym, controller, purpose)
        if row is None:  # nothing to withdraw; say so, or that the purpose is unknown
            (register or demo_purpose_register()).resolve(purpose)
        current = None if row is None else effective_state(row.state, row.expires_at, now)
        state = next_state(current, change, record=label)
        connection.execute(
            _UPDATE_RECORD,
            {"key_record_id": row.record_id, "state": state.value, "updated_at": now},
        )
        _add_event(connection, row.record_id, state, actor=actor, at=now, source=source, note=note)
        return _record(_locked(connection, pseudonym, controller, purpose), now)

    return _write(engine, withdraw)


def current_consents(
    engine: sa.Engine, pseudonym: str, *, now: datetime | None = None
) -> list[ConsentRecord]:
    """The person's consents that count at ``now`` (given, not expired), by controller, purpose."""
    now = _aware(now or datetime.now(UTC), "now")
    query = (
        sa.select(_CONSENT)
        .where(
            _CONSENT.c.pseudonym == pseudonym,
            _CONSENT.c.state == ConsentState.GIVEN.value,
            sa.or_(_CONSENT.c.expires_at.is_(None), _CONSENT.c.expires_at > now),
        )
        .order_by(_CONSENT.c.controller, _CONSENT.c.purpose_id)
    )
    with _reading(engine) as connection:
        return [_record(row, now) for row in connection.execute(query)]


def consent_history(
    engine: sa.Engine, pseudonym: str, *, now: datetime | None = None
) -> list[ConsentStatusChange]:
    """Every state each of the person's records has been in, oldest first.

    An expiry nobody recorded (a given consent whose ``expires_at`` has passed) appears as
    a ``ConsentExpired`` entry at that time, as it does for every query.
    """
    now = _aware(now or datetime.now(UTC), "now")
    events = (
        sa.select(_EVENT, _CONSENT.c.controller, _CONSENT.c.purpose_id)
        .join(_CONSENT, _CONSENT.c.record_id == _EVENT.c.record_id)
        .where(_CONSENT.c.pseudonym == pseudonym)
        .order_by(_EVENT.c.at, _EVENT.c.id)
    )
    lapsed = sa.select(_CONSENT).where(
        _CONSENT.c.pseudonym == pseudonym,
        _CONSENT.c.state == ConsentState.GIVEN.value,
        _CONSENT.c.expires_at <= now,
    )
    with _reading(engine) as connection:
        history = [
            ConsentStatusChange(
                record_id=row.record_id,
                controller=row.controller,
                purpose=row.purpose_id,
                state=ConsentState(row.state),
                actor=row.actor,
                at=row.at,
                source=row.source,
                note=row.note,
            )
            for row in connection.execute(events)
        ]
        history += [
            ConsentStatusChange(
                record_id=row.record_id,
                controller=row.controller,
                purpose=row.purpose_id,
                state=ConsentState.EXPIRED,
                actor="datatrust",
                at=row.expires_at,
                source="expiry",
                note="reached its expiry date",
            )
            for row in connection.execute(lapsed)
        ]
    return sorted(history, key=lambda change: change.at)


# --- helpers ---------------------------------------------------------------------------


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ConsentError(
            f"{name} {value!r} must be a datetime with a time zone (UTC), so consent "
            "times are never a guess",
            field=name,
        )
    return value.astimezone(UTC)


def _require(**fields: Any) -> None:
    for name, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            raise ConsentError(f"{name} must be a non-empty string, not {value!r}", field=name)


def _label(pseudonym: str, controller: str, purpose: str) -> str:
    return f"{pseudonym!r} to controller {controller!r} for purpose {purpose!r}"


def _locked(connection: sa.Connection, pseudonym: str, controller: str, purpose: str) -> Any:
    """The record's row, locked for this transaction (PostgreSQL; SQLite holds the file)."""
    params = {"key_pseudonym": pseudonym, "key_controller": controller, "key_purpose": purpose}
    return connection.execute(_SELECT_RECORD, params).first()


def _add_event(
    connection: sa.Connection,
    record_id: str,
    state: ConsentState,
    *,
    actor: str,
    at: datetime,
    source: str,
    note: str | None,
) -> None:
    connection.execute(
        _INSERT_EVENT,
        {
            "record_id": record_id,
            "state": state.value,
            "actor": actor,
            "at": at,
            "source": source,
            "note": note,
        },
    )


def _record(row: Any, now: datetime) -> ConsentRecord:
    return ConsentRecord(
        record_id=row.record_id,
        schema_version=row.schema_version,
        pseudonym=row.pseudonym,
        controller=row.controller,
        purpose=row.purpose_id,
        lawful_basis=row.lawful_basis,
        state=effective_state(row.state, row.expires_at, now),
        given_at=row.given_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        source=row.source,
        notice_version=row.notice_version,
        withdraw_how=row.withdraw_how,
    )


@contextmanager
def _reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    try:
        with engine.connect() as connection:
            yield connection
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise store_unavailable(engine, error) from error


def _write(engine: sa.Engine, change: Callable[[sa.Connection], _T]) -> _T:
    """Run ``change`` in one write transaction (BEGIN IMMEDIATE on SQLite).

    Two first consents to the same record at once both find no row; the unique key lets one
    insert win and the other fail, and that one is run again, when it finds the row.
    """

    def attempt() -> _T:
        try:
            with engine.connect() as connection:
                if connection.dialect.name == "sqlite":
                    connection.execution_options(**{BEGIN_IMMEDIATE: True})
                with connection.begin():
                    return change(connection)
        except (exc.OperationalError, exc.InterfaceError) as error:
            raise store_unavailable(engine, error) from error

    try:
        return attempt()
    except exc.IntegrityError:
        return attempt()
