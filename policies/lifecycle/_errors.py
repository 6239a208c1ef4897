"""What can go wrong in the DPO's lifecycle, as datatrust errors with stable codes.

::

    CallerError
    ├── PolicyInvalid        the documents (or the Rego) fail validation; nothing is published
    └── PolicyStepRefused    a lifecycle step that the draft's state or its history forbids
    SourceError
    └── PolicyStoreCorrupt   a published version on disk does not match its manifest

Authorisation refusals are ``datatrust.errors.PermissionDenied`` (FORBIDDEN), as everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from datatrust.errors import CallerError, SourceError
from datatrust.policies.documents import DocumentProblem

__all__ = ["PolicyInvalid", "PolicyStepRefused", "PolicyStoreCorrupt"]


class PolicyInvalid(CallerError):
    """The documents or the Rego fail validation; ``problems`` names each one and where."""

    code = "POLICY_INVALID"
    status_hint = 422

    def __init__(self, what: str, problems: Sequence[DocumentProblem]) -> None:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"{what} cannot be published: {len(problems)} problem(s)\n{lines}",
            problems=[str(problem) for problem in problems],
        )
        self.problems = tuple(problems)


class PolicyStepRefused(CallerError):
    """A lifecycle step the draft's state forbids (publishing before approval, and so on)."""

    code = "POLICY_STEP_REFUSED"
    status_hint = 409


class PolicyStoreCorrupt(SourceError):
    """A published version on disk does not match its manifest: never run it."""

    code = "POLICY_STORE_CORRUPT"
    status_hint = 500
