"""``datatrust backup`` / ``restore``: a node restored elsewhere serves on, its chain unbroken.

A prepared social-care node (demo sources ingested through the real ingest path) answers
audited requests, is backed up with the CLI, and is restored into a fresh data directory;
the restored node then answers more requests, and its audit ledger continues from the
backed-up head: the next entry's seq follows it and its prev hash is the head's hash.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from datatrust import _prepare
from datatrust._backup import back_up_node, restore_node
from datatrust._backup_format import relocate_settings, schema_status, with_database_url
from datatrust._network_cli import init_local_trust
from datatrust.demo import coventry_lsoas
from datatrust.errors import CallerError, StoreError
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import (
    AuditEvent,
    alembic_config,
    check_ready,
    create_store_engine,
)
from datatrust.trust import (
    AuditEntry,
    append_audit_entry,
    audit_head_path,
    read_audit_head,
    verify_audit_chain,
)
from tests.asgi_client import app_client
from tests.conftest import POSTGRES_ADMIN, _unavailable
from tests.trust_identity import trust_identity

NODE = "social-care"
QUERY = (
    "query($r: [_Any!]!) { _entities(representations: $r) "
    "{ ... on Area { code openCareEpisodes } } }"
)
KEYS = ("keys/pseudonym.key", "keys/disclosure.key", "keys/overlap.key")


def datatrust(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datatrust", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )


def write_settings(data_dir: Path, identity, database_url: str | None = None) -> Path:
    """The node's settings as ``up`` writes them (TLS files in the data dir), plus issuers."""
    tls = data_dir / "tls"
    lines = [
        f'node_id = "{NODE}"',
        'agency = "ASC"',
        f'data_dir = "{data_dir.as_posix()}"',
        f'tls_cert = "{(tls / f"{NODE}.pem").as_posix()}"',
        f'tls_key = "{(tls / f"{NODE}.key").as_posix()}"',
        f'tls_ca = "{(tls / "ca.pem").as_posix()}"',
    ]
    if database_url:
        lines.append(f'database_url = "{database_url}"')
    issuer = identity.issuers[0]
    lines += [
        "[[issuers]]",
        f'issuer = "{issuer.issuer}"',
        f'jwks_url = "{issuer.jwks_url}"',
        f"agencies = {json.dumps(issuer.agencies)}",
    ]
    config = data_dir / "config" / f"{NODE}.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def ask(data_dir: Path, identity, times: int) -> NodeSettings:
    """Run the node from its settings file and make ``times`` audited requests."""
    settings = load_settings(
        NodeSettings, toml_path=data_dir / "config" / f"{NODE}.toml", environ={}
    )
    codes = [lsoa.code for lsoa in coventry_lsoas()][:5]
    variables = {"r": [{"__typename": "Area", "code": code} for code in codes]}
    with app_client(create_node_app(settings)) as client:
        for _ in range(times):
            response = client.post(
                "/graphql",
                json={"query": QUERY, "variables": variables},
                headers=identity.headers("service-planning"),
            )
            assert response.status_code == 200, response.text
            assert "errors" not in response.json(), response.text
    return settings


def ledger(url: str) -> list[tuple[int, str, str]]:
    engine = create_store_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.entry_hash).order_by(
                    AuditEvent.seq
                )
            ).all()
        return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def prepare(data_dir: Path, database_url: str, demo_from: Path | None = None) -> None:
    if demo_from is not None:
        shutil.copytree(demo_from / "demo", data_dir / "demo")
    sources = _prepare.write_demo_files(data_dir)
    _prepare.prepare_demo_node(data_dir, NODE, database_url, sources[NODE])


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as identity:
        yield identity


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory, identity):
    """A prepared trust whose social-care node answered 3 requests, and its backup."""
    data_dir = tmp_path_factory.mktemp("source")
    init_local_trust(data_dir)
    prepare(data_dir, f"sqlite:///{data_dir / f'{NODE}.db'}")
    write_settings(data_dir, identity)
    ask(data_dir, identity, 3)
    archive = data_dir.parent / "social-care-backup.tar.gz"
    result = datatrust("backup", "--node", NODE, "--data-dir", str(data_dir), "--to", str(archive))
    assert result.returncode == 0, result.stderr
    assert f"Backed up the {NODE} node to {archive}" in result.stdout
    return data_dir, archive


