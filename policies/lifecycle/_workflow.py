"""The DPO's steps: draft, submit, approve or reject, publish, roll back.

Who may take a step is the platform policy's call, made through the ``authorize`` callable
the caller injects (``PlatformAuthorizer().authorize`` in the product: it returns when
allowed and raises ``AccessDenied`` saying why not). The rules that make review mean
something are also checked here, whatever the injected policy says, because they are
properties of the workflow itself: a DPO drafts only agreements their agency is party to;
the approver is a different person from the author, of the same agency; what is published
is byte for byte what was approved; and nothing invalid is ever published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from datatrust.errors import AccessDenied
from datatrust.policies import Requester
from datatrust.policies._platform import AgencyDocuments, AgencyResource, DraftApproval
from datatrust.policies.documents import DocumentProblem
from datatrust.policies.lifecycle._checks import validate_policy
from datatrust.policies.lifecycle._drafts import (
    Draft,
    DraftStatus,
    create_draft_files,
    drafts_dir,
    next_status,
    read_draft,
    write_draft_record,
)
from datatrust.policies.lifecycle._errors import (
    PolicyInvalid,
    PolicyStepRefused,
    PolicyStoreCorrupt,
)
from datatrust.policies.lifecycle._files import dump_json, exclusive_lock, write_atomic
from datatrust.policies.lifecycle._store import (
    DOCUMENT_FILES,
    VersionManifest,
    policy_root,
    publish_version,
    read_published,
    read_version,
    version_numbers,
)

__all__ = [
    "Authorize",
    "approve_draft",
    "create_draft",
    "publish_draft",
    "reject_draft",
    "rollback",
    "scope_problems",
    "submit_draft",
    "update_draft",
]

Authorize = Callable[[Requester, str, AgencyResource], None]
"""``authorize(actor, action, resource)``: returns if allowed, raises (AccessDenied) if not."""


def _who(actor: Requester) -> str:
    return f"{actor.subject} ({actor.agency or 'no agency'})"


def _require_agency(actor: Requester) -> str:
    if not actor.agency or "dpo" not in actor.roles:
        raise AccessDenied(
            f"access denied: {_who(actor)} is not a data protection officer of an agency; "
            "only a DPO (role 'dpo') takes part in the policy lifecycle"
        )
    return actor.agency


def _agreements_by_id(agreements: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = agreements.get("agreements", []) if isinstance(agreements, dict) else []
    return {a["id"]: a for a in listed if isinstance(a, dict) and "id" in a}


def _agencies(agreement: dict[str, Any] | None) -> set[str]:
    if agreement is None:
        return set()
    return {p.get("agency") for p in agreement.get("parties", []) if isinstance(p, dict)}


def changed_agreements(base: dict[str, Any], draft: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(id, before, after) for each agreement added, removed or changed."""
    before, after = _agreements_by_id(base), _agreements_by_id(draft)
    return [
        (ident, before.get(ident), after.get(ident))
        for ident in sorted(before.keys() | after.keys())
        if before.get(ident) != after.get(ident)
    ]


def scope_problems(
    agency: str, base: dict[str, Any], draft: dict[str, Any]
) -> list[DocumentProblem]:
    """Agreements a DPO of ``agency`` changed although their agency is not a party.

    Checked before and after the change, so a DPO can neither edit another agency's
    agreement nor take it over by adding their agency as a party.
    """
    index = {a.get("id"): i for i, a in enumerate(draft.get("agreements", []))}
    problems = []
    for ident, before, after in changed_agreements(base, draft):
        outsider = [a for a in (before, after) if a is not None and agency not in _agencies(a)]
        if outsider:
            where = f"$.agreements[{index[ident]}]" if ident in index else "(removed)"
            parties = ", ".join(sorted(_agencies(outsider[0])))
            problems.append(
                DocumentProblem(
                    "agreements",
                    where,
                    f"agreement {ident!r} is between {parties}; a DPO of agency {agency!r} "
                    "may only draft agreements their agency is a party to",
                )
            )
    return problems


def _base_agreements(data_dir: Path, base: int | None) -> dict[str, Any]:
    return read_version(data_dir, base)[2] if base is not None else {"agreements": []}


def _check_scope(data_dir: Path, draft: Draft, agency: str) -> None:
    problems = scope_problems(agency, _base_agreements(data_dir, draft.base), draft.agreements)
    if problems:
        raise PolicyInvalid(f"draft {draft.id}", problems)


