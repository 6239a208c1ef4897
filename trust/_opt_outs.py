"""The national data opt-out list a node holds: loaded whole, replaced atomically.

Opt-outs live on the NHS Spine and are checked in batches; what comes back is the full
list of the node's people who have opted out, as of a check date. Each load therefore
replaces the cached list in one transaction: a query sees the old list or the new one,
never half of each, and a person missing from the new list is no longer excluded. The
list is a table of its own (``national_opt_out``), never a flag on the person record, and
every load is recorded (``opt_out_list``) so each audit entry can quote the check date of
the list that was applied (:func:`opt_out_list_date`).

A citizen may also register (and remove) a research-and-planning opt-out in the trust's
own portal. That choice is held apart, in ``citizen_opt_out`` with its history in
``citizen_opt_out_event``: a load of the national list replaces ``national_opt_out`` whole
and knows nothing of it, so keeping the two apart is what stops the next load from
dropping the citizen's choice. The row filter excludes anyone on either
(:func:`not_opted_out_by_citizen` beside ``not_opted_out``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement

from datatrust.errors import ConsentError
from datatrust.store import (
    BEGIN_IMMEDIATE,
    CitizenOptOut,
    CitizenOptOutEvent,
    NationalOptOut,
    OptOutListLoad,
    store_unavailable,
)

__all__ = [
    "CitizenOptOutChange",
    "CitizenOptOutStatus",
    "OptOutLoad",
    "citizen_opt_out",
    "load_opt_out_list",
    "not_opted_out_by_citizen",
    "opt_out_list_date",
    "register_citizen_opt_out",
    "remove_citizen_opt_out",
]

_OPT_OUT: sa.Table = NationalOptOut.__table__  # type: ignore[assignment]
_LOADS: sa.Table = OptOutListLoad.__table__  # type: ignore[assignment]
_CITIZEN: sa.Table = CitizenOptOut.__table__  # type: ignore[assignment]
_CITIZEN_EVENTS: sa.Table = CitizenOptOutEvent.__table__  # type: ignore[assignment]
_T = TypeVar("_T")
REGISTERED = "OptOutRegistered"
REMOVED = "OptOutRemoved"
_CHUNK = 500  # rows per statement: well inside every database's bound-parameter limit


@dataclass(frozen=True, slots=True, kw_only=True)
class OptOutLoad:
    """One load of the list: its check date, when it was loaded, and what changed."""

    load_id: int
    checked_on: date
    loaded_at: datetime
    count: int
    source: str
    added: int
    removed: int


def load_opt_out_list(
    engine: sa.Engine,
    pseudonyms: Iterable[str],
    *,
    checked_on: date,
    source: str,
    now: datetime | None = None,
) -> OptOutLoad:
    """Replace the cached opt-out list with ``pseudonyms`` (the full list) in one transaction.

    A pseudonym already listed keeps the time it was first registered. Refused with
    ConsentError, loading nothing: an empty or non-string pseudonym, a check date in the
    future or older than the current list's (an older list would undo newer opt-outs).
    """
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ConsentError(f"now {now!r} must be a datetime with a time zone (UTC)", field="now")
    if isinstance(checked_on, datetime) or not isinstance(checked_on, date):
        raise ConsentError(f"checked_on {checked_on!r} must be a date", field="checked_on")
    if checked_on > now.astimezone(UTC).date():
        raise ConsentError(
            f"checked_on {checked_on.isoformat()} is in the future; give the date the list "
            "was checked against the NHS Spine",
            field="checked_on",
        )
    if not isinstance(source, str) or not source.strip():
        raise ConsentError(f"source must be a non-empty string, not {source!r}", field="source")
    wanted: set[str] = set()
    for number, pseudonym in enumerate(pseudonyms, start=1):
        if not isinstance(pseudonym, str) or not pseudonym.strip():
            raise ConsentError(
                f"opt-out list entry {number} is {pseudonym!r}, not a pseudonym; nothing loaded",
                entry=number,
            )
        wanted.add(pseudonym)

    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.execution_options(**{BEGIN_IMMEDIATE: True})
            with connection.begin():
                return _replace(connection, wanted, checked_on, source, now.astimezone(UTC))
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise store_unavailable(engine, error) from error


def _replace(
    connection: sa.Connection, wanted: set[str], checked_on: date, source: str, now: datetime
) -> OptOutLoad:
    if connection.dialect.name == "postgresql":  # one loader at a time; readers carry on
        connection.execute(sa.text("LOCK TABLE opt_out_list IN EXCLUSIVE MODE"))
    latest = _latest(connection)
    if latest is not None and checked_on < latest:
        raise ConsentError(
            f"checked_on {checked_on.isoformat()} is older than the list already loaded "
            f"(checked on {latest.isoformat()}); loading it would undo newer opt-outs",
            field="checked_on",
        )
    existing = set(connection.execute(sa.select(_OPT_OUT.c.pseudonym)).scalars())
    removed = sorted(existing - wanted)
    added = sorted(wanted - existing)
    for start in range(0, len(removed), _CHUNK):
        chunk = removed[start : start + _CHUNK]
        connection.execute(_OPT_OUT.delete().where(_OPT_OUT.c.pseudonym.in_(chunk)))
    for start in range(0, len(added), _CHUNK):
        chunk = added[start : start + _CHUNK]
        connection.execute(
            _OPT_OUT.insert(), [{"pseudonym": p, "registered_at": now} for p in chunk]
        )
    load_id = connection.execute(
        _LOADS.insert()
        .values(checked_on=checked_on, loaded_at=now, count=len(wanted), source=source)
        .returning(_LOADS.c.id)
    ).scalar_one()
    return OptOutLoad(
        load_id=load_id,
        checked_on=checked_on,
        loaded_at=now,
        count=len(wanted),
        source=source,
        added=len(added),
        removed=len(removed),
    )


def _latest(connection: sa.Connection) -> date | None:
    query = sa.select(_LOADS.c.checked_on).order_by(_LOADS.c.id.desc()).limit(1)
    return connection.execute(query).scalar()


def opt_out_list_date(engine: sa.Engine) -> date | None:
    """The check date of the list the node applies now; None if none was ever loaded."""
    try:
        with engine.connect() as connection:
            return _latest(connection)
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise store_unavailable(engine, error) from error


# --- a citizen's own opt-out, registered in the portal ---------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CitizenOptOutChange:
    """One registration or removal of a citizen's opt-out at a node."""

    action: str  # OptOutRegistered or OptOutRemoved
    actor: str
    at: datetime
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CitizenOptOutStatus:
    """A person's own opt-out at a node: in force or not, since when, and every change.

    ``is_changed`` says whether the call that returned it changed anything: registering an
    opt-out already in force (or removing one that is not) is answered, not refused, and
    adds no history, so a portal that retries after a partial failure cannot double it.
    """

    pseudonym: str
    is_opted_out: bool
    since: datetime | None
    is_changed: bool
    history: tuple[CitizenOptOutChange, ...]  # oldest first


