"""What ``datatrust doctor`` concludes: findings from what it read and what the parts answered.

Every function here is pure: it takes file contents, HTTP answers (or the error a request
ended with) and the time, and returns ``Finding``s in plain words with what to do. Reading
files, calling the parts and verifying ledgers is ``_doctor_cli``'s job, through the code the
rest of the product uses (directory verification, the PKI's fingerprints, the gateway's
composer, the audit chain check), so the doctor cannot disagree with the parts it checks.

The checks live in one module each: this one (the ``Finding`` every check returns, the
signed directory, schema composition, audit ledgers, and the words they share),
``_doctor_certificates`` and ``_doctor_reach`` (reachability and clocks). Thresholds, also
in docs/operations.md: the directory warns ``DIRECTORY_WARN_BEFORE`` (7 days, when
``init`` re-signs) before it expires; certificates and clocks say theirs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from joserfc.jwk import ECKey

from datatrust.errors import DatatrustError
from datatrust.network import TrustDirectory, verify_directory
from datatrust.network._signing import CLOCK_LEEWAY

__all__ = [
    "DIRECTORY_WARN_BEFORE",
    "Finding",
    "audit_findings",
    "day",
    "directory_findings",
    "exit_code",
    "moment",
    "origin",
    "problem",
    "schema_findings",
    "span",
]

Status = Literal["ok", "warning", "problem"]
STATUSES: tuple[Status, ...] = ("ok", "warning", "problem")

DIRECTORY_WARN_BEFORE = dt.timedelta(days=7)

RESIGN = (
    "Re-sign it with a later expires_at: edit directory.json (raise version and expires_at) "
    "and run `datatrust directory sign directory.json` (on the demo trust `datatrust init` "
    "does it)."
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the doctor's report: which check, about what, how it stands, and why."""

    check: str
    subject: str
    status: Status
    message: str
    fix: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.status == "problem" and not self.fix:
            raise ValueError("a problem names what to do about it (fix)")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def exit_code(findings: Sequence[Finding]) -> int:
    """0 when nothing is a problem (warnings allowed), 1 otherwise."""
    return 1 if any(f.status == "problem" for f in findings) else 0


# The signed directory -----------------------------------------------------------------------


def directory_findings(
    signed: str | None, operator_key: ECKey | None, now: dt.datetime, *, where: str
) -> tuple[list[Finding], TrustDirectory | None]:
    """Signature and dates of the signed directory ``signed`` (the text of ``where``).

    Returns the directory too, even an expired one (its endpoints and fingerprints are still
    what the parts use), or None when it cannot be read or its signature does not hold.
    """
    if signed is None:
        return [
            problem(
                "directory",
                f"There is no signed trust directory at {where}: nodes accept no peer without one.",
                "Create it with `datatrust init`.",
            )
        ], None
    if operator_key is None:
        return [
            problem(
                "directory",
                "The operator's public key cannot be read, so the directory cannot be checked.",
                "Restore keys/operator.pub.pem (written by `datatrust init`) from a backup.",
            )
        ], None
    try:
        directory = verify_directory(signed, operator_key, now=now)
    except DatatrustError as error:
        unverified = _unverified(signed)
        if unverified is None or not _signature_holds(signed, operator_key, unverified):
            return [
                problem(
                    "directory",
                    f"The trust directory {where} is not valid: {error.message}. Nodes refuse "
                    "every peer while it is not.",
                    "Sign it again with the operator key: `datatrust directory sign "
                    "directory.json`.",
                )
            ], None
        return [_dated_problem(unverified, now)], unverified
    left = directory.expires_at - now
    if left < DIRECTORY_WARN_BEFORE:
        return [
            Finding(
                "directory",
                "signed directory",
                "warning",
                f"The trust directory (version {directory.version}) expires on "
                f"{day(directory.expires_at)} ({span(left)} from now). After that nodes "
                f"will refuse each other. {RESIGN}",
            )
        ], directory
    return [
        Finding(
            "directory",
            "signed directory",
            "ok",
            f"version {directory.version}, signed by the operator key, "
            f"{len(directory.members)} members, expires {day(directory.expires_at)} "
            f"(in {span(left)})",
        )
    ], directory


