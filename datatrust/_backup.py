"""Backing up one node (database, keys, audit head, settings) and restoring it elsewhere.

The database and the audit ledger's head anchor (``audit/<node>.head.json``, kept outside
the store so truncating the ledger shows) are taken together: while the node's audit
writers are held off (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``LOCK TABLE audit_event``),
a read snapshot is opened and the anchor is read. The lock is then released and the copy
(sqlite3's online backup API, or ``pg_dump --snapshot``) is made from that snapshot, so
the node keeps serving; the anchor must lie on the copied chain, and the archive's head is
the copy's newest entry, so chain and head agree exactly. The archive layout and manifest
are in :mod:`datatrust._backup_format`; the database work is in
:mod:`datatrust._backup_database`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datatrust._backup_database import (
    DatabaseSnapshot,
    database_has_data,
    restore_database,
    snapshot_database,
)
from datatrust._backup_format import (
    MANIFEST_NAME,
    Manifest,
    check_members,
    database_member,
    relocate_settings,
    schema_status,
    with_database_url,
)
from datatrust.errors import CallerError, StoreError
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import alembic_config, create_store_engine, masked_url, migrate
from datatrust.trust import OVERLAP_KEY_FILE, audit_head_path, verify_audit_chain

__all__ = ["BackupResult", "RestoreResult", "back_up_node", "node_settings", "restore_node"]

Step = Callable[[str], None]

NODE_KEY_FILES = ("pseudonym.key", "disclosure.key", OVERLAP_KEY_FILE)
"""The trust-wide secrets a node loads from ``<data_dir>/keys`` (see ``node.node_keys``);
its own keys (WiFi pseudonym keys, the webhook secret) are under ``keys/<node>/``."""

SETTINGS_FILE_FIELDS = (
    "tls_cert",
    "tls_key",
    "tls_ca",
    "directory",
    "operator_public_key",
    "database_password_file",
)
"""Settings naming files the node cannot start without: backed up when in the data dir."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    archive: Path
    manifest: Manifest
    size_bytes: int
    left_out: tuple[str, ...]
    """Files the settings name outside the data directory: the operator backs those up."""


@dataclass(frozen=True, slots=True)
class RestoreResult:
    manifest: Manifest
    data_dir: Path
    database_url: str
    migrated_from: tuple[str, ...] | None
    entries_verified: int


def node_settings(data_dir: Path, node: str, settings_file: Path | None = None) -> NodeSettings:
    """A node's settings as ``up`` wrote them (``config/<node>.toml``), or the defaults."""
    path = settings_file or data_dir / "config" / f"{node}.toml"
    return load_settings(
        NodeSettings,
        toml_path=path if path.is_file() else None,
        environ={},
        node_id=node,
        agency=None if path.is_file() else node,
        data_dir=data_dir,
    )


def _relative_to(path: Path, data_dir: Path) -> str | None:
    try:
        return path.resolve().relative_to(data_dir).as_posix()
    except ValueError:
        return None


def _node_files(
    data_dir: Path, node: str, settings: NodeSettings
) -> tuple[dict[str, Path], list[str]]:
    """The node's files to back up (archive name -> path), and files left out (outside)."""
    files: dict[str, Path] = {}
    keys = data_dir / "keys"
    for name in NODE_KEY_FILES:
        if (keys / name).is_file():
            files[f"keys/{name}"] = keys / name
    own = keys / node
    if own.is_dir():
        for path in sorted(own.rglob("*")):
            if path.is_file():
                files[path.relative_to(data_dir).as_posix()] = path
    config = data_dir / "config" / f"{node}.toml"
    if config.is_file():
        files[f"config/{node}.toml"] = config
    left_out = []
    for field in SETTINGS_FILE_FIELDS:
        value = getattr(settings, field)
        if value is None:
            continue
        name = _relative_to(Path(value), data_dir)
        if name is None:
            left_out.append(f"{field} = {value}")
        elif Path(value).is_file():
            files[name] = Path(value)
    return files, left_out