def manifest_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return json.loads(tar.extractfile("manifest.json").read())


def rewritten(archive: Path, target: Path, change) -> Path:
    """A copy of ``archive`` with ``change(name, data)`` applied to every member's bytes."""
    with tarfile.open(archive) as source, tarfile.open(target, "w:gz") as copy:
        for member in source.getmembers():
            data = change(member.name, source.extractfile(member).read())
            member.size = len(data)
            copy.addfile(member, io.BytesIO(data))
    return target


def test_a_restored_node_serves_and_its_audit_chain_continues_from_the_backed_up_head(
    backed_up, identity, tmp_path
):
    source, archive = backed_up
    manifest = manifest_of(archive)
    head_seq, head_hash = manifest["audit"]["seq"], manifest["audit"]["head_hash"]
    assert (manifest["node"], manifest["database"], manifest["audit"]["entries"]) == (
        NODE,
        "sqlite",
        3,
    )
    assert (head_seq, head_hash) == ledger(f"sqlite:///{source / f'{NODE}.db'}")[-1][::2]
    assert sorted(manifest["members"]) == sorted(
        [
            "audit/social-care.head.json",
            "config/social-care.toml",
            "database/social-care.db",
            *KEYS,
            "tls/ca.pem",
            "tls/social-care.key",
            "tls/social-care.pem",
        ]
    )
    fresh = tmp_path / "fresh"
    result = datatrust("restore", str(archive), "--data-dir", str(fresh), "--node", NODE)
    assert result.returncode == 0, result.stderr
    assert "Audit chain verified: 3 entries" in result.stdout
    for name in (*KEYS, "tls/social-care.key"):
        assert (fresh / name).read_bytes() == (source / name).read_bytes()
        assert (fresh / name).stat().st_mode & 0o777 == 0o600, name
    config = (fresh / "config" / f"{NODE}.toml").read_text()
    assert str(source) not in config
    assert f'tls_key = "{fresh}/tls/{NODE}.key"' in config

    settings = ask(fresh, identity, 2)
    url = settings.effective_database_url
    assert url == f"sqlite:///{fresh / f'{NODE}.db'}"
    entries = ledger(url)
    assert [seq for seq, _, _ in entries] == [1, 2, 3, 4, 5]
    assert entries[3][:2] == (head_seq + 1, head_hash)  # the chain links to the backed-up head
    engine = create_store_engine(url)
    try:
        assert verify_audit_chain(engine, audit_head_path(fresh, NODE)) == (5, None)
    finally:
        engine.dispose()
    assert read_audit_head(audit_head_path(fresh, NODE)) == (5, entries[4][2])


def test_a_tampered_archive_member_is_refused_by_name_and_nothing_is_restored(backed_up, tmp_path):
    _, archive = backed_up
    tampered = rewritten(
        archive,
        tmp_path / "tampered.tar.gz",
        lambda name, data: b"0" * 64 if name == "keys/pseudonym.key" else data,
    )
    fresh = tmp_path / "fresh"
    with pytest.raises(
        CallerError,
        match=r"archive member keys/pseudonym\.key does not match its sha256 in the manifest",
    ):
        restore_node(tampered, fresh, on_step=lambda words: None)
    assert sorted(p.name for p in fresh.iterdir()) == []


def test_restoring_over_a_node_with_data_is_refused_without_force(backed_up, tmp_path):
    _, archive = backed_up
    fresh = tmp_path / "fresh"
    restore_node(archive, fresh, on_step=lambda words: None)
    (fresh / "keys" / "pseudonym.key").write_text("ab" * 32)  # the node moved on
    refused = datatrust("restore", str(archive), "--data-dir", str(fresh))
    assert refused.returncode == 2
    assert f"{fresh} already holds data of the social-care node" in " ".join(refused.stderr.split())
    assert (fresh / "keys" / "pseudonym.key").read_text() == "ab" * 32
    restore_node(archive, fresh, force=True, on_step=lambda words: None)
    assert (fresh / "keys" / "pseudonym.key").read_bytes() == (
        backed_up[0] / "keys" / "pseudonym.key"
    ).read_bytes()


