"""Ingest survives another writer committing mid-transaction on SQLite (WAL).

Benchmarking found "database is locked" ending ``datatrust up``: a chunk's transaction read
the sensor inventory, the node's audit ledger committed an entry, and the chunk's first
write could no longer upgrade its stale snapshot to a write lock; SQLite refuses that at
once, whatever the busy timeout. SQLite only: PostgreSQL has no such upgrade.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from datatrust.ingest import Pseudonymiser, ingest_file, load_items, source_format
from datatrust.store import AuditEvent, Reading, create_store_engine, migrate
from datatrust.trust import AuditEntry, append_audit_entry, verify_audit_chain
from tests.ingest._write_race import writer_lands_after

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'node.db'}"


@pytest.fixture
def store(sqlite_url):
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pseudonymiser(tmp_path):
    return Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path / "keys" / "council")


def audit_entry() -> AuditEntry:
    return AuditEntry(
        node_id="council",
        requester="gateway",
        purpose="service-planning",
        operation="AirQuality",
        fields=("Area.airQuality",),
        outcome="permit",
        code="OK",
        reason="permitted",
        policy_version="test",
    )


def count(engine, model) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def uplinks() -> list[object]:
    name = "things_stack_uplinks.ndjson"
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return list(source_format("things-stack-uplinks", node_id="council").read(text, name))


def readings_loaded_alone(path: Path, pseudonymiser: Pseudonymiser) -> int:
    """How many readings the fixture uplinks make on a store no one else writes to."""
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
        inventory = source_format("sensor-inventory", node_id="council")
        ingest_file(engine, FIXTURES / "sensor_inventory.csv", inventory, pseudonymiser)
        load_items(
            engine,
            uplinks(),
            source="things_stack_uplinks.ndjson",
            format_name="things-stack-uplinks",
            pseudonymiser=pseudonymiser,
        )
        return count(engine, Reading)
    finally:
        engine.dispose()


def test_a_chunk_completes_when_an_audit_entry_commits_between_its_read_and_its_write(
    store, sqlite_url, pseudonymiser, tmp_path
):
    expected = readings_loaded_alone(tmp_path / "alone" / "node.db", pseudonymiser)
    inventory = source_format("sensor-inventory", node_id="council")
    ingest_file(store, FIXTURES / "sensor_inventory.csv", inventory, pseudonymiser)
    items = uplinks()
    with writer_lands_after(
        store,
        sqlite_url,
        when=lambda statement: "FROM sensor" in statement,
        other_write=lambda engine: append_audit_entry(engine, audit_entry()),
    ) as race:
        report = load_items(
            store,
            items,
            source="things_stack_uplinks.ndjson",
            format_name="things-stack-uplinks",
            pseudonymiser=pseudonymiser,
        )
    assert race.staged_after, "the chunk never read the sensor inventory: no race was staged"
    assert report.records_quarantined == 0
    assert report.records_loaded == len(items) > 0
    assert count(store, Reading) == expected > 0  # every reading, as with no other writer
    assert count(store, AuditEvent) == 1  # the other writer's entry is not lost either
    assert verify_audit_chain(store) == (1, None)


def test_a_file_completes_when_an_audit_entry_commits_while_its_batch_opens(
    store, sqlite_url, pseudonymiser
):
    """The batch record is read, then written (a new batch, or a resumed one restamped)."""
    inventory = source_format("sensor-inventory", node_id="council")
    with writer_lands_after(
        store,
        sqlite_url,
        when=lambda statement: "FROM ingest_batch" in statement,
        other_write=lambda engine: append_audit_entry(engine, audit_entry()),
    ) as race:
        report = ingest_file(store, FIXTURES / "sensor_inventory.csv", inventory, pseudonymiser)
    assert race.staged_after
    assert report.status == "loaded"
    assert report.records_loaded > 0
    assert count(store, AuditEvent) == 1