def back_up_node(data_dir: Path, node: str, archive: Path, *, on_step: Step) -> BackupResult:
    """Write ``archive``: node ``node``'s database, keys, audit head and settings."""
    data_dir = data_dir.resolve()
    settings = node_settings(data_dir, node)
    url = settings.effective_database_url
    files, left_out = _node_files(data_dir, node, settings)
    archive.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".backup-", dir=archive.parent))
    try:
        kind = "sqlite" if url.startswith("sqlite") else "postgresql"
        copy = staging / "database"
        on_step(f"snapshot of the {kind} store at {masked_url(url)}")
        snapshot = snapshot_database(url, audit_head_path(data_dir, node), copy)
        on_step(_snapshot_words(snapshot))
        members = {database_member(node, kind): copy}
        if snapshot.head is not None:
            head = staging / "head.json"
            anchor = {"seq": snapshot.head.seq, "entry_hash": snapshot.head.entry_hash}
            head.write_text(json.dumps(anchor), encoding="utf-8")  # as the node writes it
            members[audit_head_path(data_dir, node).relative_to(data_dir).as_posix()] = head
        for name, path in files.items():
            members[name] = staging / "files" / name
            members[name].parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, members[name])
        private = {
            name
            for name, path in files.items()
            if name.startswith("keys/") or path.stat().st_mode & 0o077 == 0
        }
        manifest = Manifest(
            node=node,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            data_dir=str(data_dir),
            database=kind,
            schema_revisions=snapshot.revisions,
            audit_head=snapshot.head,
            audit_entries=snapshot.entries,
            members={name: _file_sha256(path) for name, path in members.items()},
            private_members=frozenset(private),
        )
        on_step(f"{len(members)} members hashed (sha256); writing {archive}")
        _write_archive(archive, manifest, members)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(archive, manifest, archive.stat().st_size, tuple(left_out))


