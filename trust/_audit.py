"""The node's tamper-evident audit ledger: every decision, hash-chained.

Each entry's hash covers its own content and the previous entry's hash, so changing,
removing or reordering any entry breaks every hash after it. ``verify_audit_chain`` walks
the ledger and names the first entry that does not fit. The policy issue widens what an
entry records (row and subject counts, agreement); the chain itself stays as it is.

Every request at every part writes an entry before it answers, so appends are cheap by
design: SQLAlchemy Core rather than the ORM, and concurrent appends in one process share
one transaction and one head anchor write (group commit, see ``append_audit_entry``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from sqlalchemy import Engine, insert, select, text
from sqlmodel import Session

from datatrust.errors import StoreError
from datatrust.store import BEGIN_IMMEDIATE, AuditEvent

from ._group_commit import GroupCommit

__all__ = [
    "ENTRY_VERSION",
    "GENESIS_HASH",
    "AuditEntry",
    "append_audit_entry",
    "audit_head_path",
    "read_audit_entries",
    "read_audit_head",
    "verify_audit_chain",
]

GENESIS_HASH = "0" * 64

LEDGER_LOCK_KEY = 0x61756469_746C6472  # "auditldr"
"""The ``pg_advisory_xact_lock`` key an append holds on PostgreSQL, so appenders in other
processes read the newest hash only after the last one committed: the chain never forks."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """What one decision was: who asked, for what purpose, what it touched, the outcome.

    The first block is what every entry has had since the walking skeleton (entry version
    1); the second is what the policy issue added (version 2): who the requester is in
    detail, which agreement decided and why, whether the request was for aggregates, and
    what flowed: row and subject counts and the subjects' pseudonyms, so a citizen can later
    see who used their data. ``opt_out_list_date`` is the check date of the national data
    opt-out list the node applied, as DESIGN.md asks.

    Version 3 adds ``trace_id``: the OpenTelemetry trace the request ran in (32 hex
    digits), the same in the gateway's entry and every node's, so a request can be
    followed from the ledger into its trace and its log lines.
    """

    node_id: str
    requester: str
    purpose: str | None
    operation: str
    fields: tuple[str, ...]
    outcome: str  # "permit" | "deny"
    code: str
    reason: str
    policy_version: str

    agency: str | None = None
    roles: tuple[str, ...] = ()
    client_id: str | None = None
    subject: str | None = None
    aggregate: bool | None = None
    agreement: str | None = None
    reasons: tuple[str, ...] = ()
    row_count: int | None = None
    subject_count: int | None = None
    subjects: tuple[str, ...] = ()
    request_id: str | None = None
    opt_out_list_date: str | None = None

    trace_id: str | None = None


_VERSION_1_FIELDS = (
    "node_id", "requester", "purpose", "operation", "fields", "outcome", "code", "reason",
    "policy_version",
)  # fmt: skip
_ADDED_IN_VERSION_3 = ("trace_id",)
ENTRY_VERSION = 3
_TUPLE_FIELDS = ("fields", "roles", "reasons", "subjects")


_ENTRY_FIELDS = tuple(AuditEntry.__dataclass_fields__)


def _values(entry: AuditEntry) -> dict[str, object]:
    """The entry's fields by name (a shallow ``asdict``: every value is flat)."""
    return {name: getattr(entry, name) for name in _ENTRY_FIELDS}


