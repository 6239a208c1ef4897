"""A DPO's drafts on disk and the transition table of their review.

A draft is a directory holding the two documents, edited by hand or copied in, and
``draft.json``: whose it is, where it stands in review, and every comment. Submitting
records the documents' hash; approving and publishing refuse a draft whose documents
changed since, so what a second DPO approved is exactly what goes live.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from datatrust.policies.lifecycle._errors import PolicyStepRefused
from datatrust.policies.lifecycle._files import dump_json, read_json, write_atomic, write_durable
from datatrust.policies.lifecycle._store import DOCUMENT_FILES, policy_root

__all__ = [
    "Draft",
    "DraftStatus",
    "create_draft_files",
    "documents_hash",
    "draft_ids",
    "drafts_dir",
    "next_status",
    "read_draft",
    "write_draft_record",
]


class DraftStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"


_TRANSITIONS: dict[tuple[str, DraftStatus], DraftStatus] = {
    ("submit", DraftStatus.DRAFT): DraftStatus.SUBMITTED,
    ("submit", DraftStatus.REJECTED): DraftStatus.SUBMITTED,  # fixed after a rejection
    ("approve", DraftStatus.SUBMITTED): DraftStatus.APPROVED,
    ("reject", DraftStatus.SUBMITTED): DraftStatus.REJECTED,
    ("reject", DraftStatus.APPROVED): DraftStatus.REJECTED,  # withdrawn before publishing
    ("publish", DraftStatus.APPROVED): DraftStatus.PUBLISHED,
}
"""(action, status now) -> status after. Anything else is refused."""

_NEEDS = {
    "submit": "a draft or rejected draft",
    "approve": "a submitted draft",
    "reject": "a submitted or approved draft",
    "publish": "an approved draft (submit it, then have a second DPO approve it)",
}


def next_status(draft_id: str, action: str, status: DraftStatus) -> DraftStatus:
    """The status after ``action``, or ``PolicyStepRefused`` saying what the step needs."""
    after = _TRANSITIONS.get((action, status))
    if after is None:
        raise PolicyStepRefused(
            f"draft {draft_id} is {status.value}; {action} needs {_NEEDS.get(action, action)}"
        )
    return after


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """A draft's record (``draft.json``) and its documents."""

    id: str
    agency: str
    author: str
    status: DraftStatus
    base: int | None
    created_at: str
    submitted_sha256: str | None = None
    approved_sha256: str | None = None
    approved_by: str | None = None
    published_as: int | None = None
    comments: tuple[dict[str, Any], ...] = ()
    register: dict[str, Any] = field(default_factory=dict, compare=False)
    agreements: dict[str, Any] = field(default_factory=dict, compare=False)
    content_sha256: str = ""

    def record(self) -> dict[str, Any]:
        names = (
            "id", "agency", "author", "status", "base", "created_at", "submitted_sha256",
            "approved_sha256", "approved_by", "published_as",
        )  # fmt: skip
        values = {name: getattr(self, name) for name in names}
        return values | {"status": self.status.value, "comments": list(self.comments)}

    def commented(self, actor_label: str, action: str, comment: str | None) -> Draft:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "by": actor_label,
            "action": action,
            "comment": comment or "",
        }
        return replace(self, comments=(*self.comments, entry))


def drafts_dir(data_dir: Path) -> Path:
    return policy_root(data_dir) / "drafts"


def draft_ids(data_dir: Path) -> list[str]:
    directory = drafts_dir(data_dir)
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if (p / "draft.json").is_file())


def documents_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in DOCUMENT_FILES:
        digest.update(name.encode() + b"\0" + (directory / name).read_bytes() + b"\0")
    return digest.hexdigest()


def read_draft(data_dir: Path, draft_id: str) -> Draft:
    directory = drafts_dir(data_dir) / draft_id
    if not (directory / "draft.json").is_file():
        known = ", ".join(draft_ids(data_dir)) or "none"
        raise PolicyStepRefused(f"there is no draft {draft_id!r} (drafts: {known})")
    record = read_json(directory / "draft.json")
    try:
        register, agreements = (read_json(directory / name) for name in DOCUMENT_FILES)
    except ValueError as error:
        raise PolicyStepRefused(
            f"draft {draft_id}: a document is not valid JSON ({error}); fix it in {directory}"
        ) from error
    record["status"] = DraftStatus(record["status"])
    record["comments"] = tuple(record.get("comments", ()))
    return Draft(
        **record,
        register=register,
        agreements=agreements,
        content_sha256=documents_hash(directory),
    )


def write_draft_record(data_dir: Path, draft: Draft) -> None:
    write_atomic(drafts_dir(data_dir) / draft.id / "draft.json", dump_json(draft.record()))


def create_draft_files(
    data_dir: Path,
    *,
    agency: str,
    author: str,
    register: dict[str, Any],
    agreements: dict[str, Any],
    base: int | None,
) -> Draft:
    """A new draft directory ``<agency>-<n>`` (``mkdir`` claims the name atomically)."""
    parent = drafts_dir(data_dir)
    parent.mkdir(parents=True, exist_ok=True)
    number = 1 + sum(1 for name in draft_ids(data_dir) if name.startswith(f"{agency}-"))
    while True:
        directory = parent / f"{agency}-{number}"
        try:
            directory.mkdir()
            break
        except FileExistsError:
            number += 1
    for name, document in zip(DOCUMENT_FILES, (register, agreements), strict=True):
        write_durable(directory / name, dump_json(document))
    draft = Draft(
        id=directory.name,
        agency=agency,
        author=author,
        status=DraftStatus.DRAFT,
        base=base,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_draft_record(data_dir, draft)
    return read_draft(data_dir, draft.id)
