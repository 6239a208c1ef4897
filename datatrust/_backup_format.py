"""What a node backup archive is, without any I/O: its manifest and the rules it keeps.

A backup is one ``.tar.gz`` holding ``manifest.json`` and the members it lists. Every
member is named by its path under the node's data directory (``keys/pseudonym.key``,
``config/council.toml``, ``audit/council.head.json``), except the database, which is
``database/<node>.db`` (a SQLite copy) or ``database/<node>.pgdump`` (pg_dump's custom
format). The manifest carries the sha256 of each member, so a restore can refuse an
archive that was altered, naming the member, before it touches anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from datatrust.errors import CallerError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "AuditHead",
    "Manifest",
    "check_members",
    "database_member",
    "relocate_settings",
    "schema_status",
    "with_database_url",
]

FORMAT_VERSION = 1
"""The archive layout this release writes and reads; bumped if members move."""

MANIFEST_NAME = "manifest.json"
DatabaseKind = Literal["sqlite", "postgresql"]
_HEX64 = re.compile(r"[0-9a-f]{64}")


def database_member(node: str, kind: DatabaseKind) -> str:
    """The archive name of a node's database copy."""
    return f"database/{node}.{'db' if kind == 'sqlite' else 'pgdump'}"


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The ledger head anchored beside the store: the newest entry's seq and hash."""

    seq: int
    entry_hash: str

    def __post_init__(self) -> None:
        if self.seq < 1 or not _HEX64.fullmatch(self.entry_hash):
            raise CallerError(
                f"the backup's audit head (seq {self.seq}, hash {self.entry_hash!r}) is not an "
                "entry number and a sha256 hash: the manifest is damaged"
            )


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds and the facts a restore checks before using it."""

    node: str
    created_at: str
    data_dir: str
    database: DatabaseKind
    schema_revisions: tuple[str, ...]
    audit_head: AuditHead | None
    audit_entries: int
    members: Mapping[str, str]
    private_members: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name, digest in self.members.items():
            _check_member_name(name)
            if not _HEX64.fullmatch(digest):
                raise CallerError(f"the manifest's sha256 of {name} is not a sha256 hash")
        if database_member(self.node, self.database) not in self.members:
            raise CallerError(
                f"the manifest lists no {database_member(self.node, self.database)}: "
                "this archive holds no database and cannot restore a node"
            )

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT_VERSION,
            "node": self.node,
            "created_at": self.created_at,
            "data_dir": self.data_dir,
            "database": self.database,
            "schema_revision": list(self.schema_revisions),
            "audit": {
                "entries": self.audit_entries,
                "seq": self.audit_head.seq if self.audit_head else None,
                "head_hash": self.audit_head.entry_hash if self.audit_head else None,
            },
            "members": dict(sorted(self.members.items())),
            "private_members": sorted(self.private_members),
        }
        return json.dumps(document, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Read a manifest, refusing one of another format or with a missing field."""
        try:
            document = json.loads(raw)
            if document.get("format") != FORMAT_VERSION:
                raise CallerError(
                    f"the archive's manifest is format {document.get('format')!r}; this release "
                    f"reads format {FORMAT_VERSION}: restore it with the release that wrote it"
                )
            audit = document["audit"]
            head = (
                None if audit["seq"] is None else AuditHead(int(audit["seq"]), audit["head_hash"])
            )
            if document["database"] not in ("sqlite", "postgresql"):
                raise CallerError(f"unknown database kind {document['database']!r} in manifest")
            return cls(
                node=str(document["node"]),
                created_at=str(document["created_at"]),
                data_dir=str(document["data_dir"]),
                database=document["database"],
                schema_revisions=tuple(str(r) for r in document["schema_revision"]),
                audit_head=head,
                audit_entries=int(audit["entries"]),
                members={str(k): str(v) for k, v in document["members"].items()},
                private_members=frozenset(document.get("private_members", ())),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CallerError(
                f"the archive's {MANIFEST_NAME} is unreadable ({type(error).__name__}: {error}); "
                "it is not a datatrust backup, or it was damaged"
            ) from error


def _check_member_name(name: str) -> None:
    """A member is a plain relative path: nothing absolute, no ``..``, nothing hidden above."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or name != path.as_posix():
        raise CallerError(f"archive member name {name!r} is not a plain relative path: refused")


def check_members(manifest: Manifest, present: Iterable[str]) -> None:
    """The archive holds exactly the manifest's members (and the manifest itself)."""
    present = set(present) - {MANIFEST_NAME}
    unlisted = sorted(present - set(manifest.members))
    if unlisted:
        raise CallerError(
            f"archive member {unlisted[0]} is not in the manifest: the archive was altered; refused"
        )
    missing = sorted(set(manifest.members) - present)
    if missing:
        raise CallerError(
            f"archive member {missing[0]} is listed in the manifest but missing from the "
            "archive: refused"
        )


def schema_status(
    revisions: Iterable[str], heads: Iterable[str], is_known: Callable[[str], bool]
) -> Literal["current", "older", "newer"]:
    """Whether a backup's schema is this release's, an older one, or one it does not know."""
    revisions, heads = set(revisions), set(heads)
    if revisions == heads:
        return "current"
    if revisions and all(is_known(revision) for revision in revisions):
        return "older"
    if not revisions:
        return "older"  # an unmigrated store: migrating it up makes it current
    return "newer"


def relocate_settings(text: str, old_dir: str, new_dir: str) -> str:
    """The settings file with every path under ``old_dir`` moved under ``new_dir``.

    A restore into another data directory keeps the node's settings but points them at
    the restored files: string values equal to ``old_dir`` or starting ``old_dir/`` (also
    inside a ``sqlite:///`` URL) are rewritten; everything else is left byte for byte.
    """
    old, new = old_dir.rstrip("/"), new_dir.rstrip("/")
    if old == new:
        return text
    pattern = re.compile(r'(?:(?<=["\'])|(?<=///))' + re.escape(old) + r'(?=["\'/])')
    return pattern.sub(lambda _: new, text)


def with_database_url(text: str, url: str) -> str:
    """The settings file with ``database_url`` set to ``url`` (replaced, or added on top)."""
    line = f"database_url = {json.dumps(url)}"
    pattern = re.compile(r"^database_url\s*=.*$", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(lambda _: line, text, count=1)
    return f"{line}\n{text}"
