"""Migration 0008 carries the placeholder consent rows over, fail closed, and back again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from datatrust.store import alembic_config, create_store_engine, migrate


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(store_url)
    yield engine
    engine.dispose()


def _to_revision(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _rows(engine: sa.Engine, query: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(query))]


def test_placeholder_consents_are_carried_over_with_one_event_each(engine) -> None:
    _to_revision(engine, "0007")
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO consent (record_id, pseudonym, purpose_id, state, recorded_at) "
                "VALUES (:id, 'p-1', 'research', :state, :at)"
            ),
            [
                {"id": "r1", "state": "ConsentGiven", "at": at},
                {"id": "r2", "state": "given", "at": at},
            ],
        )
    migrate(engine)
    assert _rows(
        engine,
        "SELECT record_id, state, controller, lawful_basis, source, schema_version "
        "FROM consent ORDER BY record_id",
    ) == [
        ("r1", "ConsentGiven", "unknown:r1", "unknown", "before-0008", "0"),
        # A state that is not a DPV consent state can never count as consent.
        ("r2", "ConsentInvalidated", "unknown:r2", "unknown", "before-0008", "0"),
    ]
    assert _rows(
        engine, "SELECT record_id, state, actor FROM consent_event ORDER BY record_id"
    ) == [
        ("r1", "ConsentGiven", "migration 0008"),
        ("r2", "ConsentInvalidated", "migration 0008"),
    ]
    # The DPV states are checked by the database too.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.text("UPDATE consent SET state = 'yes' WHERE record_id = 'r1'"))

    _to_revision(engine, "0007", down=True)
    assert _rows(engine, "SELECT record_id, state FROM consent ORDER BY record_id") == [
        ("r1", "ConsentGiven"),
        ("r2", "ConsentInvalidated"),
    ]
    tables = set(sa.inspect(engine).get_table_names())
    assert not tables & {"consent_event", "national_opt_out", "opt_out_list"}
    migrate(engine)
