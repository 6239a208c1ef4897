"""The audit store read-only or full: the node refuses, and returns nothing unaudited.

Both with real PostgreSQL mechanisms under a running node: the node's role loses INSERT
on ``audit_event`` (a ledger made read-only), and the ledger's table is moved to a
tablespace on a tiny tmpfs that is then filled (a full disk: PostgreSQL cannot extend the
table's file). Every request is answered with data only if its entry was written; a
request whose entry cannot be written is refused with STORE_UNAVAILABLE and no data.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _unavailable
from tests.faults.conftest import NODE_DATABASE, NODE_ROLE, admin, audit_outcomes

MAX_REQUESTS_TO_FILL = 80
"""Requests allowed before the ledger's last free page is used (about 10 entries a page)."""


def assert_refused_without_data(response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE"
    assert "audit ledger could not be written" in body["errors"][0]["message"]
    assert "no data is returned unaudited" in body["errors"][0]["message"]


def test_a_read_only_ledger_refuses_every_request_and_returns_no_data(
    pg_node, private_postgres, identity
):
    headers = identity.headers("service-planning")
    assert pg_node.ask(headers).status_code == 200
    before = audit_outcomes(private_postgres)
    with admin(private_postgres, NODE_DATABASE) as db:
        db.execute(f"REVOKE INSERT ON audit_event FROM {NODE_ROLE}")
    try:
        for _ in range(3):
            assert_refused_without_data(pg_node.ask(headers))
        assert audit_outcomes(private_postgres) == before
    finally:
        with admin(private_postgres, NODE_DATABASE) as db:
            db.execute(f"GRANT INSERT ON audit_event TO {NODE_ROLE}")
    answered = pg_node.ask(headers)
    assert answered.status_code == 200, answered.text
    assert audit_outcomes(private_postgres) == [*before, ("permit", "OK")]


@pytest.fixture
def tiny_disk(private_postgres):
    """A 1 MiB tmpfs owned by the cluster's account, unmounted afterwards (root only)."""
    mount_point = private_postgres.root / "audit-disk"
    mount_point.mkdir()
    owner = private_postgres.root.stat()
    result = subprocess.run(
        [
            *("mount", "-t", "tmpfs", "-o"),
            f"size=1m,mode=0700,uid={owner.st_uid},gid={owner.st_gid}",
            *("datatrust-audit-disk", str(mount_point)),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        _unavailable(f"cannot mount a tmpfs for a full disk (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(mount_point: Path) -> Path:
    """Write zeros into the disk until it has no room left; return the filler file."""
    filler = mount_point / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    return filler


def test_a_full_ledger_disk_refuses_requests_and_returns_nothing_unaudited(
    pg_node, private_postgres, identity, tiny_disk
):
    headers = identity.headers("service-planning")
    with admin(private_postgres, NODE_DATABASE) as db:
        db.execute(f"CREATE TABLESPACE audit_disk LOCATION '{tiny_disk}'")
        db.execute("ALTER TABLE audit_event SET TABLESPACE audit_disk")
    filler = None
    try:
        before = audit_outcomes(private_postgres)
        filler = fill(tiny_disk)
        answered = 0
        for _ in range(MAX_REQUESTS_TO_FILL):
            response = pg_node.ask(headers)
            if response.status_code != 200:
                break
            answered += 1
        assert_refused_without_data(response)
        for _ in range(2):  # and it stays refused while the disk is full
            assert_refused_without_data(pg_node.ask(headers))
        assert "No space left on device" in pg_node.log_text()
        # Exactly the answered requests are in the ledger: none returned data unaudited.
        assert audit_outcomes(private_postgres) == [*before, *[("permit", "OK")] * answered]

        os.remove(filler)
        filler = None
        recovered = pg_node.ask(headers)
        assert recovered.status_code == 200, recovered.text
        expected = [*before, *[("permit", "OK")] * (answered + 1)]
        assert audit_outcomes(private_postgres) == expected
    finally:
        if filler is not None:
            os.remove(filler)
        with admin(private_postgres, NODE_DATABASE) as db:
            db.execute("ALTER TABLE audit_event SET TABLESPACE pg_default")
            db.execute("DROP TABLESPACE audit_disk")
