"""One trace from the gateway through every node: spans, audit entries, log lines.

A real trust in one process (tests/_observed.py) answers one query across the three
nodes; the SDK's in-memory exporter holds every span. The gateway's server span, its
client span per node call and each node's server span must form one tree, and the trace
id must be the one in the gateway's and every node's audit entry and log lines.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from opentelemetry.trace import SpanKind
from sqlalchemy import update

from datatrust.store import AuditEvent, alembic_config, create_store_engine, migrate
from datatrust.trust import AuditEntry, append_audit_entry, verify_audit_chain
from tests._observed import AREAS, NODES, ObservedTrust, observed_trust

TRACE_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def trust(tmp_path_factory) -> ObservedTrust:
    with observed_trust(tmp_path_factory.mktemp("traced")) as trust:
        yield trust


def spans_of(trust: ObservedTrust, trace_id: str) -> list:
    return [s for s in trust.spans.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]


def entries_for(trust: ObservedTrust, part: str, request_id: str) -> list[dict]:
    return [e for e in trust.ledger(part) if e["request_id"] == request_id]


def test_one_query_has_one_trace_in_the_gateways_and_every_nodes_audit_entries_and_logs(trust):
    response = trust.ask(AREAS, trust.identity.headers("service-planning"))
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["areas"]) == 3, response.text
    request_id = response.headers["x-request-id"]

    (gateway_entry,) = entries_for(trust, "gateway", request_id)
    trace_id = gateway_entry["trace_id"]
    assert TRACE_ID.fullmatch(trace_id), gateway_entry
    for node in NODES:
        node_entries = entries_for(trust, node, request_id)
        assert node_entries, f"{node} wrote no audit entry for the request"
        assert {(e["trace_id"], e["entry_version"], e["outcome"]) for e in node_entries} == {
            (trace_id, 3, "permit")
        }

    lines = [line for line in trust.log_lines() if line.get("trace_id") == trace_id]
    components = {line["component"] for line in lines if line["logger"] == "datatrust.http"}
    assert components == {"gateway", *(f"node:{node}" for node in NODES)}
    assert {line["request_id"] for line in lines} == {request_id}


def test_each_nodes_server_span_is_a_child_of_the_gateways_client_span_for_it(trust):
    response = trust.ask(AREAS, trust.identity.headers("service-planning"))
    assert response.status_code == 200, response.text
    (entry,) = entries_for(trust, "gateway", response.headers["x-request-id"])
    spans = spans_of(trust, entry["trace_id"])

    (root,) = [s for s in spans if s.parent is None]
    assert (root.kind, root.name, root.attributes["datatrust.component"]) == (
        SpanKind.SERVER,
        "POST /graphql",
        "gateway",
    )
    assert root.attributes["http.response.status_code"] == 200
    calls = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert {s.attributes["datatrust.node"] for s in calls} == set(NODES)
    assert {s.parent.span_id for s in calls} == {root.context.span_id}
    for call in calls:
        (served,) = [s for s in spans if s.parent and s.parent.span_id == call.context.span_id]
        node = call.attributes["datatrust.node"]
        assert (served.kind, served.attributes["datatrust.component"]) == (
            SpanKind.SERVER,
            f"node:{node}",
        )
        assert served.parent.is_remote  # continued from the traceparent the gateway sent


def test_a_callers_traceparent_is_continued_by_the_gateway_and_the_nodes(trust):
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {
        **trust.identity.headers("service-planning"),
        "traceparent": f"00-{caller_trace}-{caller_span}-01",
    }
    response = trust.ask(AREAS, headers)
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    traced = {
        e["trace_id"] for part in ("gateway", *NODES) for e in entries_for(trust, part, request_id)
    }
    assert traced == {caller_trace}
    (root,) = [
        s
        for s in spans_of(trust, caller_trace)
        if s.attributes.get("datatrust.component") == "gateway"
    ]
    assert f"{root.parent.span_id:016x}" == caller_span


def test_a_refusal_at_the_gateway_is_audited_with_its_trace_id(trust):
    response = trust.ask(AREAS, {"Purpose": "service-planning"})  # no token
    assert response.status_code == 401, response.text
    (entry,) = entries_for(trust, "gateway", response.headers["x-request-id"])
    assert (entry["outcome"], entry["code"]) == ("deny", "UNAUTHENTICATED")
    (root,) = spans_of(trust, entry["trace_id"])
    assert root.attributes["http.response.status_code"] == 401


# -- the ledger: version 3 adds trace_id, older entries verify as they did ------------------

_VERSION_2_FIELDS = (
    "node_id", "requester", "purpose", "operation", "fields", "outcome", "code", "reason",
    "policy_version", "agency", "roles", "client_id", "subject", "aggregate", "agreement",
    "reasons", "row_count", "subject_count", "subjects", "request_id", "opt_out_list_date",
)  # fmt: skip


def _version_2_hash(prev_hash: str, recorded_at: datetime, values: dict) -> str:
    """The entry hash as version 2 wrote it: written out here, not imported."""
    content = {name: values[name] for name in _VERSION_2_FIELDS}
    content["recorded_at"] = recorded_at.isoformat()
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def test_entries_written_before_migration_0011_verify_and_new_ones_cover_the_trace_id(
    tmp_path: Path,
):
    engine = create_store_engine(f"sqlite:///{tmp_path / 'node.db'}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
    recorded_at = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    values = {
        "node_id": "health", "requester": "city/ana via analyst-cli", "purpose": "research",
        "operation": "Cohort", "fields": ["Person.birthYear"], "outcome": "permit", "code": "OK",
        "reason": "permitted", "policy_version": "v1", "agency": "city", "roles": ["analyst"],
        "client_id": "analyst-cli", "subject": "ana", "aggregate": False,
        "agreement": "dsa-research", "reasons": ["permitted"], "row_count": 1,
        "subject_count": 1, "subjects": ["p-" + "a" * 32], "request_id": "req-v2",
        "opt_out_list_date": "2026-10-31",
    }  # fmt: skip
    entry_hash = _version_2_hash("0" * 64, recorded_at, values)
    row = {
        **{k: json.dumps(v) if isinstance(v, list) else v for k, v in values.items()},
        "recorded_at": recorded_at,
        "entry_version": 2,
        "prev_hash": "0" * 64,
        "entry_hash": entry_hash,
    }
    audit_event_at_0010 = sa.table("audit_event", *(sa.column(name) for name in row))
    with engine.begin() as connection:
        connection.execute(sa.insert(audit_event_at_0010).values(row))
    migrate(engine)
    assert verify_audit_chain(engine) == (1, None)

    traced = AuditEntry(
        node_id="health", requester="city/ana via analyst-cli", purpose="research",
        operation="Cohort", fields=("Person.birthYear",), outcome="permit", code="OK",
        reason="permitted", policy_version="v1", trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )  # fmt: skip
    append_audit_entry(engine, traced)
    assert verify_audit_chain(engine) == (2, None)
    with engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(trace_id="0" * 32))
    assert verify_audit_chain(engine) == (1, 2)
    engine.dispose()