def create_draft(
    data_dir: Path,
    actor: Requester,
    authorize: Authorize,
    register: dict[str, Any],
    agreements: dict[str, Any],
) -> Draft:
    """A new draft for the actor's agency, based on the version in force."""
    agency = _require_agency(actor)
    authorize(actor, "edit", AgencyDocuments(agency))
    published = read_published(data_dir)
    base = published.number if published else None
    problems = scope_problems(agency, _base_agreements(data_dir, base), agreements)
    if problems:
        raise PolicyInvalid("the new draft", problems)
    return create_draft_files(
        data_dir,
        agency=agency,
        author=actor.subject,
        register=register,
        agreements=agreements,
        base=base,
    )


def update_draft(
    data_dir: Path,
    draft_id: str,
    actor: Requester,
    authorize: Authorize,
    register: dict[str, Any],
    agreements: dict[str, Any],
) -> Draft:
    """Replace a draft's documents (what a hand edit of its files does, for a web form).

    Only a DPO of the draft's agency, only while it is a draft or rejected (a submitted or
    approved draft is frozen: its hash is what the reviewer sees), and only within the
    agency's scope, as ``create_draft`` checks it.
    """
    agency = _require_agency(actor)
    with exclusive_lock(policy_root(data_dir) / ".lock"):
        draft = read_draft(data_dir, draft_id)
        if agency != draft.agency:
            raise AccessDenied(
                f"access denied: draft {draft.id} belongs to agency {draft.agency!r}"
            )
        authorize(actor, "edit", AgencyDocuments(agency))
        if draft.status not in (DraftStatus.DRAFT, DraftStatus.REJECTED):
            raise PolicyStepRefused(
                f"draft {draft.id} is {draft.status.value}; only a draft or a rejected draft "
                "can be changed (make a new draft from the version in force)"
            )
        problems = scope_problems(agency, _base_agreements(data_dir, draft.base), agreements)
        if problems:
            raise PolicyInvalid(f"draft {draft.id}", problems)
        directory = drafts_dir(data_dir) / draft.id
        for name, document in zip(DOCUMENT_FILES, (register, agreements), strict=True):
            write_atomic(directory / name, dump_json(document))
    return read_draft(data_dir, draft_id)


def _step(data_dir: Path, draft_id: str, action: str, actor: Requester, comment: str | None):
    """Load the draft under the store's lock and check the transition is allowed."""
    draft = read_draft(data_dir, draft_id)
    after = next_status(draft.id, action, draft.status)
    return draft, after, draft.commented(_who(actor), action, comment)


def submit_draft(
    data_dir: Path, draft_id: str, actor: Requester, authorize: Authorize, comment: str = ""
) -> Draft:
    """Put a draft up for review: it must validate and stay within the agency's scope."""
    agency = _require_agency(actor)
    with exclusive_lock(policy_root(data_dir) / ".lock"):
        draft, after, noted = _step(data_dir, draft_id, "submit", actor, comment)
        if agency != draft.agency:
            raise AccessDenied(
                f"access denied: draft {draft.id} belongs to agency {draft.agency!r}"
            )
        authorize(actor, "edit", AgencyDocuments(draft.agency))
        _check_scope(data_dir, draft, agency)
        problems = validate_policy(draft.register, draft.agreements)
        if problems:
            raise PolicyInvalid(f"draft {draft.id}", problems)
        done = replace(noted, status=after, submitted_sha256=draft.content_sha256)
        write_draft_record(data_dir, done)
    return done


def _review(
    data_dir: Path, draft_id: str, action: str, actor: Requester, authorize: Authorize, comment
) -> Draft:
    agency = _require_agency(actor)
    if not comment or not comment.strip():
        raise PolicyStepRefused(f"{action} needs a comment saying why (--comment)")
    with exclusive_lock(policy_root(data_dir) / ".lock"):
        draft, after, noted = _step(data_dir, draft_id, action, actor, comment)
        authorize(actor, "approve", DraftApproval(draft.agency, draft.author))
        if actor.subject == draft.author or agency != draft.agency:
            raise AccessDenied(
                f"access denied: {_who(actor)} may not {action} draft {draft.id} by "
                f"{draft.author} of agency {draft.agency!r}; a draft is reviewed by a second "
                "DPO of the same agency, not its author"
            )
        if action == "approve" and draft.content_sha256 != draft.submitted_sha256:
            raise PolicyStepRefused(
                f"draft {draft.id} changed after it was submitted; its author must submit "
                "it again so that what you approve is what was submitted"
            )
        done = replace(
            noted,
            status=after,
            approved_sha256=draft.content_sha256 if action == "approve" else None,
            approved_by=_who(actor) if action == "approve" else None,
        )
        write_draft_record(data_dir, done)
    return done


