"""Engines and sessions: one code path for SQLite and PostgreSQL, chosen by URL.

``create_store_engine`` accepts ``sqlite:///<file path>`` and
``postgresql+psycopg://user@host:port/db`` (a bare ``postgresql://`` means psycopg 3) and
refuses any other scheme by name. SQLite connections get WAL with synchronous=FULL (see
``_sqlite_engine``), foreign keys, a 5 s busy timeout and real transactions (pysqlite's own
BEGIN handling is switched off so DDL is transactional and ``BEGIN IMMEDIATE`` is possible,
as SQLAlchemy's pysqlite docs advise).

This module is also the one boundary where connection failures from SQLAlchemy become a
:class:`~datatrust.errors.StoreError` (see :func:`store_unavailable`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlmodel import Session

from datatrust.errors import SettingsError, StoreError

__all__ = [
    "BEGIN_IMMEDIATE",
    "POSTGRES_CONNECT_TIMEOUT_SECONDS",
    "SQLITE_BUSY_TIMEOUT_MS",
    "create_store_engine",
    "masked_url",
    "refresh_statistics",
    "session_scope",
    "store_unavailable",
]

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite connection waits for another writer before giving up."""

POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
"""How long to wait for a PostgreSQL server to accept a connection (unless the URL says)."""

BEGIN_IMMEDIATE = "datatrust_sqlite_begin_immediate"
"""Execution option: on SQLite, start this connection's transactions with BEGIN IMMEDIATE."""

_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgresql+psycopg"}
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@/]*@")


def masked_url(url: str | sa.URL) -> str:
    """The URL with any password replaced by ``***``, fit for messages and logs."""
    if isinstance(url, sa.URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def create_store_engine(url: str) -> sa.Engine:
    """An engine for a node's store at ``url`` (a SQLite file or a PostgreSQL database).

    Raises :class:`~datatrust.errors.SettingsError` for a URL that does not parse, names
    another database, or names an in-memory SQLite database (each connection would see its
    own empty database).
    """
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as error:
        raise SettingsError(
            f"store URL {masked_url(url)!r} is not a database URL; use "
            "sqlite:///path/to/node.db or postgresql+psycopg://user@host:5432/dbname",
            url=masked_url(url),
        ) from error
    if parsed.drivername in _SQLITE_DRIVERS:
        return _sqlite_engine(parsed)
    if parsed.drivername in _POSTGRES_DRIVERS:
        connect_args = (
            {}
            if "connect_timeout" in parsed.query
            else {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
        )
        return sa.create_engine(
            parsed.set(drivername="postgresql+psycopg"),
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    raise SettingsError(
        f"store URL scheme {parsed.drivername!r} (in {masked_url(parsed)!r}) is not supported; "
        "use sqlite:///path/to/node.db or postgresql+psycopg://user@host:5432/dbname",
        url=masked_url(parsed),
        scheme=parsed.drivername,
    )


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise SettingsError(
            f"store URL {masked_url(url)!r} names no SQLite file; give a file path, "
            "e.g. sqlite:///var/datatrust/node.db",
            url=masked_url(url),
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url.set(drivername="sqlite+pysqlite"))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # FULL, not NORMAL, though WAL would allow it: NORMAL survives a process crash
            # but an OS crash or power cut may undo the last commits, and an audit entry
            # must stay once its answer has left (and the ledger's head anchor, written
            # after the commit, must never name an entry the store then lacks). Some builds
            # default to NORMAL under WAL, so it is said here, not assumed.
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def store_unavailable(
    engine: sa.Engine, error: exc.SQLAlchemyError, *, problem: str = "is unavailable"
) -> StoreError:
    """The StoreError for a failure to reach or use the database behind ``engine``."""
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    return StoreError(
        f"the store database at {masked_url(engine.url)!r} {problem}: {cause}; "
        "check that the database server is running and the store URL is right",
        url=masked_url(engine.url),
    )


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises.

    Objects stay readable after the block (``expire_on_commit=False``). A lost or refused
    connection becomes :class:`~datatrust.errors.StoreError`; other database errors, such
    as an ``IntegrityError`` for a duplicate row, pass through for the caller to judge.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except (exc.OperationalError, exc.InterfaceError) as error:
            session.rollback()
            raise store_unavailable(engine, error) from error
        except BaseException:
            session.rollback()
            raise


def refresh_statistics(engine: sa.Engine) -> None:
    """Update the query planner's statistics (ANALYZE) after a bulk load.

    SQLite keeps none until asked, and without them it reads area statistics through the
    wrong index (every reading of a quantity rather than the asked-for sensors' readings).
    PostgreSQL's autovacuum analyses each table and partition as it changes, and an explicit
    ANALYZE of the partitioned readings cost ~15% of a file's load time: skipped there.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
