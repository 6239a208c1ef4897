"""PostgreSQL restarted under a running node: not ready, clean refusals, then recovery.

The node keeps running throughout (the same process id); nobody restarts it. While its
database is down ``/readyz`` says so, naming the database, and a GraphQL request gets a
coded error at once (no 500 traceback, no hang); once the database is back the node
answers again by itself, and the ledger holds every entry it held before plus the new one.
"""

from __future__ import annotations

import time

from datatrust.store import create_store_engine
from datatrust.trust import audit_head_path, verify_audit_chain
from tests.faults._node import wait_until
from tests.faults.conftest import NODE_DATABASE, NODE_ROLE, audit_count, audit_outcomes


def test_a_node_answers_not_ready_then_recovers_by_itself_when_postgres_restarts(
    pg_node, private_postgres, identity
):
    headers = identity.headers("service-planning")
    answered = pg_node.ask(headers)
    assert answered.status_code == 200, answered.text
    pid = pg_node.process.pid
    before = audit_outcomes(private_postgres)
    assert before[-1] == ("permit", "OK")

    private_postgres.stop()
    try:
        ready = pg_node.readyz()
        assert ready.status_code == 503, ready.text
        reason = ready.json()["reason"]
        assert f"127.0.0.1:{private_postgres.port}/{NODE_DATABASE}" in reason, reason
        assert "unreachable" in reason, reason

        started = time.monotonic()
        refused = pg_node.ask(headers)
        assert time.monotonic() - started < 15  # refused, not left to hang
        assert refused.status_code == 503, refused.text
        body = refused.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE"
        assert "Traceback" not in refused.text
        assert pg_node.process.poll() is None
    finally:
        private_postgres.start()

    wait_until(lambda: pg_node.readyz().status_code == 200, 30, "the node to be ready again")
    recovered = pg_node.ask(headers)
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["data"] == answered.json()["data"]
    assert pg_node.process.pid == pid  # the same process recovered: nobody restarted it
    assert pg_node.process.poll() is None

    after = audit_outcomes(private_postgres)
    assert after[: len(before)] == before  # nothing the ledger held was lost
    assert after[len(before) :] == [("permit", "OK")]
    assert audit_count(private_postgres) == len(before) + 1
    engine = create_store_engine(private_postgres.url(NODE_ROLE, NODE_DATABASE))
    try:
        head = audit_head_path(pg_node.data_dir.resolve(), "council")
        assert verify_audit_chain(engine, head) == (len(after), None)
    finally:
        engine.dispose()
