"""The versioned policy store on disk, and how a node reads the published version.

Layout under ``<data_dir>/policies/``::

    versions/<n>/purposes.json, agreements.json, manifest.json   immutable, one per publish
    drafts/<id>/purposes.json, agreements.json, draft.json       a DPO's work in progress
    current.json                                                 which version is in force

A version directory is assembled under a hidden temporary name, every file fsynced, its
hashes recorded in the manifest and checked again, and only then renamed into place; after
that, ``current.json`` is replaced atomically. A node that reads ``current.json`` therefore
finds either the old version or the new one, whole, never a half-published one, and
``read_published`` re-checks every file's hash before handing the documents over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datatrust.policies.documents import demo_agreements, demo_register
from datatrust.policies.lifecycle._checks import validate_policy
from datatrust.policies.lifecycle._errors import (
    PolicyInvalid,
    PolicyStepRefused,
    PolicyStoreCorrupt,
)
from datatrust.policies.lifecycle._files import (
    dump_json,
    exclusive_lock,
    fsync_dir,
    read_json,
    sha256_file,
    write_atomic,
    write_durable,
)

__all__ = [
    "DOCUMENT_FILES",
    "PublishedPolicy",
    "VersionManifest",
    "current_stamp",
    "ensure_initial_version",
    "policy_root",
    "publish_version",
    "read_published",
    "read_version",
    "version_numbers",
]

DOCUMENT_FILES = ("purposes.json", "agreements.json")
"""The documents of a version or draft: the purpose register and the agreements."""


def policy_root(data_dir: Path) -> Path:
    return data_dir / "policies"


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionManifest:
    """Who published a version, when, why, approved by whom, and the hash of each file."""

    number: int
    label: str
    policy_version: str
    published_at: str
    author: str
    author_agency: str | None
    approved_by: str | None
    published_by: str
    reason: str
    parent: int | None
    kind: str  # "initial" | "publish" | "rollback"
    draft: str | None = None
    rollback_of: int | None = None
    files: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedPolicy:
    """The version in force: its documents and the strings decisions and /readyz carry.

    ``stamp`` is the hash of ``current.json``: compare it with ``current_stamp`` to learn,
    cheaply, whether a new version was published since this one was read.
    """

    number: int
    label: str
    register: dict[str, Any]
    agreements: dict[str, Any]
    stamp: str
    policy_version: str


_REPAIR = (
    "Nodes keep the version they run; restore the file from a backup, or have a DPO roll "
    "back to an intact version (datatrust policy rollback N)"
)


def _label(number: int) -> str:
    return f"v{number}"


def _name(number: int | None) -> str:
    return "no published version" if number is None else f"version {_label(number)}"


def _policy_version(number: int, register: dict[str, Any], agreements: dict[str, Any]) -> str:
    return f"{_label(number)} (agreements {agreements['version']}, purposes {register['version']})"


def version_numbers(data_dir: Path) -> list[int]:
    """Every published version's number, ascending (hidden half-built directories ignored)."""
    versions = policy_root(data_dir) / "versions"
    if not versions.is_dir():
        return []
    return sorted(int(path.name) for path in versions.iterdir() if path.name.isdigit())


def read_version(data_dir: Path, number: int) -> tuple[VersionManifest, dict, dict]:
    """A published version's manifest, register and agreements, each file's hash checked."""
    directory = policy_root(data_dir) / "versions" / str(number)
    if not directory.is_dir():
        known = ", ".join(_label(n) for n in version_numbers(data_dir)) or "none"
        raise PolicyStoreCorrupt(f"there is no policy version {number} (published: {known})")
    try:
        manifest = VersionManifest(**read_json(directory / "manifest.json"))
        for name in DOCUMENT_FILES:
            if sha256_file(directory / name) != manifest.files.get(name):
                raise PolicyStoreCorrupt(
                    f"policy version {number}: {directory / name} does not match the hash "
                    f"in its manifest; it was changed after publishing. {_REPAIR}"
                )
        return (
            manifest,
            read_json(directory / DOCUMENT_FILES[0]),
            read_json(directory / DOCUMENT_FILES[1]),
        )
    except (OSError, ValueError, TypeError) as error:
        raise PolicyStoreCorrupt(
            f"policy version {number} at {directory} cannot be read: {error}"
        ) from error


