"""Migration 0009: the per-area period counts read covering indexes, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command

from datatrust.federation.subgraphs._data import (
    encounter_count_by_area,
    open_care_episodes_by_area,
)
from datatrust.policies import Permit
from datatrust.store import alembic_config, create_store_engine, migrate

ENCOUNTER_INDEX = "ix_encounter_lsoa_code_started_at_pseudonym"
CARE_INDEX = "ix_care_episode_lsoa_code_started_on_ended_on_la_person_token"
PERMIT = Permit(purpose="service-planning", fields=frozenset(), policy_version="test")


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(store_url)
    yield engine
    engine.dispose()


def _indexes(engine: sa.Engine, table: str) -> dict[str, list[str]]:
    return {
        index["name"]: list(index["column_names"])
        for index in sa.inspect(engine).get_indexes(table)
        if "duplicates_constraint" not in index  # PostgreSQL's index behind a unique key
    }


def _to_revision(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_the_area_indexes_extend_to_the_period_and_what_is_counted(engine: sa.Engine) -> None:
    migrate(engine)
    assert _indexes(engine, "encounter") == {
        "ix_encounter_pseudonym": ["pseudonym"],
        ENCOUNTER_INDEX: ["lsoa_code", "started_at", "pseudonym"],
    }
    assert _indexes(engine, "care_episode") == {
        "ix_care_episode_pseudonym": ["pseudonym"],
        CARE_INDEX: ["lsoa_code", "started_on", "ended_on", "la_person_token"],
    }


def test_downgrading_0009_restores_the_area_only_indexes(engine: sa.Engine) -> None:
    migrate(engine)
    _to_revision(engine, "0008", down=True)
    assert _indexes(engine, "encounter") == {
        "ix_encounter_pseudonym": ["pseudonym"],
        "ix_encounter_lsoa_code": ["lsoa_code"],
    }
    assert _indexes(engine, "care_episode") == {
        "ix_care_episode_pseudonym": ["pseudonym"],
        "ix_care_episode_lsoa_code": ["lsoa_code"],
    }
    migrate(engine)
    assert ENCOUNTER_INDEX in _indexes(engine, "encounter")


def _plan_of(engine: sa.Engine, run: Callable[[], object]) -> str:
    """The database's plan for the statement ``run`` executes (the one the node sends)."""
    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(seen) == 1, seen
    statement, parameters = seen[0]
    with engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        # An empty table is cheapest to scan; forbid that, so the plan shows the index
        # PostgreSQL would seek in a store of any size.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(row[0]) for row in cursor.fetchall())


def test_the_encounter_count_seeks_each_area_and_period_in_its_index(engine: sa.Engine) -> None:
    migrate(engine)
    plan = _plan_of(
        engine,
        lambda: encounter_count_by_area(
            engine, PERMIT, ["E01009522", "E01009523"], date(2026, 7, 1), date(2026, 9, 30)
        ),
    )
    assert ENCOUNTER_INDEX in plan
    if engine.dialect.name == "sqlite":
        assert f"COVERING INDEX {ENCOUNTER_INDEX} (lsoa_code=? AND started_at>?" in plan


def test_open_care_episodes_seek_each_area_in_their_index(engine: sa.Engine) -> None:
    migrate(engine)
    plan = _plan_of(
        engine,
        lambda: open_care_episodes_by_area(
            engine, PERMIT, ["E01009522", "E01009523"], date(2026, 9, 30)
        ),
    )
    assert CARE_INDEX in plan
    if engine.dialect.name == "sqlite":
        assert f"COVERING INDEX {CARE_INDEX} (lsoa_code=?" in plan