def not_opted_out_by_citizen(pseudonym_column: ColumnElement[str]) -> ColumnElement[bool]:
    """True for rows whose person has no opt-out of their own registered at this node."""
    listed = sa.select(_CITIZEN.c.pseudonym)
    return sa.and_(pseudonym_column.is_not(None), pseudonym_column.not_in(listed))


def register_citizen_opt_out(
    engine: sa.Engine,
    pseudonym: str,
    *,
    actor: str,
    source: str,
    now: datetime | None = None,
) -> CitizenOptOutStatus:
    """Record ``pseudonym``'s own opt-out (committed before returning) and its history line."""
    when = _checked(pseudonym, actor, source, now)

    def change(connection: sa.Connection) -> bool:
        insert = (
            _insert_ignoring_duplicate(connection)
            .values(pseudonym=pseudonym, registered_at=when)
            .returning(_CITIZEN.c.pseudonym)
        )
        added = connection.execute(insert).scalar() is not None  # None: already opted out
        if added:
            _add_citizen_event(connection, pseudonym, REGISTERED, actor, when, source)
        return added

    return _status(engine, pseudonym, _write(engine, change))


def remove_citizen_opt_out(
    engine: sa.Engine,
    pseudonym: str,
    *,
    actor: str,
    source: str,
    now: datetime | None = None,
) -> CitizenOptOutStatus:
    """End ``pseudonym``'s own opt-out here; the national list, if it names them, is untouched."""
    when = _checked(pseudonym, actor, source, now)

    def change(connection: sa.Connection) -> bool:
        gone = connection.execute(
            _CITIZEN.delete().where(_CITIZEN.c.pseudonym == pseudonym)
        ).rowcount
        if gone:
            _add_citizen_event(connection, pseudonym, REMOVED, actor, when, source)
        return bool(gone)

    return _status(engine, pseudonym, _write(engine, change))