def current_stamp(data_dir: Path) -> str | None:
    """The hash of ``current.json`` (None before the first publish); reads only that file."""
    try:
        return hashlib.sha256((policy_root(data_dir) / "current.json").read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def read_published(data_dir: Path) -> PublishedPolicy | None:
    """The version in force, whole and verified, or None if nothing is published yet.

    Raises ``PolicyStoreCorrupt`` if ``current.json`` or the version it names is damaged:
    a node then keeps the version it already runs (or, at start, refuses every request).
    """
    pointer = policy_root(data_dir) / "current.json"
    try:
        content = pointer.read_bytes()
    except FileNotFoundError:
        return None
    try:
        current = json.loads(content)
        number = int(current["number"])
        manifest_hash = current["manifest_sha256"]
    except (ValueError, KeyError, TypeError) as error:
        raise PolicyStoreCorrupt(
            f"{pointer} is not a policy pointer ({error}). {_REPAIR}"
        ) from error
    manifest_path = policy_root(data_dir) / "versions" / str(number) / "manifest.json"
    if manifest_path.exists() and sha256_file(manifest_path) != manifest_hash:
        raise PolicyStoreCorrupt(f"{manifest_path} does not match the hash in {pointer}. {_REPAIR}")
    manifest, register, agreements = read_version(data_dir, number)
    return PublishedPolicy(
        number=number,
        label=manifest.label,
        register=register,
        agreements=agreements,
        stamp=hashlib.sha256(content).hexdigest(),
        policy_version=manifest.policy_version,
    )


def publish_version(
    data_dir: Path,
    register: dict[str, Any],
    agreements: dict[str, Any],
    *,
    author: str,
    author_agency: str | None,
    approved_by: str | None,
    published_by: str,
    reason: str,
    kind: str,
    draft: str | None = None,
    rollback_of: int | None = None,
    base: int | None,
    what: str = "these documents",
    repair: bool = False,
) -> VersionManifest:
    """Validate, write a new immutable version, then point ``current.json`` at it.

    Refuses (``PolicyInvalid``, naming the documents as ``what``) anything that does not
    validate. ``base`` is the version the documents were made from and must still be the
    one in force (``PolicyStepRefused`` otherwise), so a draft made from v3 cannot
    silently undo a v4 published meanwhile. With ``repair``, a damaged pointer or version
    in force (``PolicyStoreCorrupt``) is replaced instead of refusing; nothing is then in
    force to compare ``base`` with, so the new version has no parent.
    """
    problems = validate_policy(register, agreements)
    if problems:
        raise PolicyInvalid(what, problems)
    root = policy_root(data_dir)
    versions = root / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / ".lock"):
        try:
            published = read_published(data_dir)
        except PolicyStoreCorrupt:
            if not repair:
                raise
            published = base = None
        parent = published.number if published else None
        if base != parent:
            raise PolicyStepRefused(
                f"the documents were based on {_name(base)} but {_name(parent)} "
                "is in force now; make a new draft from the current version and carry the "
                "change over"
            )
        number = max(version_numbers(data_dir), default=0) + 1
        staging = versions / f".incoming-{number}-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        try:
            for name, document in zip(DOCUMENT_FILES, (register, agreements), strict=True):
                write_durable(staging / name, dump_json(document))
            manifest = VersionManifest(
                number=number,
                label=_label(number),
                policy_version=_policy_version(number, register, agreements),
                published_at=datetime.now(UTC).isoformat(timespec="seconds"),
                author=author,
                author_agency=author_agency,
                approved_by=approved_by,
                published_by=published_by,
                reason=reason,
                parent=parent,
                kind=kind,
                draft=draft,
                rollback_of=rollback_of,
                files={name: sha256_file(staging / name) for name in DOCUMENT_FILES},
            )
            write_durable(staging / "manifest.json", dump_json(manifest.as_dict()))
            fsync_dir(staging)
            if [read_json(staging / name) for name in DOCUMENT_FILES] != [register, agreements]:
                raise PolicyStoreCorrupt(f"{staging} did not read back as written")
            os.rename(staging, versions / str(number))
            fsync_dir(versions)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        pointer = {
            "number": number,
            "label": manifest.label,
            "policy_version": manifest.policy_version,
            "manifest_sha256": sha256_file(versions / str(number) / "manifest.json"),
        }
        write_atomic(root / "current.json", dump_json(pointer))
    return manifest


def ensure_initial_version(data_dir: Path, actor_label: str) -> PublishedPolicy:
    """Publish the shipped demo documents as version 1 if nothing is published yet."""
    published = read_published(data_dir)
    if published is not None:
        return published
    # Another process may publish version 1 first: then read what it published.
    with contextlib.suppress(PolicyStepRefused):
        publish_version(
            data_dir,
            demo_register(),
            demo_agreements(),
            author=actor_label,
            author_agency=None,
            approved_by=None,
            published_by=actor_label,
            reason="the trust's shipped documents, published when the trust was first set up",
            kind="initial",
            base=None,
        )
    published = read_published(data_dir)
    if published is None:
        raise PolicyStoreCorrupt(f"{policy_root(data_dir)} holds no version after publishing")
    return published