def _snapshot_words(snapshot: DatabaseSnapshot) -> str:
    revision = ", ".join(snapshot.revisions) or "none"
    if snapshot.head is None:
        return f"database copied (schema revision {revision}; no audit head anchor yet)"
    return (
        f"database copied (schema revision {revision}) with audit head seq {snapshot.head.seq} "
        f"({snapshot.head.entry_hash[:12]}...), {snapshot.entries} entries"
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_archive(archive: Path, manifest: Manifest, members: dict[str, Path]) -> None:
    """Write the archive owner-only (it holds keys), atomically, manifest first."""
    temporary = archive.with_name(f".{archive.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add(tar, MANIFEST_NAME, manifest.to_json())
            for name, path in sorted(members.items()):
                info = tar.gettarinfo(str(path), arcname=name)
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
        os.replace(temporary, archive)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def _read_verified(archive: Path, staging: Path, node: str | None, on_step: Step) -> Manifest:
    """Extract every member into ``staging``, refusing the archive if any hash differs."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            return _extract_verified(tar, archive, staging, node, on_step)
    except (OSError, tarfile.TarError, EOFError) as error:
        raise CallerError(f"{archive} could not be read as a .tar.gz backup: {error}") from error


def _extract_verified(
    tar: tarfile.TarFile, archive: Path, staging: Path, node: str | None, on_step: Step
) -> Manifest:
    try:
        handle = tar.extractfile(MANIFEST_NAME)
    except KeyError:
        handle = None
    if handle is None:
        raise CallerError(f"{archive} has no {MANIFEST_NAME}: it is not a datatrust backup")
    manifest = Manifest.from_json(handle.read())
    if node is not None and node != manifest.node:
        raise CallerError(
            f"{archive} is a backup of the {manifest.node} node, not {node}; "
            f"give --node {manifest.node} or the right archive"
        )
    entries = tar.getmembers()
    check_members(manifest, (entry.name for entry in entries))
    on_step(f"backup of the {manifest.node} node made {manifest.created_at}")
    for entry in entries:
        if entry.name == MANIFEST_NAME:
            continue
        if not entry.isfile():
            raise CallerError(f"archive member {entry.name} is not a regular file: refused")
        target = staging / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(entry)
        with target.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        if _file_sha256(target) != manifest.members[entry.name]:
            raise CallerError(
                f"archive member {entry.name} does not match its sha256 in the manifest: "
                "the archive was altered or damaged; nothing was restored"
            )
    on_step(f"every member's sha256 matches the manifest ({len(manifest.members)} members)")
    return manifest


def _check_schema(manifest: Manifest) -> str:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    scripts = ScriptDirectory.from_config(alembic_config())

    def is_known(revision: str) -> bool:
        try:
            return scripts.get_revision(revision) is not None
        except CommandError:
            return False

    heads = scripts.get_heads()
    status = schema_status(manifest.schema_revisions, heads, is_known)
    if status == "newer":
        raise CallerError(
            f"the backup's schema revision {', '.join(manifest.schema_revisions)} is newer "
            f"than this release of datatrust knows (its newest is {', '.join(heads)}); "
            "restore it with the release that made it, or a newer one"
        )
    return status


def restore_node(
    archive: Path,
    data_dir: Path,
    *,
    node: str | None = None,
    force: bool = False,
    database_url: str | None = None,
    on_step: Step,
) -> RestoreResult:
    """Restore a node from ``archive`` into ``data_dir``; verify its audit chain after."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        manifest = _read_verified(archive, staging, node, on_step)
        status = _check_schema(manifest)
        node = manifest.node
        settings_name = f"config/{node}.toml"
        settings_file = staging / settings_name
        if settings_file.is_file():
            text = relocate_settings(
                settings_file.read_text(encoding="utf-8"), manifest.data_dir, str(data_dir)
            )
            if database_url is not None:
                text = with_database_url(text, database_url)
            settings_file.write_text(text, encoding="utf-8")
        elif database_url is not None:
            settings_file.parent.mkdir(parents=True, exist_ok=True)
            settings_file.write_text(
                f'node_id = "{node}"\nagency = "{node}"\ndata_dir = "{data_dir.as_posix()}"\n'
                f'database_url = "{database_url}"\n',
                encoding="utf-8",
            )
        settings = node_settings(data_dir, node, settings_file)
        url = settings.effective_database_url
        if not force:
            _refuse_existing_data(data_dir, manifest, staging, settings_file, url)
        on_step(f"restoring into {data_dir} (store {masked_url(url)})")
        _place_files(data_dir, manifest, staging, settings_file, settings_name)
        restore_database(url, manifest.database, staging / database_member(node, manifest.database))
        on_step(f"database restored at schema revision {', '.join(manifest.schema_revisions)}")
        migrated_from = None
        engine = create_store_engine(url)
        try:
            restored = _restored_revisions(engine)
            if restored != manifest.schema_revisions:
                raise StoreError(
                    f"the restored store is at schema revision {', '.join(restored) or 'none'}, "
                    f"but the manifest says {', '.join(manifest.schema_revisions) or 'none'}: "
                    "the archive does not hold what its manifest describes"
                )
            if status == "older":
                migrate(engine)
                migrated_from = manifest.schema_revisions
                on_step("database migrated up to this release's schema")
            checked, broken = verify_audit_chain(engine, audit_head_path(data_dir, node))
        finally:
            engine.dispose()
        _check_restored_chain(manifest, checked, broken)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(manifest, data_dir, masked_url(url), migrated_from, checked)


def _restored_revisions(engine) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


def _check_restored_chain(manifest: Manifest, checked: int, broken: int | None) -> None:
    if broken is not None:
        raise StoreError(
            f"the restored audit ledger does not verify: entry {broken} does not fit the chain "
            f"or its head anchor ({checked} entries before it verify); do not serve this node"
        )
    if checked != manifest.audit_entries:
        raise StoreError(
            f"the restored audit ledger holds {checked} entries, but the backup recorded "
            f"{manifest.audit_entries}; do not serve this node"
        )


def _refuse_existing_data(
    data_dir: Path, manifest: Manifest, staging: Path, settings_file: Path, url: str
) -> None:
    """Refuse to overwrite anything the target already holds that differs (without --force)."""
    found = []
    for name in manifest.members:
        target = data_dir / name
        if name.startswith("database/") or not target.exists():
            continue
        source = settings_file if name == f"config/{manifest.node}.toml" else staging / name
        if target.read_bytes() != source.read_bytes():
            found.append(str(target))
    if database_has_data(url):
        found.append(f"the store {masked_url(url)}")
    if found:
        raise CallerError(
            f"{data_dir} already holds data of the {manifest.node} node ({found[0]}"
            f"{f' and {len(found) - 1} more' if len(found) > 1 else ''}); "
            "restore into an empty data directory and database, or give --force to replace it"
        )


def _place_files(
    data_dir: Path, manifest: Manifest, staging: Path, settings_file: Path, settings_name: str
) -> None:
    names = [n for n in manifest.members if not n.startswith("database/")]
    if settings_file.is_file() and settings_name not in names:
        names.append(settings_name)  # written for --database-url
    for name in sorted(names):
        source = settings_file if name == settings_name else staging / name
        target = data_dir / name
        private = name in manifest.private_members or name.startswith("keys/")
        for parent in reversed(target.relative_to(data_dir).parents[:-1]):
            directory = data_dir / parent
            directory.mkdir(exist_ok=True)
            if parent.parts[0] == "keys":
                os.chmod(directory, 0o700)
        _write_atomically(target, source.read_bytes(), 0o600 if private else 0o644)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from the first byte on (a key is never readable by others)."""
    temporary = path.with_name(f".{path.name}.restoring")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)  # past the umask
    os.replace(temporary, path)
