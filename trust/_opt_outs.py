"""The national data opt-out list a node holds: loaded whole, replaced atomically.

Opt-outs live on the NHS Spine and are checked in batches; what comes back is the full
list of the node's people who have opted out, as of a check date. Each load therefore
replaces the cached list in one transaction: a query sees the old list or the new one,
never half of each, and a person missing from the new list is no longer excluded. The
list is a table of its own (``national_opt_out``), never a flag on the person record, and
every load is recorded (``opt_out_list``) so each audit entry can quote the check date of
the list that was applied (:func:`opt_out_list_date`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy import exc

from datatrust.errors import ConsentError
from datatrust.store import BEGIN_IMMEDIATE, NationalOptOut, OptOutListLoad, store_unavailable

__all__ = ["OptOutLoad", "load_opt_out_list", "opt_out_list_date"]

_OPT_OUT: sa.Table = NationalOptOut.__table__  # type: ignore[assignment]
_LOADS: sa.Table = OptOutListLoad.__table__  # type: ignore[assignment]
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
