"""Bringing a node's database to the current schema, and telling whether it is there.

The Alembic scripts live in ``datatrust/store/migrations`` and are found from this file,
so no ``alembic.ini`` is needed at run time. Nodes call :func:`migrate` when they start;
two processes starting at once are safe: on PostgreSQL the upgrade runs under a
transaction-scoped advisory lock, on SQLite inside ``BEGIN IMMEDIATE`` (the other process
waits up to the busy timeout), and in both the current revision is read after the lock is
held, so the second process finds the work done. Within one process, runs are also
serialised by a lock, because Alembic's ``context`` and ``op`` are process-wide proxies
that two threads must not drive at once (even against different databases).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import exc

from datatrust.errors import StoreError
from datatrust.store._engine import BEGIN_IMMEDIATE, masked_url, store_unavailable

__all__ = ["MIGRATION_LOCK_KEY", "alembic_config", "check_ready", "migrate", "schema_is_current"]

MIGRATIONS_DIRECTORY = Path(__file__).with_name("migrations")

MIGRATION_LOCK_KEY = 0x64617461_74727374  # "datatrst": the PostgreSQL advisory lock id
"""The ``pg_advisory_xact_lock`` key held while the store is migrated."""


_ALEMBIC_LOCK = threading.Lock()


def alembic_config() -> Config:
    """An Alembic configuration for the store's migrations (no ini file involved)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
    return config


@functools.cache
def _heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def migrate(engine: sa.Engine) -> None:
    """Upgrade the database behind ``engine`` to the newest revision; a no-op if it is there.

    Raises :class:`~datatrust.errors.StoreError` if the database cannot be reached or
    Alembic refuses (for example, the database is at a revision this code does not know).
    """
    config = alembic_config()
    try:
        with _ALEMBIC_LOCK, engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.execution_options(**{BEGIN_IMMEDIATE: True})
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": MIGRATION_LOCK_KEY},
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise store_unavailable(engine, error, problem="cannot be migrated") from error
    except CommandError as error:
        raise StoreError(
            f"the store database at {masked_url(engine.url)!r} cannot be migrated: {error}; "
            "is it from a newer release of datatrust?",
            url=masked_url(engine.url),
        ) from error


def _current_revisions(engine: sa.Engine) -> frozenset[str]:
    try:
        with engine.connect() as connection:
            return frozenset(MigrationContext.configure(connection).get_current_heads())
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise store_unavailable(engine, error, problem="is unreachable") from error


def schema_is_current(engine: sa.Engine) -> bool:
    """Whether the database is at the newest revision (raises StoreError if unreachable)."""
    return _current_revisions(engine) == _heads()


def check_ready(engine: sa.Engine) -> None:
    """Raise :class:`~datatrust.errors.StoreError` unless the database is reachable and at head."""
    current = _current_revisions(engine)
    heads = _heads()
    if current == heads:
        return
    where = masked_url(engine.url)
    head = ", ".join(sorted(heads))
    if not current:
        message = (
            f"the store database at {where!r} is not migrated (no schema revision; "
            f"expected {head}); run datatrust.store.migrate on it (a node does so when it starts)"
        )
    else:
        found = ", ".join(sorted(current))
        known = ScriptDirectory.from_config(alembic_config())
        is_known = all(_is_known_revision(known, revision) for revision in current)
        hint = (
            "run datatrust.store.migrate on it (a node does so when it starts)"
            if is_known
            else "it was migrated by a newer release of datatrust; run that release"
        )
        message = (
            f"the store database at {where!r} is at schema revision {found}, "
            f"not the current {head}; {hint}"
        )
    raise StoreError(message, url=where, revision=sorted(current), head=sorted(heads))


def _is_known_revision(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False