def citizen_opt_out(engine: sa.Engine, pseudonym: str) -> CitizenOptOutStatus:
    """``pseudonym``'s own opt-out at this node, with its history; nothing is changed."""
    if not isinstance(pseudonym, str) or not pseudonym.strip():
        raise ConsentError(f"pseudonym must be a non-empty string, not {pseudonym!r}")
    return _status(engine, pseudonym, False)


def _checked(pseudonym: str, actor: str, source: str, now: datetime | None) -> datetime:
    for name, value in (("pseudonym", pseudonym), ("actor", actor), ("source", source)):
        if not isinstance(value, str) or not value.strip():
            raise ConsentError(f"{name} must be a non-empty string, not {value!r}", field=name)
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ConsentError(f"now {now!r} must be a datetime with a time zone (UTC)", field="now")
    return now.astimezone(UTC)


def _insert_ignoring_duplicate(connection: sa.Connection):
    """An insert that does nothing if the person already opted out (no race, no error)."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(_CITIZEN).on_conflict_do_nothing(index_elements=["pseudonym"])
    return sqlite.insert(_CITIZEN).on_conflict_do_nothing(index_elements=["pseudonym"])


def _add_citizen_event(
    connection: sa.Connection, pseudonym: str, action: str, actor: str, at: datetime, source: str
) -> None:
    connection.execute(
        _CITIZEN_EVENTS.insert().values(
            pseudonym=pseudonym, action=action, actor=actor, at=at, source=source
        )
    )


def _write(engine: sa.Engine, change: Callable[[sa.Connection], _T]) -> _T:
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.execution_options(**{BEGIN_IMMEDIATE: True})
            with connection.begin():
                return change(connection)
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise store_unavailable(engine, error) from error


def _status(engine: sa.Engine, pseudonym: str, is_changed: bool) -> CitizenOptOutStatus:
    try:
        with engine.connect() as connection:
            since = connection.execute(
                sa.select(_CITIZEN.c.registered_at).where(_CITIZEN.c.pseudonym == pseudonym)
            ).scalar()
            rows = connection.execute(
                sa.select(_CITIZEN_EVENTS)
                .where(_CITIZEN_EVENTS.c.pseudonym == pseudonym)
                .order_by(_CITIZEN_EVENTS.c.at, _CITIZEN_EVENTS.c.id)
            ).all()
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise store_unavailable(engine, error) from error
    return CitizenOptOutStatus(
        pseudonym=pseudonym,
        is_opted_out=since is not None,
        since=since,
        is_changed=is_changed,
        history=tuple(
            CitizenOptOutChange(action=r.action, actor=r.actor, at=r.at, source=r.source)
            for r in rows
        ),
    )
