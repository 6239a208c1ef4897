"""Alembic environment of the node store.

``datatrust.store.migrate`` passes an open connection (already inside the transaction that
holds the migration lock) in ``config.attributes["connection"]``. For a developer drafting
a revision by hand, ``sqlalchemy.url`` in the config is used instead, e.g.::

    from datatrust.store._migrate import alembic_config
    from alembic import command
    cfg = alembic_config(); cfg.set_main_option("sqlalchemy.url", "sqlite:///draft.db")
    command.upgrade(cfg, "head"); command.revision(cfg, "what changed", autogenerate=True)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from datatrust.store._engine import create_store_engine
from datatrust.store._models import STORE_METADATA
from datatrust.store._partitions import is_partition


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate compares the models' tables, not the monthly partitions ingest adds."""
    return not (type_ == "table" and is_partition(name))


def _configure_and_run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=STORE_METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    if context.is_offline_mode():
        raise RuntimeError("the store migrations run online only; give a database URL")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = create_store_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            _configure_and_run(connection)
    finally:
        engine.dispose()


_run()
