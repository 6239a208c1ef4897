"""A node store's copy for a backup, taken with its audit head; and putting one back.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies from a read
snapshot while the node keeps writing (WAL). PostgreSQL: ``pg_dump --format=custom
--snapshot`` dumps the snapshot a held transaction exported, and ``pg_restore
--single-transaction`` loads it. In both, the snapshot is opened while audit appends are
held off, and the head anchor is read then (see :mod:`datatrust._backup`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from datatrust._backup_format import AuditHead, DatabaseKind
from datatrust.errors import StoreError
from datatrust.store import masked_url
from datatrust.store._engine import SQLITE_BUSY_TIMEOUT_MS
from datatrust.trust import read_audit_head

__all__ = ["DatabaseSnapshot", "database_has_data", "restore_database", "snapshot_database"]

LOCK_TIMEOUT_SECONDS = 10
"""How long to wait on PostgreSQL for audit appends in flight to finish."""

_NEWEST = "SELECT seq, entry_hash FROM audit_event ORDER BY seq DESC LIMIT 1"
_COUNT = "SELECT count(*) FROM audit_event"
_HASH_AT = "SELECT entry_hash FROM audit_event WHERE seq = {mark}"


@dataclass(frozen=True, slots=True)
class DatabaseSnapshot:
    revisions: tuple[str, ...]
    head: AuditHead | None
    entries: int


def snapshot_database(url: str, head_path: Path, copy: Path) -> DatabaseSnapshot:
    """Copy the store at ``url`` to ``copy``, with the audit head that matches the copy."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _snapshot_sqlite(Path(parsed.database or ""), head_path, copy)
    return _snapshot_postgres(parsed, head_path, copy)


def _checked_head(
    anchor: tuple[int, str] | None, newest: tuple[int, str] | None, hash_at
) -> AuditHead | None:
    """The head for the copy: its newest entry, once the node's own anchor is found on it.

    The anchor is read while no audit entry can commit, so it names an entry the snapshot
    holds, or one before it: an append that committed just before writes its anchor only
    afterwards (and on SQLite that write waits for the lock the backup holds). The node
    would have moved its anchor to the snapshot's newest entry; the backup does the same,
    after checking that the anchor lies on the copied chain with its hash, so a ledger
    truncated or altered before the backup is refused, not archived.
    """
    if anchor is not None:
        seq, entry_hash = anchor
        if newest is None or seq > newest[0]:
            raise StoreError(
                f"the audit head anchor names entry {seq}, but the ledger ends at "
                f"{newest[0] if newest else 'no entry'}: entries were removed; no backup was "
                "made (see datatrust audit verify)"
            )
        if hash_at(seq) != entry_hash:
            raise StoreError(
                f"the audit ledger's entry {seq} does not have the hash its head anchor "
                "records: the ledger was altered; no backup was made (see datatrust audit verify)"
            )
    return None if newest is None else AuditHead(*newest)


def _snapshot_sqlite(path: Path, head_path: Path, copy: Path) -> DatabaseSnapshot:
    if not path.is_file():
        raise StoreError(f"there is no SQLite store at {path}: nothing to back up")
    timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
    writer = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    reader = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    try:
        tables = {row[0] for row in reader.execute("SELECT name FROM sqlite_master")}
        writer.execute("BEGIN IMMEDIATE")  # no audit entry can commit while this is held
        try:
            reader.execute("BEGIN")
            newest = _query_newest(reader, tables)  # the first read fixes the snapshot
            anchor = read_audit_head(head_path)
        finally:
            writer.execute("ROLLBACK")
        target = sqlite3.connect(copy)
        try:
            reader.backup(target)
        finally:
            target.close()
        checked = _checked_head(
            anchor, newest, lambda seq: _one(reader, _HASH_AT.format(mark="?"), seq)
        )
        revisions = _query_revisions(reader, tables)
        entries = _one(reader, _COUNT) if "audit_event" in tables else 0
        reader.execute("COMMIT")
    except sqlite3.Error as error:
        raise StoreError(f"the SQLite store at {path} could not be copied: {error}") from error
    finally:
        writer.close()
        reader.close()
    return DatabaseSnapshot(revisions, checked, entries)


def _one(connection, query: str, *params):
    row = connection.execute(query, params).fetchone()
    return row[0] if row else None


def _query_newest(connection, tables) -> tuple[int, str] | None:
    if "audit_event" not in tables:
        return None
    row = connection.execute(_NEWEST).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _query_revisions(connection, tables) -> tuple[str, ...]:
    if "alembic_version" not in tables:
        return ()
    return tuple(
        sorted(r[0] for r in connection.execute("SELECT version_num FROM alembic_version"))
    )