def approve_draft(
    data_dir: Path, draft_id: str, actor: Requester, authorize: Authorize, comment: str
) -> Draft:
    """A second DPO of the draft's agency (never its author) approves what was submitted."""
    return _review(data_dir, draft_id, "approve", actor, authorize, comment)


def reject_draft(
    data_dir: Path, draft_id: str, actor: Requester, authorize: Authorize, comment: str
) -> Draft:
    """A second DPO sends the draft back, saying why; its author may fix and resubmit it."""
    return _review(data_dir, draft_id, "reject", actor, authorize, comment)


def publish_draft(
    data_dir: Path, draft_id: str, actor: Requester, authorize: Authorize, reason: str = ""
) -> VersionManifest:
    """Publish an approved, unchanged, valid draft as the next version."""
    agency = _require_agency(actor)
    draft = read_draft(data_dir, draft_id)
    after = next_status(draft.id, "publish", draft.status)
    if agency != draft.agency:
        raise AccessDenied(f"access denied: draft {draft.id} belongs to agency {draft.agency!r}")
    authorize(actor, "publish", AgencyDocuments(draft.agency))
    if draft.content_sha256 != draft.approved_sha256:
        raise PolicyStepRefused(
            f"draft {draft.id} changed after it was approved; submit it again for approval"
        )
    _check_scope(data_dir, draft, agency)
    manifest = publish_version(
        data_dir,
        draft.register,
        draft.agreements,
        author=f"{draft.author} ({draft.agency})",
        author_agency=draft.agency,
        approved_by=draft.approved_by,
        published_by=_who(actor),
        reason=reason or f"draft {draft.id}",
        kind="publish",
        draft=draft.id,
        base=draft.base,
        what=f"draft {draft.id}",
    )
    noted = draft.commented(_who(actor), "publish", f"published as {manifest.label}")
    write_draft_record(data_dir, replace(noted, status=after, published_as=manifest.number))
    return manifest


def _last_intact_agreements(data_dir: Path) -> dict[str, Any]:
    """The agreements of the newest version whose files still match its manifest."""
    for number in reversed(version_numbers(data_dir)):
        try:
            return read_version(data_dir, number)[2]
        except PolicyStoreCorrupt:
            continue
    return {"agreements": []}


def rollback(
    data_dir: Path, number: int, actor: Requester, authorize: Authorize, reason: str
) -> VersionManifest:
    """Publish a new version whose documents equal version ``number``'s.

    A rollback restores documents a second DPO already approved once, so it needs no new
    approval: it needs a DPO of an agency the change back affects (a party to an agreement
    that differs), and it is recorded as a rollback with its reason. It is also how a
    damaged store is repaired (a pointer or version in force that fails its hashes, which
    nodes refuse to load): the change is then judged against the newest intact version,
    and the damage is recorded in the reason.
    """
    agency = _require_agency(actor)
    if not reason or not reason.strip():
        raise PolicyStepRefused("rollback needs a reason (--reason)")
    try:
        current, damage = read_published(data_dir), None
    except PolicyStoreCorrupt as error:
        current, damage = None, error
    if current is None and damage is None:
        raise PolicyStepRefused("nothing is published yet, so there is nothing to roll back")
    _, register, agreements = read_version(data_dir, number)
    if current is not None and (register, agreements) == (current.register, current.agreements):
        raise PolicyStepRefused(
            f"version v{number}'s documents are the ones in force ({current.label}); "
            "nothing to roll back"
        )
    reference = current.agreements if current else _last_intact_agreements(data_dir)
    affected = set().union(
        *(_agencies(b) | _agencies(a) for _, b, a in changed_agreements(reference, agreements))
    )
    if affected and agency not in affected:
        raise AccessDenied(
            f"access denied: rolling back to v{number} changes agreements of "
            f"{', '.join(sorted(affected))}; only a DPO of one of them may do it"
        )
    authorize(actor, "publish", AgencyDocuments(agency))
    return publish_version(
        data_dir,
        register,
        agreements,
        author=_who(actor),
        author_agency=agency,
        approved_by=None,
        published_by=_who(actor),
        reason=reason if damage is None else f"{reason} (repairs: {damage.message})",
        kind="rollback",
        rollback_of=number,
        base=current.number if current else None,
        what=f"the documents of v{number}",
        repair=damage is not None,
    )
