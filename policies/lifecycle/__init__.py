"""The DPO's policy lifecycle: versioned trust documents on disk, reviewed and published.

Published versions are immutable directories; ``current.json`` names the one in force and
is replaced atomically only once that version is complete and validated, so a node never
reads a half-published version (``read_published``; ``current_stamp`` to poll cheaply).
Drafts are reviewed by a second DPO of the same agency before they are published; a dry
run replays recently audited requests against a draft, and ``diff_documents`` says in
words what a change does. The CLI is ``datatrust policy`` (``datatrust/_policy_cli.py``).
"""

from datatrust.policies.lifecycle._checks import default_policy_dir, rego_problems, validate_policy
from datatrust.policies.lifecycle._diff import diff_documents
from datatrust.policies.lifecycle._drafts import Draft, DraftStatus, draft_ids, read_draft
from datatrust.policies.lifecycle._dryrun import (
    AuditedRequest,
    DecisionEngine,
    DryRunChange,
    decision_input,
    dry_run,
)
from datatrust.policies.lifecycle._errors import (
    PolicyInvalid,
    PolicyStepRefused,
    PolicyStoreCorrupt,
)
from datatrust.policies.lifecycle._store import (
    DOCUMENT_FILES,
    PublishedPolicy,
    VersionManifest,
    current_stamp,
    ensure_initial_version,
    policy_root,
    read_published,
    read_version,
    version_numbers,
)
from datatrust.policies.lifecycle._workflow import (
    Authorize,
    approve_draft,
    create_draft,
    publish_draft,
    reject_draft,
    rollback,
    scope_problems,
    submit_draft,
    update_draft,
)

__all__ = [
    "DOCUMENT_FILES",
    "AuditedRequest",
    "Authorize",
    "DecisionEngine",
    "Draft",
    "DraftStatus",
    "DryRunChange",
    "PolicyInvalid",
    "PolicyStepRefused",
    "PolicyStoreCorrupt",
    "PublishedPolicy",
    "VersionManifest",
    "approve_draft",
    "create_draft",
    "current_stamp",
    "decision_input",
    "default_policy_dir",
    "diff_documents",
    "draft_ids",
    "dry_run",
    "ensure_initial_version",
    "policy_root",
    "publish_draft",
    "read_draft",
    "read_published",
    "read_version",
    "rego_problems",
    "reject_draft",
    "rollback",
    "scope_problems",
    "submit_draft",
    "update_draft",
    "validate_policy",
    "version_numbers",
]
