"""``datatrust audit verify`` over a data directory's ledgers, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import update

from datatrust.store import AuditEvent, create_store_engine, migrate
from datatrust.trust import AuditEntry, append_audit_entry, audit_head_path


def ledger(data_dir, part: str, entries: int):
    engine = create_store_engine(f"sqlite:///{data_dir / f'{part}.db'}")
    migrate(engine)
    for number in range(entries):
        append_audit_entry(
            engine,
            entry=AuditEntry(
                node_id=part,
                requester="council/analyst-cli",
                purpose="service-planning",
                operation=f"q{number}",
                fields=("Area.footfall",),
                outcome="permit",
                code="OK",
                reason="permitted",
                policy_version="v1",
            ),
            head=audit_head_path(data_dir, part),
        )
    return engine


def verify(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datatrust", "audit", "verify", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_intact_ledgers_verify_and_exit_zero(tmp_path):
    for part in ("council", "health", "gateway"):
        ledger(tmp_path, part, 3).dispose()
    result = verify(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "council: intact (3 entries verified)",
        "health: intact (3 entries verified)",
        "gateway: intact (3 entries verified)",
    ]


def test_an_edited_entry_is_named_and_the_exit_is_non_zero(tmp_path):
    engine = ledger(tmp_path, "health", 5)
    with engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(outcome="deny"))
    engine.dispose()
    result = verify(tmp_path, "--node", "health")
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "health: BROKEN at entry 3 (2 entries before it verify); the ledger was altered "
        "there: an entry was changed, removed or reordered"
    )


def test_reordered_entries_are_found(tmp_path):
    engine = ledger(tmp_path, "council", 4)
    with engine.begin() as connection:
        rows = dict(
            connection.execute(
                AuditEvent.__table__.select().with_only_columns(
                    AuditEvent.seq, AuditEvent.operation
                )
            ).all()
        )
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(operation=rows[3]))
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(operation=rows[2]))
    engine.dispose()
    result = verify(tmp_path, "--node", "council")
    assert result.returncode == 1
    assert "BROKEN at entry 2" in result.stdout


def test_an_unknown_part_is_refused_by_name(tmp_path):
    result = verify(tmp_path, "--node", "housing")
    assert result.returncode == 2
    assert "unknown part 'housing'" in result.stderr


def test_a_ledger_behind_the_current_schema_is_named_not_a_traceback(tmp_path):
    from alembic import command

    from datatrust.store import alembic_config

    ledger(tmp_path, "council", 2).dispose()
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'council.db'}")
    command.downgrade(config, "0010")
    result = verify(tmp_path, "--node", "council")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "schema revision 0010, not the current 0011" in result.stdout + result.stderr
    assert "a node does so when it starts" in result.stdout + result.stderr


def test_deleting_the_newest_entries_is_found_through_the_head_anchor(tmp_path):
    engine = ledger(tmp_path, "health", 5)
    with engine.begin() as connection:  # what remains is a shorter chain that verifies alone
        connection.execute(AuditEvent.__table__.delete().where(AuditEvent.seq >= 4))
    engine.dispose()
    result = verify(tmp_path, "--node", "health")
    assert result.returncode == 1
    assert "BROKEN at entry 5" in result.stdout
