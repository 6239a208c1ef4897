"""Fixtures of the fault tests: a private PostgreSQL, a real identity server, a node on it.

Each fault breaks something a node stands on (its database, its audit store, its policy
server, its identity server, its broker, its ingest process) and checks the stated
outcome and that no audit entry or accepted record was lost. The private cluster and the
node on it are shared by the PostgreSQL and audit-store tests: starting them once keeps
the folder's wall time low; each is package-scoped, so it stops when the folder's
last test is done, not at the end of the whole run. The trust run part by part that the
identity and OPA tests break (``trust_parts``) is in tests/conftest.py, shared with
tests/federation/test_node_outage.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _unavailable
from tests.faults._node import NodeProcess
from tests.faults._postgres import PrivatePostgres, postgres_binaries_missing
from tests.trust_identity import TrustIdentity, trust_identity

NODE_ROLE = "datatrust_node"
NODE_DATABASE = "council"


@pytest.fixture(scope="package")
def private_postgres() -> Iterator[PrivatePostgres]:
    reason = postgres_binaries_missing()
    if reason is not None:
        _unavailable(reason)
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="package")
def identity(tmp_path_factory) -> Iterator[TrustIdentity]:
    with trust_identity(tmp_path_factory.mktemp("faults-identity")) as running:
        yield running


def admin(cluster: PrivatePostgres, database: str = "postgres"):
    """An autocommit superuser connection to the private cluster."""
    import psycopg

    dsn = cluster.admin_dsn.rsplit("/", 1)[0] + f"/{database}"
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def audit_count(cluster: PrivatePostgres) -> int:
    with admin(cluster, NODE_DATABASE) as db:
        return db.execute("SELECT count(*) FROM audit_event").fetchone()[0]


def audit_outcomes(cluster: PrivatePostgres) -> list[tuple[str, str]]:
    with admin(cluster, NODE_DATABASE) as db:
        return [tuple(r) for r in db.execute("SELECT outcome, code FROM audit_event ORDER BY seq")]


@pytest.fixture(scope="package")
def pg_node(
    private_postgres: PrivatePostgres, identity: TrustIdentity, tmp_path_factory
) -> Iterator[NodeProcess]:
    """The council node on the private cluster, as its own role (not a superuser)."""
    pytest.importorskip("psycopg")
    with admin(private_postgres) as db:
        db.execute(f"CREATE ROLE {NODE_ROLE} LOGIN")
        db.execute(f"CREATE DATABASE {NODE_DATABASE} OWNER {NODE_ROLE}")
    node = NodeProcess(
        Path(tmp_path_factory.mktemp("faults-pg-node")),
        identity.live.url,
        database_url=private_postgres.url(NODE_ROLE, NODE_DATABASE),
    )
    node.start()
    try:
        yield node
    finally:
        node.stop()
