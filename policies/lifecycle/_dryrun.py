"""The dry run: replay recently audited requests against a draft and list what would change.

Pure: audited requests and two engines in, changes out. Each request is replayed at the
time it was made (``now_ns`` is its own audit time), against the policy in force and
against the draft, so the only difference between the two answers is the draft itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from datatrust.policies._engines import Decision

__all__ = ["AuditedRequest", "DecisionEngine", "DryRunChange", "decision_input", "dry_run"]

_NS = 1_000_000_000

_ENTRY_POINTS = ("Query.", "Mutation.")
"""A node's ledger records every field a request selected, its root entry points too
(``Query._entities``); the data-use policy rules on the fields under them only
(``OperationAccess.data_fields``), so a replay must leave the entry points out as well."""


class DecisionEngine(Protocol):
    def decide(self, request: dict[str, Any]) -> Decision: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditedRequest:
    """One request as the audit ledger recorded it: enough to ask the policy again."""

    recorded_at: datetime
    node: str
    agency: str
    roles: tuple[str, ...]
    client_id: str | None
    purpose: str
    fields: tuple[str, ...]
    aggregate: bool
    outcome: str  # "permit" | "deny", as audited
    agreement: str | None

    def __post_init__(self) -> None:
        if self.recorded_at.tzinfo is None:
            raise ValueError("AuditedRequest.recorded_at must be timezone-aware (UTC)")
        if self.outcome not in ("permit", "deny"):
            raise ValueError(f"AuditedRequest.outcome must be permit or deny, not {self.outcome!r}")

    @property
    def data_fields(self) -> tuple[str, ...]:
        """The fields the policy decided on: those selected, less the root entry points."""
        return tuple(f for f in self.fields if not f.startswith(_ENTRY_POINTS))

    def describe(self) -> str:
        shape = "aggregate" if self.aggregate else "record-level"
        client = f" via {self.client_id}" if self.client_id else ""
        return (
            f"{self.recorded_at:%Y-%m-%d %H:%M} {self.agency} ({'/'.join(self.roles)}){client} "
            f"at {self.node} for {self.purpose}: {shape} {', '.join(self.data_fields)}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DryRunChange:
    """A replayed request whose outcome or deciding agreement differs under the draft."""

    request: AuditedRequest
    current: Decision
    draft: Decision

    @property
    def now_allowed(self) -> bool:
        return self.draft.allow

    @property
    def summary(self) -> str:
        """One line: what happens to the request under the draft, and why."""
        if self.draft.allow and not self.current.allow:
            verdict = "would now be ALLOWED"
        elif self.current.allow and not self.draft.allow:
            verdict = "would now be REFUSED"
        else:
            verdict = (
                f"would be decided by agreement {self.draft.agreement} "
                f"instead of {self.current.agreement}"
            )
        return f"{verdict}: {'; '.join(self.draft.reasons)}"


def decision_input(request: AuditedRequest) -> dict[str, Any]:
    """The Rego input for an audited request as its node built it, at the time it was made."""
    return {
        "requester": {
            "agency": request.agency,
            "roles": list(request.roles),
            "client": request.client_id,
        },
        "purpose": request.purpose,
        "node": request.node,
        "fields": list(request.data_fields),
        "aggregate": request.aggregate,
        "now_ns": int(request.recorded_at.timestamp()) * _NS
        + request.recorded_at.microsecond * 1000,
    }


def dry_run(
    requests: Iterable[AuditedRequest],
    current_engine: DecisionEngine,
    draft_engine: DecisionEngine,
    now: datetime,
) -> list[DryRunChange]:
    """The requests (made at or before ``now``) the draft would decide differently.

    A difference is a changed outcome or a changed deciding agreement; a request both
    versions refuse, for whatever reasons, is no change. Oldest first.
    """
    changes = []
    for request in sorted(requests, key=lambda r: r.recorded_at):
        if request.recorded_at > now:
            continue
        given = decision_input(request)
        current, draft = current_engine.decide(given), draft_engine.decide(given)
        if (current.allow, current.agreement) != (draft.allow, draft.agreement):
            changes.append(DryRunChange(request=request, current=current, draft=draft))
    return changes
