"""An audit append survives another writer committing mid-transaction on SQLite (WAL).

The append reads the newest entry's hash, then writes the new entry. Begun deferred, an
ingest commit landing between the two left it with a stale snapshot that SQLite refuses
to upgrade to a writer, at once, whatever the busy timeout: the decision would then be
refused for want of an audit entry. SQLite only: PostgreSQL has no such upgrade.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from datatrust.ingest import Pseudonymiser, ingest_file, source_format
from datatrust.store import AuditEvent, Sensor, create_store_engine, migrate
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


def entry() -> AuditEntry:
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


def test_an_entry_is_appended_when_an_ingest_commits_between_its_read_and_its_write(
    store, sqlite_url, tmp_path
):
    append_audit_entry(store, entry())  # a chain to extend, so the read finds a hash
    pseudonymiser = Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path / "keys")
    inventory = source_format("sensor-inventory", node_id="council")
    with writer_lands_after(
        store,
        sqlite_url,
        when=lambda statement: "FROM audit_event" in statement,
        other_write=lambda engine: ingest_file(
            engine, FIXTURES / "sensor_inventory.csv", inventory, pseudonymiser
        ),
    ) as race:
        append_audit_entry(store, entry())
    assert race.staged_after, "the append never read the ledger: no race was staged"
    assert verify_audit_chain(store) == (2, None)
    assert count(store, AuditEvent) == 2
    assert count(store, Sensor) > 0  # the ingest that raced it is not lost either