def _canonical(recorded_at: datetime, entry: AuditEntry, version: int) -> str:
    """The text an entry's hash covers: the fields of its version, and when it was recorded."""
    content = _values(entry)
    if version == 1:
        content = {name: content[name] for name in _VERSION_1_FIELDS}
    elif version == 2:
        content = {k: v for k, v in content.items() if k not in _ADDED_IN_VERSION_3}
    for name in _TUPLE_FIELDS:
        if name in content:
            content[name] = list(content[name])
    content["recorded_at"] = recorded_at.astimezone(UTC).isoformat()
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _chained(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _entry_hash(prev_hash: str, recorded_at: datetime, entry: AuditEntry, version: int) -> str:
    return _chained(prev_hash, _canonical(recorded_at, entry, version))


def _columns(entry: AuditEntry) -> dict[str, object]:
    """The entry as ``audit_event`` columns: tuples are stored as JSON arrays."""
    values = _values(entry)
    for name in _TUPLE_FIELDS:
        values[name] = json.dumps(list(values[name]), ensure_ascii=False)
    return values


def _entry(event: AuditEvent) -> AuditEntry:
    values = {name: getattr(event, name) for name in AuditEntry.__dataclass_fields__}
    for name in _TUPLE_FIELDS:
        values[name] = tuple(json.loads(values[name] or "[]"))
    return AuditEntry(**values)


def audit_head_path(data_dir: Path, part: str) -> Path:
    """Where a part's ledger head is anchored: outside its store, in the data directory."""
    return data_dir / "audit" / f"{part}.head.json"


def _write_head(path: Path, seq: int, entry_hash: str) -> None:
    """Record the newest entry (seq and hash) beside the store, replaced atomically.

    A hash chain shows an entry changed, removed or moved, except at its end: deleting the
    newest entries leaves a shorter chain that still verifies. The head, kept outside the
    store (a database administrator who can rewrite rows cannot necessarily rewrite the
    node's files), lets ``verify_audit_chain`` see that the chain once went further.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named for its writer: two processes (or ledgers) anchoring to one file never write
    # into each other's temporary file.
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, json.dumps({"seq": seq, "entry_hash": entry_hash}).encode())
            # On disk before the rename: a power cut then leaves the old head or the new
            # one, never an empty file that verify would take for tampering (~0.3 ms).
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_audit_head(path: Path) -> tuple[int, str] | None:
    """The anchored head (seq, entry hash), or None where none was written."""
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
        return int(head["seq"]), str(head["entry_hash"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(
            f"the audit ledger's head anchor {path} is unreadable ({error}): it may have been "
            "tampered with; restore it from a backup together with the store"
        ) from error


@dataclass(frozen=True, slots=True)
class _Pending:
    """An entry waiting for its batch: its columns and hashed text, made by its caller."""

    recorded_at: datetime
    columns: dict[str, object]
    canonical: str


_audit_table = AuditEvent.__table__
_newest_hash = select(_audit_table.c.entry_hash).order_by(_audit_table.c.seq.desc()).limit(1)
_insert_entries = insert(_audit_table).returning(_audit_table.c.seq, sort_by_parameter_order=True)
_take_ledger_lock = text("SELECT pg_advisory_xact_lock(:key)")

_ledgers: weakref.WeakKeyDictionary[Engine, dict[Path | None, GroupCommit]] = (
    weakref.WeakKeyDictionary()
)
_ledgers_guard = threading.Lock()


def _ledger(engine: Engine, head: Path | None) -> GroupCommit[_Pending, str]:
    """The group commit of the ledger in ``engine`` anchored at ``head``: one per process."""
    with _ledgers_guard:
        by_head = _ledgers.setdefault(engine, {})
        ledger = by_head.get(head)
        if ledger is None:
            ledger = by_head[head] = GroupCommit()
        return ledger


def _write_batch(engine: Engine, head: Path | None, batch: Sequence[_Pending]) -> list[str]:
    """Chain and insert ``batch`` in one transaction, then anchor its last entry.

    The transaction reads the newest hash and then writes, so on SQLite it begins with
    BEGIN IMMEDIATE (a deferred one whose snapshot another writer, such as ingest or
    consent, moved past could not become a writer and would fail at once, whatever the
    busy timeout); on PostgreSQL it first takes the ledger's advisory lock, so appenders in
    other processes queue there and each reads the hash the one before it committed. The
    anchor is written only after the commit: it never names an entry the store lacks.
    """
    writer = engine.execution_options(**{BEGIN_IMMEDIATE: True})
    rows: list[dict[str, object]] = []
    with writer.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(_take_ledger_lock, {"key": LEDGER_LOCK_KEY})
        prev_hash = connection.execute(_newest_hash).scalar() or GENESIS_HASH
        for pending in batch:
            entry_hash = _chained(prev_hash, pending.canonical)
            rows.append(
                {
                    **pending.columns,
                    "recorded_at": pending.recorded_at,
                    "entry_version": ENTRY_VERSION,
                    "prev_hash": prev_hash,
                    "entry_hash": entry_hash,
                }
            )
            prev_hash = entry_hash
        seqs = connection.execute(_insert_entries, rows).scalars().all()
        if len(seqs) != len(rows) or any(b <= a for a, b in pairwise(seqs)):
            raise StoreError(  # the chain is walked by seq: it must follow the batch's order
                f"the audit ledger gave the batch's entries the sequence numbers {seqs}, "
                "not rising in the order they were chained; nothing was written"
            )
    if head is not None:
        _write_head(head, seqs[-1], prev_hash)
    return [row["entry_hash"] for row in rows]  # type: ignore[misc]


def append_audit_entry(engine: Engine, entry: AuditEntry, head: Path | None = None) -> str:
    """Append ``entry`` to the ledger and return its hash, once it is committed.

    Raises (a StoreError from the caller's translation) if it cannot be written: callers on
    a decision path must then refuse, never return data unaudited. With ``head``, the
    anchor there names the new entry, or one after it, when this returns (see
    ``_write_head``).

    Concurrent appends to one ledger in this process are committed together (see
    :mod:`._group_commit`): one transaction and one anchor write for all the entries that
    queued while the previous batch was written. Each call still returns only after the
    transaction holding its entry committed, and fails if that transaction failed.
    """
    recorded_at = datetime.now(UTC)
    pending = _Pending(
        recorded_at=recorded_at,
        columns=_columns(entry),
        canonical=_canonical(recorded_at, entry, ENTRY_VERSION),
    )
    return _ledger(engine, head).submit(pending, lambda batch: _write_batch(engine, head, batch))


def verify_audit_chain(engine: Engine, head: Path | None = None) -> tuple[int, int | None]:
    """Check the whole chain: (entries checked, seq of the first broken entry or None).

    With ``head`` (the anchor ``append_audit_entry`` keeps), the chain must also reach the
    anchored entry with the anchored hash: if the newest entries were deleted, the anchored
    seq is reported as the first broken one.
    """
    anchored = read_audit_head(head) if head is not None else None
    prev_hash = GENESIS_HASH
    checked = 0
    anchor_found = anchored is None
    with Session(engine) as session:
        for (event,) in session.execute(select(AuditEvent).order_by(AuditEvent.seq)):
            expected = _entry_hash(
                prev_hash, event.recorded_at, _entry(event), event.entry_version or 1
            )
            if event.prev_hash != prev_hash or event.entry_hash != expected:
                return checked, event.seq
            if anchored is not None and event.seq == anchored[0]:
                if event.entry_hash != anchored[1]:
                    return checked, event.seq
                anchor_found = True
            prev_hash = event.entry_hash
            checked += 1
    return checked, None if anchor_found else anchored[0]  # type: ignore[index]


def read_audit_entries(
    engine: Engine, *, since: datetime | None = None, subject: str | None = None
) -> list[tuple[int, datetime, AuditEntry]]:
    """The ledger's entries (seq, recorded_at, entry), oldest first.

    ``since`` keeps entries recorded at or after it (the DPO's dry run replays the last N
    days); ``subject`` keeps the entries whose returned records include that pseudonym (a
    citizen's "who used your data"). The subject filter is a text match on the stored JSON
    array, confirmed on the decoded entry, so no other pseudonym can match by prefix.
    """
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if since is not None:
        query = query.where(AuditEvent.recorded_at >= since)
    if subject is not None:
        query = query.where(AuditEvent.subjects.contains(json.dumps(subject)))
    with Session(engine) as session:
        rows = [
            (event.seq, event.recorded_at, _entry(event)) for (event,) in session.execute(query)
        ]
    return [row for row in rows if subject is None or subject in row[2].subjects]