def _dated_problem(directory: TrustDirectory, now: dt.datetime) -> Finding:
    if now >= directory.expires_at:
        return problem(
            "directory",
            f"The trust directory (version {directory.version}) expired on "
            f"{day(directory.expires_at)} ({span(now - directory.expires_at)} ago): nodes "
            "refuse each other and the gateway, so no query is answered.",
            RESIGN,
        )
    return problem(
        "directory",
        f"The trust directory (version {directory.version}) is not valid yet: it was issued "
        f"at {moment(directory.issued_at)}, more than {CLOCK_LEEWAY.seconds} s after this "
        f"machine's time {moment(now)}.",
        "Check this machine's clock and the operator's (NTP), then sign again if the issue "
        "time was wrong.",
    )


def _unverified(signed: str) -> TrustDirectory | None:
    try:
        payload = signed.strip().split(".")[1]
        document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return TrustDirectory.from_document(document)
    except (IndexError, ValueError, DatatrustError):
        return None


def _signature_holds(signed: str, key: ECKey, directory: TrustDirectory) -> bool:
    """Whether only the dates fail: the same verification, at a moment inside its validity."""
    try:
        verify_directory(signed, key, now=directory.issued_at)
    except DatatrustError:
        return False
    return True


# Schema composition and audit ledgers ------------------------------------------------------


def schema_findings(
    composed: str | None, composition_error: str | None, missing: Mapping[str, str]
) -> Finding:
    """How the nodes' subgraphs composed (``composed``: a summary) or why they did not."""
    if composition_error is not None:
        return problem(
            "schema",
            f"The nodes' subgraphs do not compose into one schema: {composition_error}. The "
            "gateway keeps its last good schema, or answers nothing after a restart.",
            "Make the subgraphs agree (the message names the type, field and subgraphs), or "
            "roll back the node that changed; see the gateway's log.",
        )
    gaps = "; ".join(f"{name}: {why}" for name, why in missing.items())
    if composed is None:
        return Finding(
            "schema",
            "composition",
            "warning",
            f"Not checked: no node gave its subgraph ({gaps}).",
        )
    if missing:
        return Finding(
            "schema",
            "composition",
            "warning",
            f"{composed}, but without the subgraphs of {', '.join(missing)} ({gaps}).",
        )
    return Finding("schema", "composition", "ok", composed)


def audit_findings(checks: Sequence[Any], data_dir: str) -> list[Finding]:
    """``LedgerCheck``s (from ``audit verify``'s code) as findings; none found is a warning."""
    if not checks:
        return [
            Finding(
                "audit",
                "ledgers",
                "warning",
                f"No audit ledger found in {data_dir}: no node has kept one here yet.",
            )
        ]
    findings = []
    for check in checks:
        subject = f"{check.part} ledger"
        if check.problem:
            findings.append(
                problem(
                    "audit",
                    f"The {check.part} audit ledger cannot be checked: {check.problem}.",
                    "Make its store reachable (see its log), then run `datatrust audit verify`.",
                    subject,
                )
            )
        elif check.first_broken_seq is not None:
            findings.append(
                problem(
                    "audit",
                    f"The {check.part} audit ledger is broken at entry "
                    f"{check.first_broken_seq} ({check.entries_checked} entries before it "
                    "verify): an entry was changed, removed or reordered after it was "
                    "written, so the record of who saw what can no longer be trusted.",
                    "Keep the store untouched as evidence, tell the DPO, find who changed it, "
                    "and restore the ledger from a backup (operations: The audit ledger).",
                    subject,
                )
            )
        else:
            findings.append(
                Finding("audit", subject, "ok", f"intact ({check.entries_checked} entries)")
            )
    return findings


# Words --------------------------------------------------------------------------------------


def problem(check: str, message: str, fix: str, subject: str | None = None) -> Finding:
    """A problem finding; ``subject`` defaults to the check's one thing (the directory...)."""
    return Finding(check, subject or _SUBJECTS.get(check, check), "problem", message, fix)


_SUBJECTS = {"directory": "signed directory", "schema": "composition"}


def origin(url: str) -> str:
    """Scheme, host and port of ``url``: the address a person recognises."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def day(when: dt.datetime) -> str:
    """The UTC date, as the report names days: 2026-11-20."""
    return when.astimezone(dt.UTC).date().isoformat()


def moment(when: dt.datetime) -> str:
    """The UTC time to the second: 2026-11-20T09:30:00Z."""
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def span(delta: dt.timedelta) -> str:
    """A duration as a person says it: "6 days", "3 hours", "40 minutes", "12 s"."""
    seconds = int(abs(delta).total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} s"
