"""The console's view of the trust documents: what a DPO of one agency may see and change.

Thin over ``datatrust.policies.lifecycle`` (the same steps ``datatrust policy`` takes): it
picks out the agency's own agreements and drafts, and turns "not yours" into "not found",
so that another agency's documents are neither shown nor touched, whatever the URL says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from datatrust.policies import Requester

__all__ = [
    "NotFound",
    "VersionLine",
    "agency_agreements",
    "agency_drafts",
    "draft_for",
    "dry_run_draft",
    "own_agreement",
    "version_lines",
]


class NotFound(LookupError):
    """No such document for this DPO's agency (another agency's is "not found" too)."""


def _lc():
    from datatrust.policies import lifecycle

    return lifecycle


def is_party(agreement: dict[str, Any], agency: str) -> bool:
    return any(p.get("agency") == agency for p in agreement.get("parties", []))


def agency_agreements(agreements: dict[str, Any], agency: str) -> list[dict[str, Any]]:
    """The agreements ``agency`` is a party to, in document order."""
    return [a for a in agreements.get("agreements", []) if is_party(a, agency)]


def own_agreement(agreements: dict[str, Any], agency: str, ident: str) -> dict[str, Any]:
    for agreement in agency_agreements(agreements, agency):
        if agreement.get("id") == ident:
            return agreement
    raise NotFound(f"agreement {ident!r} is not one of {agency}'s agreements")


def agency_drafts(data_dir: Path, agency: str) -> list:
    """The agency's drafts, newest first."""
    lc = _lc()
    drafts = [lc.read_draft(data_dir, ident) for ident in lc.draft_ids(data_dir)]
    mine = [d for d in drafts if d.agency == agency]
    return sorted(mine, key=lambda d: (d.created_at, d.id), reverse=True)


def draft_for(data_dir: Path, actor: Requester, ident: str):
    """The draft ``ident`` if it belongs to the actor's agency; NotFound otherwise."""
    lc = _lc()
    if ident not in lc.draft_ids(data_dir):
        raise NotFound(f"there is no draft {ident!r}")
    draft = lc.read_draft(data_dir, ident)
    if draft.agency != actor.agency:
        raise NotFound(f"draft {ident!r} is not one of {actor.agency}'s drafts")
    return draft


def base_documents(data_dir: Path, draft) -> tuple[dict[str, Any], dict[str, Any]]:
    """The documents a draft was made from (what its diff compares with)."""
    lc = _lc()
    if draft.base is None:
        return {"purposes": []}, {"agreements": []}
    _, register, agreements = lc.read_version(data_dir, draft.base)
    return register, agreements


def dry_run_draft(data_dir: Path, draft, days: int) -> tuple[str, int, int, list]:
    """(version label in force, requests replayed, skipped, changes) for ``draft``.

    The same replay as ``datatrust policy dry-run``: every node's ledger of the last
    ``days`` days, against the version in force and against the draft.
    """
    from datatrust._policy_cli import _audited
    from datatrust.policies._engines import EmbeddedRegoEngine
    from datatrust.policies.documents import rego_data

    lc = _lc()
    current = lc.read_published(data_dir)
    if current is None:
        raise NotFound("nothing is published yet")
    problems = lc.validate_policy(draft.register, draft.agreements)
    if problems:
        raise lc.PolicyInvalid(f"draft {draft.id}", problems)
    policy_dir = lc.default_policy_dir()
    engines = [
        EmbeddedRegoEngine(policy_dir, rego_data(r, a, version=v))
        for r, a, v in (
            (current.register, current.agreements, current.policy_version),
            (draft.register, draft.agreements, f"draft {draft.id}"),
        )
    ]
    now = datetime.now(UTC)
    requests, skipped = _audited(data_dir, now - timedelta(days=days), None)
    changes = lc.dry_run(requests, engines[0], engines[1], now)
    return current.label, len(requests), skipped, changes


@dataclass(frozen=True, slots=True)
class VersionLine:
    number: int
    label: str
    is_current: bool
    manifest: Any
    problem: str | None


def version_lines(data_dir: Path) -> tuple[list[VersionLine], str | None]:
    """Every published version, newest first, and the damage to the one in force, if any."""
    lc = _lc()
    try:
        current, damage = lc.read_published(data_dir), None
    except lc.PolicyStoreCorrupt as error:
        current, damage = None, error.message
    lines = []
    for number in reversed(lc.version_numbers(data_dir)):
        try:
            manifest, _, _ = lc.read_version(data_dir, number)
            is_current = bool(current and current.number == number)
            lines.append(VersionLine(number, manifest.label, is_current, manifest, None))
        except lc.PolicyStoreCorrupt as error:
            lines.append(VersionLine(number, f"v{number}", False, None, error.message))
    return lines, damage
