"""What an audit append costs: 2,000 entries from 1 and from 16 threads, SQLite and PostgreSQL.

    python bench/audit.py [--entries 2000] [--threads 1 16] [--skip-postgres]
                          [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Every request at every part of a trust (the gateway and each node) writes one entry
before it answers, so the append bounds throughput (``bench/load.py``). Each case appends
``--entries`` entries, with their head anchor, to a fresh migrated store (a SQLite file
in a temporary directory, or a throwaway PostgreSQL database created and dropped here),
split over the given number of threads, and then checks the whole chain with
``verify_audit_chain`` against the anchor: one unbroken chain, one entry per append.

Baseline, in the same run: the append as it was before group commit, kept here verbatim
in spirit (``_append_one_by_one``): an ORM session per entry, the newest hash read, the
entry added and committed, the newest seq read again and the head file rewritten, all
under one process-wide lock. Printed per case: wall time, CPU time of this process
(what the gateway's profile saw), entries per second, and the ratios baseline / now.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session

from datatrust.store import BEGIN_IMMEDIATE, AuditEvent, create_store_engine, migrate
from datatrust.trust import AuditEntry, append_audit_entry, verify_audit_chain
from datatrust.trust._audit import ENTRY_VERSION, GENESIS_HASH, _columns, _entry_hash, _write_head

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

Append = Callable[[Engine, AuditEntry, Path], object]

_baseline_lock = threading.Lock()


def _append_one_by_one(engine: Engine, entry: AuditEntry, head: Path) -> str:
    """The append before group commit: one ORM transaction and one head rewrite per entry."""
    recorded_at = datetime.now(UTC)
    writer = engine.execution_options(**{BEGIN_IMMEDIATE: True})
    with _baseline_lock, Session(writer) as session:
        last = session.exec(
            select(AuditEvent.entry_hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        prev_hash = last[0] if last else GENESIS_HASH
        entry_hash = _entry_hash(prev_hash, recorded_at, entry, ENTRY_VERSION)
        session.add(
            AuditEvent(
                recorded_at=recorded_at,
                entry_version=ENTRY_VERSION,
                prev_hash=prev_hash,
                entry_hash=entry_hash,
                **_columns(entry),
            )
        )
        session.commit()
        newest = session.exec(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
        _write_head(head, newest.first()[0], entry_hash)
    return entry_hash


def _entry(number: int) -> AuditEntry:
    """A permit entry shaped like a node's: fields, reasons, a few subjects, a trace id."""
    return AuditEntry(
        node_id="health",
        requester="analyst@council",
        purpose="service-planning",
        operation="EncounterCounts",
        fields=("Area.encounterCount", "Area.code", "Query._entities"),
        outcome="permit",
        code="OK",
        reason="permitted by agreement planning-2026",
        policy_version="bench",
        agency="council",
        roles=("analyst",),
        client_id="portal",
        subject="analyst-7",
        aggregate=True,
        agreement="planning-2026",
        reasons=("purpose matches", "aggregate only"),
        row_count=203,
        subject_count=3,
        subjects=(f"p-{number}-a", f"p-{number}-b", f"p-{number}-c"),
        request_id=f"bench-{number}",
        trace_id=secrets.token_hex(16),
    )


@contextmanager
def _store(backend: str, admin: str) -> Iterator[str]:
    """A URL for an empty store: a SQLite file, or a throwaway PostgreSQL database."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-audit-") as directory:
            yield f"sqlite:///{Path(directory) / 'node.db'}"
        return
    import psycopg

    name = f"bench_audit_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(append: Append, url: str, entries: int, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to append ``entries`` from ``threads`` threads; verified."""
    engine = create_store_engine(url)
    migrate(engine)
    with tempfile.TemporaryDirectory(prefix="bench-audit-head-") as directory:
        head = Path(directory) / "audit" / "health.head.json"
        append(engine, _entry(-1), head)  # connections made, statements compiled
        failures: list[BaseException] = []
        start = threading.Barrier(threads + 1)

        def work(offset: int) -> None:
            start.wait()
            try:
                for number in range(offset, entries, threads):
                    append(engine, _entry(number), head)
            except BaseException as error:  # reported below: a failed append fails the run
                failures.append(error)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        wall, cpu = time.perf_counter(), time.process_time()
        for worker in workers:
            worker.join()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if failures:
            raise RuntimeError(f"{len(failures)} appends failed, the first: {failures[0]!r}")
        checked, broken = verify_audit_chain(engine, head)
        if broken is not None or checked != entries + 1:
            raise RuntimeError(f"the chain does not verify: {checked} checked, broken {broken}")
    engine.dispose()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--postgres", default=POSTGRES_ADMIN)
    options = parser.parse_args()
    backends = ["sqlite"] + ([] if options.skip_postgres else ["postgres"])
    print(f"{options.entries} entries per case; baseline = one transaction per entry (before)")
    print(
        f"{'store':9}{'threads':>8}  {'before/s':>9}{'now/s':>9}  "
        f"{'wall ratio':>10}{'cpu ratio':>10}  {'cpu µs/entry before -> now':>27}"
    )
    for backend in backends:
        for threads in options.threads:
            figures = {}
            for name, append in (("before", _append_one_by_one), ("now", append_audit_entry)):
                with _store(backend, options.postgres) as url:
                    figures[name] = _run(append, url, options.entries, threads)
            (wall_b, cpu_b), (wall_n, cpu_n) = figures["before"], figures["now"]
            per = 1e6 / options.entries
            print(
                f"{backend:9}{threads:>8}  {options.entries / wall_b:>9.0f}"
                f"{options.entries / wall_n:>9.0f}  {wall_b / wall_n:>9.2f}x{cpu_b / cpu_n:>9.2f}x"
                f"  {cpu_b * per:>14.0f} -> {cpu_n * per:<8.0f}"
            )


if __name__ == "__main__":
    main()