def test_a_backup_of_another_node_or_a_newer_schema_is_refused(backed_up, tmp_path):
    _, archive = backed_up

    def future(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        return json.dumps(json.loads(data) | {"schema_revision": ["9999"]}).encode()

    newer = rewritten(archive, tmp_path / "newer.tar.gz", future)
    with pytest.raises(
        CallerError,
        match="the backup's schema revision 9999 is newer than this release of datatrust knows",
    ):
        restore_node(newer, tmp_path / "a", on_step=lambda words: None)
    assert list((tmp_path / "a").iterdir()) == []
    with pytest.raises(CallerError, match="is a backup of the social-care node, not council"):
        restore_node(archive, tmp_path / "b", node="council", on_step=lambda words: None)


def test_a_backup_from_an_older_schema_is_migrated_up_after_restore(tmp_path):
    from alembic import command

    source = tmp_path / "source"
    url = f"sqlite:///{source / f'{NODE}.db'}"
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0010")
    finally:
        engine.dispose()
    archive = tmp_path / "old.tar.gz"
    backup = back_up_node(source, NODE, archive, on_step=lambda words: None)
    assert backup.manifest.schema_revisions == ("0010",)
    result = restore_node(archive, tmp_path / "fresh", on_step=lambda words: None)
    assert result.migrated_from == ("0010",)
    restored = create_store_engine(f"sqlite:///{tmp_path / 'fresh' / f'{NODE}.db'}")
    try:
        check_ready(restored)  # raises unless at this release's head
    finally:
        restored.dispose()


def test_a_backup_taken_while_the_node_appends_has_a_head_that_ends_its_chain(tmp_path):
    """Appends go on during the backup; the archive's head is its chain's last entry."""
    data_dir = tmp_path / "source"
    url = f"sqlite:///{data_dir / f'{NODE}.db'}"
    engine = create_store_engine(url)
    head = audit_head_path(data_dir, NODE)
    from datatrust.store import migrate

    migrate(engine)
    stop = threading.Event()
    entry = AuditEntry(
        node_id=NODE, requester="analyst", purpose="service-planning", operation="query",
        fields=("Area.openCareEpisodes",), outcome="permit", code="OK", reason="test",
        policy_version="v1",
    )  # fmt: skip

    def append_until_stopped() -> None:
        while not stop.is_set():
            append_audit_entry(engine, entry, head)

    appender = threading.Thread(target=append_until_stopped)
    appender.start()
    try:
        deadline = time.monotonic() + 30
        while (read_audit_head(head) or (0, ""))[0] < 20:
            assert appender.is_alive(), "the appender stopped"
            assert time.monotonic() < deadline, "20 entries not appended in 30 s"
            time.sleep(0.01)
        archives = [tmp_path / f"during-{n}.tar.gz" for n in range(3)]
        for archive in archives:
            back_up_node(data_dir, NODE, archive, on_step=lambda words: None)
    finally:
        stop.set()
        appender.join()
        engine.dispose()
    for archive in archives:
        fresh = tmp_path / f"fresh-{archive.name}"
        result = restore_node(archive, fresh, on_step=lambda words: None)
        entries = ledger(f"sqlite:///{fresh / f'{NODE}.db'}")
        manifest = result.manifest
        assert (manifest.audit_head.seq, manifest.audit_head.entry_hash) == entries[-1][::2]
        assert result.entries_verified == len(entries) == manifest.audit_entries


@pytest.fixture
def postgres_databases():
    """Two fresh PostgreSQL databases (the node's, and the one restored into), dropped after."""
    psycopg = pytest.importorskip("psycopg")
    names = [f"datatrust_test_{secrets.token_hex(6)}" for _ in range(2)]
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        _unavailable(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {error}")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        _unavailable("pg_dump and pg_restore are not on PATH")
    with admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield [f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}" for name in names]
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_a_postgresql_node_is_restored_into_a_fresh_database_and_its_chain_continues(
    backed_up, identity, postgres_databases, tmp_path
):
    original, fresh_database = postgres_databases
    source = tmp_path / "source"
    shutil.copytree(backed_up[0] / "keys", source / "keys")
    shutil.copytree(backed_up[0] / "tls", source / "tls")
    prepare(source, original, demo_from=backed_up[0])
    write_settings(source, identity, original)
    ask(source, identity, 2)
    archive = tmp_path / "pg.tar.gz"
    backup = datatrust("backup", "--node", NODE, "--data-dir", str(source), "--to", str(archive))
    assert backup.returncode == 0, backup.stderr
    manifest = manifest_of(archive)
    assert (manifest["database"], manifest["audit"]["seq"]) == ("postgresql", 2)
    assert "database/social-care.pgdump" in manifest["members"]

    fresh = tmp_path / "fresh"
    restore = datatrust(
        "restore", str(archive), "--data-dir", str(fresh), "--database-url", fresh_database
    )
    assert restore.returncode == 0, restore.stderr
    assert "Audit chain verified: 2 entries" in restore.stdout
    with pytest.raises(
        CallerError, match=r"already holds data of the social-care node \(the store"
    ):
        restore_node(
            archive, tmp_path / "other", database_url=fresh_database, on_step=lambda words: None
        )

    settings = ask(fresh, identity, 1)
    assert settings.database_url == fresh_database
    entries = ledger(fresh_database)
    assert [seq for seq, _, _ in entries] == [1, 2, 3]
    assert entries[2][1] == manifest["audit"]["head_hash"]
    engine = create_store_engine(fresh_database)
    try:
        assert verify_audit_chain(engine, audit_head_path(fresh, NODE)) == (3, None)
    finally:
        engine.dispose()
    assert ledger(original)[-1][0] == 2  # the original database was left alone


def test_settings_paths_move_to_the_new_data_dir_and_nothing_else_changes():
    text = (
        'data_dir = "/srv/old"\ntls_key = "/srv/old/tls/health.key"\n'
        'database_url = "sqlite:////srv/old/health.db"\nopa_url = "http://srv/old"\n'
        'directory = "/srv/older/directory.jws"\n'
    )
    assert relocate_settings(text, "/srv/old", "/data/new") == (
        'data_dir = "/data/new"\ntls_key = "/data/new/tls/health.key"\n'
        'database_url = "sqlite:////data/new/health.db"\nopa_url = "http://srv/old"\n'
        'directory = "/srv/older/directory.jws"\n'
    )
    assert with_database_url(text, "postgresql://db/h").splitlines()[2] == (
        'database_url = "postgresql://db/h"'
    )
    assert with_database_url('node_id = "health"\n', "postgresql://db/h") == (
        'database_url = "postgresql://db/h"\nnode_id = "health"\n'
    )


def test_a_schema_is_current_older_or_newer_than_this_release():
    def known(revision: str) -> bool:
        return revision in {"0001", "0002"}

    assert schema_status(["0002"], ["0002"], known) == "current"
    assert schema_status(["0001"], ["0002"], known) == "older"
    assert schema_status([], ["0002"], known) == "older"
    assert schema_status(["0003"], ["0002"], known) == "newer"


def test_a_ledger_cut_short_before_its_anchor_is_refused_not_backed_up(tmp_path):
    data_dir = tmp_path / "source"
    engine = create_store_engine(f"sqlite:///{data_dir / f'{NODE}.db'}")
    from datatrust.store import migrate

    migrate(engine)
    entry = AuditEntry(
        node_id=NODE, requester="analyst", purpose="service-planning", operation="query",
        fields=(), outcome="permit", code="OK", reason="test", policy_version="v1",
    )  # fmt: skip
    try:
        for _ in range(3):
            append_audit_entry(engine, entry, audit_head_path(data_dir, NODE))
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM audit_event WHERE seq = 3")
    finally:
        engine.dispose()
    archive = tmp_path / "cut.tar.gz"
    with pytest.raises(StoreError, match="names entry 3, but the ledger ends at 2"):
        back_up_node(data_dir, NODE, archive, on_step=lambda words: None)
    assert not archive.exists()
