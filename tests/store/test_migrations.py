"""Migrations bring any empty store to head, idempotently, to exactly the models' schema."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from datatrust.errors import SettingsError, StoreError
from datatrust.store import (
    STORE_METADATA,
    alembic_config,
    check_ready,
    create_store_engine,
    is_partition,
    migrate,
    schema_is_current,
)
from datatrust.store._migrate import MIGRATIONS_DIRECTORY

# The newest revision: the files in versions/ are numbered in order.
LATEST = max(
    path.name[:4] for path in (MIGRATIONS_DIRECTORY / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
)


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(store_url)
    yield engine
    engine.dispose()


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _tables(engine: sa.Engine) -> list[str]:
    """The tables, without the monthly partitions (PostgreSQL lists those as tables too)."""
    return sorted(name for name in sa.inspect(engine).get_table_names() if not is_partition(name))


def test_migrating_a_fresh_database_reaches_head(engine: sa.Engine) -> None:
    assert not schema_is_current(engine)
    migrate(engine)
    assert _revision(engine) == LATEST
    assert schema_is_current(engine)
    check_ready(engine)


def test_migrating_twice_changes_nothing(engine: sa.Engine) -> None:
    migrate(engine)
    before = _tables(engine)
    migrate(engine)
    after = _tables(engine)
    assert after == before == sorted([*STORE_METADATA.tables, "alembic_version"])
    assert _revision(engine) == LATEST


def test_the_migrated_schema_equals_the_models(engine: sa.Engine) -> None:
    migrate(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "target_metadata": STORE_METADATA,
                "include_name": lambda name, kind, _: not (kind == "table" and is_partition(name)),
            },
        )
        diff = compare_metadata(context, STORE_METADATA)
    assert diff == []


def test_migrations_create_the_named_indexes_and_unique_constraints(engine: sa.Engine) -> None:
    migrate(engine)
    inspector = sa.inspect(engine)
    indexes = inspector.get_indexes("reading")
    # PostgreSQL also lists the index behind each unique constraint; it is not ours to name.
    assert {i["name"] for i in indexes if "duplicates_constraint" not in i} == {
        "ix_reading_device_id_quantity_received_at_value",
        "ix_reading_quantity_received_at",
    }
    assert [
        (u["name"], u["column_names"]) for u in inspector.get_unique_constraints("reading")
    ] == [("uq_reading_device_id_received_at_quantity", ["device_id", "received_at", "quantity"])]


def test_wifi_sessions_are_unique_per_session_and_start_month(engine: sa.Engine) -> None:
    migrate(engine)
    inspector = sa.inspect(engine)
    assert [
        (u["name"], u["column_names"]) for u in inspector.get_unique_constraints("wifi_session")
    ] == [
        (
            "uq_wifi_session_unique_session_id_session_month",
            ["unique_session_id", "session_month"],
        )
    ]
    indexes = inspector.get_indexes("wifi_session")
    assert [i["name"] for i in indexes if "duplicates_constraint" not in i] == [
        "ix_wifi_session_ap_mac"
    ]


@pytest.mark.postgres
def test_on_postgres_readings_and_sessions_are_partitioned_by_month(postgres_url: str) -> None:
    engine = create_store_engine(postgres_url)
    migrate(engine)
    with engine.connect() as connection:
        keys = connection.execute(
            sa.text(
                "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_partitioned_table p "
                "JOIN pg_class c ON c.oid = p.partrelid ORDER BY 1"
            )
        ).all()
        defaults = connection.execute(
            sa.text(
                "SELECT inhparent::regclass::text, inhrelid::regclass::text FROM pg_inherits "
                "WHERE inhparent IN (SELECT partrelid FROM pg_partitioned_table) ORDER BY 1"
            )
        ).all()
        primary_key = connection.execute(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'pk_wifi_session'"
            )
        ).scalar()
    engine.dispose()
    assert [tuple(k) for k in keys] == [
        ("reading", "RANGE (received_at)"),
        ("wifi_session", "RANGE (session_month)"),
    ]
    assert [tuple(d) for d in defaults] == [
        ("reading", "reading_default"),
        ("wifi_session", "wifi_session_default"),
    ]
    assert primary_key == "PRIMARY KEY (id, session_month)"


def test_check_ready_names_an_unmigrated_database(engine: sa.Engine) -> None:
    with pytest.raises(
        StoreError, match=rf"is not migrated \(no schema revision; expected {LATEST}\)"
    ):
        check_ready(engine)


def test_check_ready_names_a_revision_this_code_does_not_know(engine: sa.Engine) -> None:
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    assert not schema_is_current(engine)
    with pytest.raises(
        StoreError, match=rf"is at schema revision 9999, not the current {LATEST}; .* newer release"
    ):
        check_ready(engine)
    with pytest.raises(StoreError, match=r"cannot be migrated: .*9999"):
        migrate(engine)


@pytest.mark.postgres
def test_check_ready_names_an_unreachable_postgres_without_its_password() -> None:
    engine = create_store_engine("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/datatrust")
    with pytest.raises(
        StoreError,
        match=re.escape(
            "at 'postgresql+psycopg://postgres:***@127.0.0.1:1/datatrust' is unreachable: "
        ),
    ) as caught:
        check_ready(engine)
    assert "s3cret" not in str(caught.value)
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)
    with pytest.raises(StoreError, match="cannot be migrated"):
        migrate(engine)


def test_create_store_engine_refuses_another_database_by_its_scheme() -> None:
    with pytest.raises(
        SettingsError,
        match=r"^store URL scheme 'mysql' \(in 'mysql://app:\*\*\*@db/node'\) is not supported; ",
    ) as caught:
        create_store_engine("mysql://app:hunter2@db/node")
    assert "hunter2" not in str(caught.value)


def test_create_store_engine_refuses_an_in_memory_sqlite_database() -> None:
    with pytest.raises(SettingsError, match=r"names no SQLite file; give a file path"):
        create_store_engine("sqlite://")


def test_create_store_engine_refuses_text_that_is_not_a_url() -> None:
    with pytest.raises(SettingsError, match=r"^store URL 'node\.db' is not a database URL; "):
        create_store_engine("node.db")


def test_sqlite_store_uses_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'node.db'}")
    with engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
    engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000}


def test_alembic_finds_one_revision_and_ignores_the_package_files() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = [script.revision for script in scripts.walk_revisions()]
    assert revisions[0] == LATEST
    assert revisions[-6:] == [
        "0006",
        "0005",
        "0004",
        "0003",
        "0002",
        "0001",
    ]
    assert (MIGRATIONS_DIRECTORY / "versions" / "__init__.py").is_file()


def test_four_processes_migrating_at_once_all_succeed(store_url: str) -> None:
    code = (
        "import sys; from datatrust.store import create_store_engine, migrate; "
        "migrate(create_store_engine(sys.argv[1]))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outcomes = []
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        outcomes.append((process.returncode, stderr.decode()))
    assert outcomes == [(0, "")] * 4
    engine = create_store_engine(store_url)
    assert schema_is_current(engine)
    engine.dispose()


def test_threads_migrating_different_databases_at_once_all_succeed(tmp_path: Path) -> None:
    engines = [create_store_engine(f"sqlite:///{tmp_path / f'node{n}.db'}") for n in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def run(engine: sa.Engine) -> None:
        start.wait()
        try:
            migrate(engine)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert all(schema_is_current(engine) for engine in engines)
    for engine in engines:
        engine.dispose()


def _to_revision(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_sessions_stored_before_0005_get_the_month_they_started_in(engine: sa.Engine) -> None:
    _to_revision(engine, "0004")
    session = (
        "INSERT INTO wifi_session (unique_session_id, session_id, device_token, ap_mac, "
        "nas_identifier, started_at, last_event_at, session_time_seconds, is_open) "
        "VALUES (:uid, 's', 'tok', '11-22-33-44-55-66', 'ap-1', :started, :last, :seconds, :open)"
    )
    with engine.begin() as connection:
        connection.execute(
            sa.text(session),
            [
                # Started 31 March, last heard 1 April: March.
                {
                    "uid": "started",
                    "started": datetime(2026, 3, 31, 23, 50, tzinfo=UTC),
                    "last": datetime(2026, 4, 1, 0, 10, tzinfo=UTC),
                    "seconds": 1200,
                    "open": False,
                },
                # No Start seen: last event less session time is 31 January 23:59:59.
                {
                    "uid": "interim-only",
                    "started": None,
                    "last": datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC),
                    "seconds": 2,
                    "open": True,
                },
                # Neither a Start nor a session time: the month of its one event.
                {
                    "uid": "bare",
                    "started": None,
                    "last": datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
                    "seconds": None,
                    "open": True,
                },
            ],
        )
    migrate(engine)
    query = "SELECT unique_session_id, session_month FROM wifi_session ORDER BY 1"
    with engine.connect() as connection:
        months = [(uid, str(month)) for uid, month in connection.execute(sa.text(query))]
    assert months == [
        ("bare", "2026-12-01"),
        ("interim-only", "2026-01-01"),
        ("started", "2026-03-01"),
    ]
    _to_revision(engine, "0004", down=True)
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM wifi_session")).scalar()
    assert count == 3
    migrate(engine)
    assert schema_is_current(engine)


def test_a_frame_counter_beyond_32_bit_signed_is_stored(engine: sa.Engine) -> None:
    """LoRaWAN FCntUp is an unsigned 32-bit counter: 2^32 - 1 must fit."""
    migrate(engine)
    from datetime import UTC, datetime

    from datatrust.store import Reading

    with engine.begin() as connection:
        connection.execute(
            sa.insert(Reading.__table__).values(
                device_id="eui-1",
                received_at=datetime(2026, 10, 1, tzinfo=UTC),
                frame_counter=2**32 - 1,
                quantity="pm2_5",
                value=1.0,
                unit="ug/m3",
            )
        )
        stored = connection.execute(sa.select(Reading.__table__.c.frame_counter)).scalar_one()
    assert stored == 2**32 - 1
