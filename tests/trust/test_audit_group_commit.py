"""The ledger under concurrent appenders: group commit keeps one chain, and fails closed.

Appends that queue while one is being written are committed together (one transaction,
one head anchor write). These tests hold the ledger's lock the way another writer would
(SQLite: a BEGIN IMMEDIATE; PostgreSQL: the ledger's advisory lock) so that a queue forms
without depending on timing, then look at what every caller got and what the store holds.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from datatrust.store import AuditEvent, create_store_engine, migrate
from datatrust.trust import AuditEntry, append_audit_entry, read_audit_head, verify_audit_chain
from datatrust.trust._audit import LEDGER_LOCK_KEY, _ledger

REPO = Path(__file__).resolve().parents[2]
CALLERS = 16


def entry(request_id: str, node_id: str = "health") -> AuditEntry:
    return AuditEntry(
        node_id=node_id,
        requester="analyst@council",
        purpose="service-planning",
        operation="AreaCounts",
        fields=("Area.encounterCount",),
        outcome="permit",
        code="OK",
        reason="permitted",
        policy_version="test",
        subjects=(f"p-{request_id}",),
        request_id=request_id,
    )


@pytest.fixture
def engine(store_url):
    engine = create_store_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


def hashes_by_request(engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(select(AuditEvent.request_id, AuditEvent.entry_hash))
        return dict(rows.all())


def newest_seq(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.max(AuditEvent.seq))).scalar_one()


def wait_until(condition, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.002)


@contextmanager
def ledger_held(engine):
    """Hold off every audit append to ``engine``'s store until the block ends."""
    if engine.dialect.name == "sqlite":
        holder = sqlite3.connect(engine.url.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": LEDGER_LOCK_KEY})
        try:
            yield
        finally:
            holder.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": LEDGER_LOCK_KEY})
            holder.commit()


def append_concurrently(engine, head, entries: list[AuditEntry]) -> dict[str, object]:
    """Each entry appended from its own thread; its hash, or the error its caller got."""
    outcomes: dict[str, object] = {}

    def append(item: AuditEntry) -> None:
        try:
            outcomes[item.request_id] = append_audit_entry(engine, item, head)
        except Exception as error:
            outcomes[item.request_id] = error

    threads = [threading.Thread(target=append, args=(item,)) for item in entries]
    for thread in threads:
        thread.start()
    return outcomes, threads


def test_sixteen_concurrent_appenders_keep_one_chain_and_each_gets_its_own_entry(engine, tmp_path):
    head = tmp_path / "audit" / "health.head.json"
    entries = [entry(f"r{caller}-{n}") for caller in range(CALLERS) for n in range(20)]
    returned: dict[str, str] = {}
    start = threading.Barrier(CALLERS)

    def caller(number: int) -> None:
        start.wait()
        for item in entries[number * 20 : (number + 1) * 20]:
            returned[item.request_id] = append_audit_entry(engine, item, head)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(returned) == len(entries)  # every caller returned, none raised
    assert verify_audit_chain(engine, head) == (len(entries), None)
    assert hashes_by_request(engine) == returned  # each caller's hash is its own entry's
    assert read_audit_head(head)[0] == newest_seq(engine)


def test_appenders_that_queue_behind_a_held_ledger_are_committed_together(engine, tmp_path):
    head = tmp_path / "audit" / "health.head.json"
    append_audit_entry(engine, entry("before"), head)
    group = _ledger(engine, head)
    with ledger_held(engine):
        outcomes, threads = append_concurrently(
            engine, head, [entry(f"queued-{n}") for n in range(CALLERS)]
        )
        # One caller leads and waits on the held lock; the other fifteen queue behind it.
        wait_until(lambda: group.queued() == CALLERS - 1, "fifteen appenders to queue")
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(outcome, str) for outcome in outcomes.values()), outcomes
    assert verify_audit_chain(engine, head) == (CALLERS + 1, None)
    assert hashes_by_request(engine) == {"before": hashes_by_request(engine)["before"], **outcomes}
    assert read_audit_head(head)[0] == newest_seq(engine)


def test_a_batch_whose_commit_fails_fails_every_caller_in_it_and_writes_none(engine, tmp_path):
    head = tmp_path / "audit" / "health.head.json"
    append_audit_entry(engine, entry("before"), head)
    group = _ledger(engine, head)
    queued = [entry(f"queued-{n}") for n in range(CALLERS - 2)]
    queued.append(entry("unstorable", node_id=None))  # NOT NULL: the batch's insert fails
    with ledger_held(engine):
        lead, lead_threads = append_concurrently(engine, head, [entry("lead")])
        # Leading with its own batch taken: the held lock keeps that write from finishing.
        wait_until(lambda: group.writing() and group.queued() == 0, "the lead to start")
        outcomes, threads = append_concurrently(engine, head, queued)
        wait_until(lambda: group.queued() == len(queued), "the rest to queue behind the lead")
    for thread in [*lead_threads, *threads]:
        thread.join(timeout=60)
    assert isinstance(lead["lead"], str)  # its own batch committed
    assert all(isinstance(outcome, sa.exc.IntegrityError) for outcome in outcomes.values())
    assert len(outcomes) == len(queued)  # every caller of the failed batch was told
    assert set(hashes_by_request(engine)) == {"before", "lead"}
    assert verify_audit_chain(engine, head) == (2, None)
    assert read_audit_head(head)[0] == newest_seq(engine)  # the anchor names a stored entry
    append_audit_entry(engine, entry("after"), head)  # the ledger goes on
    assert verify_audit_chain(engine, head) == (3, None)


_APPENDER = """
import sys, threading
from datatrust.store import create_store_engine
from datatrust.trust import AuditEntry, append_audit_entry
from pathlib import Path
url, head, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
threads, each = int(sys.argv[4]), int(sys.argv[5])
engine = create_store_engine(url)
def work(thread):
    for n in range(each):
        append_audit_entry(engine, AuditEntry(
            node_id="health", requester="a", purpose="p", operation="o", fields=(),
            outcome="permit", code="OK", reason="r", policy_version="v",
            request_id=f"{name}-{thread}-{n}"), head)
print("ready", flush=True)
sys.stdin.readline()
workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
[w.start() for w in workers]
[w.join() for w in workers]
"""


def test_appenders_in_several_processes_never_fork_the_chain(engine, store_url, tmp_path):
    head = tmp_path / "audit" / "health.head.json"
    processes, threads, each = 3, 4, 25
    args = (str(threads), str(each))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, store_url, str(head), f"p{n}", *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # all start together
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            assert child.wait(timeout=120) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    total = processes * threads * each
    assert verify_audit_chain(engine, head) == (total, None)
    assert len(hashes_by_request(engine)) == total
