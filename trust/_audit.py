"""The node's tamper-evident audit ledger: every decision, hash-chained.

Each entry's hash covers its own content and the previous entry's hash, so changing,
removing or reordering any entry breaks every hash after it. ``verify_audit_chain`` walks
the ledger and names the first entry that does not fit. The policy issue widens what an
entry records (row and subject counts, agreement); the chain itself stays as it is.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlmodel import Session

from datatrust.store import AuditEvent

__all__ = ["GENESIS_HASH", "AuditEntry", "append_audit_entry", "verify_audit_chain"]

GENESIS_HASH = "0" * 64
_append_lock = threading.Lock()


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """What one decision was: who asked, for what purpose, what it touched, the outcome."""

    node_id: str
    requester: str
    purpose: str | None
    operation: str
    fields: tuple[str, ...]
    outcome: str  # "permit" | "deny"
    code: str
    reason: str
    policy_version: str


def _entry_hash(prev_hash: str, recorded_at: datetime, entry: AuditEntry) -> str:
    content = {**asdict(entry), "fields": list(entry.fields)}
    content["recorded_at"] = recorded_at.astimezone(UTC).isoformat()
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def append_audit_entry(engine: Engine, entry: AuditEntry) -> str:
    """Append ``entry`` to the ledger in its own transaction; return its hash.

    Raises (a StoreError from the caller's translation) if it cannot be written: callers on
    a decision path must then refuse, never return data unaudited.
    """
    recorded_at = datetime.now(UTC)
    with _append_lock, Session(engine) as session:
        last = session.exec(
            select(AuditEvent.entry_hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        prev_hash = last[0] if last else GENESIS_HASH
        entry_hash = _entry_hash(prev_hash, recorded_at, entry)
        session.add(
            AuditEvent(
                recorded_at=recorded_at,
                node_id=entry.node_id,
                requester=entry.requester,
                purpose=entry.purpose,
                operation=entry.operation,
                fields=json.dumps(list(entry.fields)),
                outcome=entry.outcome,
                code=entry.code,
                reason=entry.reason,
                policy_version=entry.policy_version,
                prev_hash=prev_hash,
                entry_hash=entry_hash,
            )
        )
        session.commit()
    return entry_hash


def verify_audit_chain(engine: Engine) -> tuple[int, int | None]:
    """Check the whole chain: (entries checked, seq of the first broken entry or None)."""
    prev_hash = GENESIS_HASH
    checked = 0
    with Session(engine) as session:
        for (event,) in session.execute(select(AuditEvent).order_by(AuditEvent.seq)):
            entry = AuditEntry(
                node_id=event.node_id,
                requester=event.requester,
                purpose=event.purpose,
                operation=event.operation,
                fields=tuple(json.loads(event.fields)),
                outcome=event.outcome,
                code=event.code,
                reason=event.reason,
                policy_version=event.policy_version,
            )
            expected = _entry_hash(prev_hash, event.recorded_at, entry)
            if event.prev_hash != prev_hash or event.entry_hash != expected:
                return checked, event.seq
            prev_hash = event.entry_hash
            checked += 1
    return checked, None