def _libpq(url: sa.URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URL (no password) and the environment carrying the password."""
    conninfo = url.set(drivername="postgresql", password=None)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return conninfo.render_as_string(hide_password=False), env


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/lib/postgresql/15/bin")
    if found is None:
        raise StoreError(
            f"{name} is not on PATH: install the PostgreSQL client tools (the server's major "
            "version or newer) to back up or restore a node on PostgreSQL"
        )
    return found


def _run_tool(argv: list[str], env: dict[str, str], what: str, url: sa.URL) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        problem = (result.stderr.strip().splitlines() or ["no message"])[0]
        raise StoreError(f"{what} of {masked_url(url)!r} failed: {problem}")


def _snapshot_postgres(url: sa.URL, head_path: Path, copy: Path) -> DatabaseSnapshot:
    import psycopg

    conninfo, env = _libpq(url)
    pg_dump = _pg_tool("pg_dump")
    try:
        with (
            psycopg.connect(conninfo, password=env.get("PGPASSWORD")) as writer,
            psycopg.connect(conninfo, password=env.get("PGPASSWORD")) as reader,
        ):
            writer.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
            tables = _pg_tables(writer)
            if "audit_event" in tables:  # appends wait; reads go on
                writer.execute("LOCK TABLE audit_event IN SHARE ROW EXCLUSIVE MODE")
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snapshot = _one(reader, "SELECT pg_export_snapshot()")
            newest = _query_newest(reader, tables)
            anchor = read_audit_head(head_path)
            writer.rollback()
            _run_tool(
                [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={copy}", conninfo],
                env,
                "pg_dump",
                url,
            )
            checked = _checked_head(
                anchor, newest, lambda seq: _one(reader, _HASH_AT.format(mark="%s"), seq)
            )
            revisions = _query_revisions(reader, tables)
            entries = _one(reader, _COUNT) if "audit_event" in tables else 0
            reader.rollback()
    except psycopg.Error as error:
        raise StoreError(
            f"the PostgreSQL store {masked_url(url)!r} could not be copied: "
            f"{str(error).strip().splitlines()[0]}"
        ) from error
    return DatabaseSnapshot(revisions, checked, entries)


def _pg_tables(connection) -> set[str]:
    rows = connection.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    ).fetchall()
    return {row[0] for row in rows}


def database_has_data(url: str) -> bool:
    """Whether the store at ``url`` exists and holds any table."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.is_file():
            return False
        with sqlite3.connect(path) as connection:
            return connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    import psycopg

    conninfo, env = _libpq(parsed)
    try:
        with psycopg.connect(conninfo, password=env.get("PGPASSWORD")) as connection:
            return bool(_pg_tables(connection))
    except psycopg.Error as error:
        raise StoreError(
            f"the PostgreSQL store {masked_url(parsed)!r} is unreachable: "
            f"{str(error).strip().splitlines()[0]}; create the (empty) database first"
        ) from error


def restore_database(url: str, kind: DatabaseKind, copy: Path) -> None:
    """Replace the store at ``url`` with the backup's ``copy`` (of the same kind)."""
    parsed = sa.make_url(url)
    backend = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
    if backend != kind:
        raise StoreError(
            f"the backup holds a {kind} store, but the node's database URL "
            f"{masked_url(parsed)!r} is {backend}; give --database-url of a {kind} store"
        )
    if kind == "sqlite":
        _restore_sqlite(Path(parsed.database or ""), copy)
    else:
        _restore_postgres(parsed, copy)


def _restore_sqlite(path: Path, copy: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.restoring")
    shutil.copyfile(copy, temporary)
    os.chmod(temporary, 0o600)  # pseudonymised records: owner-only, as the keys
    # A stale write-ahead log beside the old file would be replayed into the new one.
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(temporary, path)


def _restore_postgres(url: sa.URL, copy: Path) -> None:
    import psycopg

    conninfo, env = _libpq(url)
    pg_restore = _pg_tool("pg_restore")
    try:
        with psycopg.connect(conninfo, password=env.get("PGPASSWORD")) as connection:
            if _pg_tables(connection):  # only with --force: replace what is there
                connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
                connection.execute("CREATE SCHEMA public")
    except psycopg.Error as error:
        raise StoreError(
            f"the PostgreSQL store {masked_url(url)!r} could not be cleared for the restore: "
            f"{str(error).strip().splitlines()[0]}"
        ) from error
    _run_tool(
        [
            pg_restore,
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            f"--dbname={conninfo}",
            str(copy),
        ],
        env,
        "pg_restore",
        url,
    )
