"""Migration 0010 adds the citizens' own opt-outs beside the national list, and back again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from datatrust.store import alembic_config, create_store_engine, migrate
from datatrust.trust import citizen_opt_out, register_citizen_opt_out, remove_citizen_opt_out

AT = datetime(2026, 11, 26, 12, tzinfo=UTC)


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


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_0010_adds_the_citizen_tables_leaving_the_national_list_alone_and_back(engine) -> None:
    _to_revision(engine, "0009")
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO national_opt_out (pseudonym, registered_at) VALUES ('p-1', :at)"),
            {"at": AT},
        )
    assert not {"citizen_opt_out", "citizen_opt_out_event"} & _tables(engine)
    migrate(engine)
    assert {"citizen_opt_out", "citizen_opt_out_event"} <= _tables(engine)
    with engine.connect() as connection:
        listed = connection.execute(sa.text("SELECT pseudonym FROM national_opt_out")).all()
    assert [tuple(row) for row in listed] == [("p-1",)]

    _to_revision(engine, "0009", down=True)
    assert not {"citizen_opt_out", "citizen_opt_out_event"} & _tables(engine)
    migrate(engine)


def test_the_history_refuses_an_action_that_is_not_a_registration_or_removal(engine) -> None:
    migrate(engine)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO citizen_opt_out_event (pseudonym, action, actor, at, source) "
                "VALUES ('p-1', 'OptedOutMaybe', 'x', :at, 'x')"
            ),
            {"at": AT},
        )


def test_register_and_remove_keep_one_row_and_every_change_on_this_store(engine) -> None:
    migrate(engine)
    first = register_citizen_opt_out(engine, "p-2", actor="public/u", source="test", now=AT)
    again = register_citizen_opt_out(engine, "p-2", actor="public/u", source="test")
    assert (first.is_opted_out, first.is_changed, first.since) == (True, True, AT)
    assert (again.is_opted_out, again.is_changed, again.since) == (True, False, AT)
    gone = remove_citizen_opt_out(engine, "p-2", actor="public/u", source="test")
    assert (gone.is_opted_out, gone.is_changed, gone.since) == (False, True, None)
    assert [c.action for c in citizen_opt_out(engine, "p-2").history] == [
        "OptOutRegistered",
        "OptOutRemoved",
    ]
    assert citizen_opt_out(engine, "p-3").history == ()
