"""bench/load.py's verdicts: the outage window, error kinds and one ledger entry per request.

The bench's targets (no unaudited request, p95 outside the outage) rest on these rules, so
they are checked here on hand-made requests; the bench itself is never run by the tests.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load_stats():
    spec = importlib.util.spec_from_file_location("_loadstats", BENCH / "_loadstats.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_loadstats", module)
    spec.loader.exec_module(module)
    return module


stats = _load_stats()
PLAN = (("council",), ("health", "social-care"))


def outcome(status=200, failed=(), codes=(), failure=None, started=0.0, ended=0.1):
    return stats.Outcome(
        "q", "load-x-1", started, ended, status, failure, frozenset(codes), frozenset(failed)
    )


def verdicts(result, steps, entries):
    tally = stats.AuditTally()
    stats.audit_request(result, steps, entries, tally)
    return {part: dict(counter) for part, counter in tally.verdicts.items()}


@pytest.mark.parametrize(
    ("started", "ended", "meets"),
    [
        pytest.param(0.0, 9.9, False, id="ended before the kill"),
        pytest.param(9.0, 10.5, True, id="in flight at the kill"),
        pytest.param(12.0, 13.0, True, id="inside"),
        pytest.param(19.5, 21.0, True, id="in flight when ready again"),
        pytest.param(20.0, 21.0, False, id="sent once ready again"),
    ],
)
def test_a_request_meets_the_outage_if_in_flight_at_any_moment_of_it(started, ended, meets):
    assert stats.Window(10.0, 20.0).overlaps(started, ended) is meets


def test_the_outage_covers_only_the_part_of_the_run_it_overlaps():
    assert stats.Window(10.0, 20.0).seconds_within(30.0) == 10.0
    assert stats.Window(25.0, float("inf")).seconds_within(30.0) == 5.0


def test_a_partial_answer_is_read_as_its_codes_and_the_nodes_it_names():
    body = {
        "data": {"areas": []},
        "errors": [
            {"message": "x", "extensions": {"code": "NODE_UNAVAILABLE", "node": "health"}},
            {"message": "y", "extensions": {"code": "PEER", "nodes": {"social-care": {}}}},
            {"message": "no extensions"},
        ],
    }
    codes, nodes = stats.read_errors(json.dumps(body).encode())
    assert (codes, nodes) == (
        {"NODE_UNAVAILABLE", "PEER", "NO_CODE"},
        {"health", "social-care"},
    )
    assert stats.read_errors(b"<html>bad gateway</html>") == ({"NOT_GRAPHQL"}, frozenset())


def test_each_request_counts_once_per_kind_of_error():
    partial = outcome(503, failed={"health"}, codes={"NODE_UNAVAILABLE"})
    assert stats.error_kinds(partial) == [
        ("HTTP status", "503"),
        ("GraphQL error code", "NODE_UNAVAILABLE"),
        ("node named in a partial result", "health"),
    ]
    assert stats.error_kinds(outcome(None, failure="client timeout")) == [("client timeout", "-")]
    assert stats.error_kinds(outcome(None, failure="ConnectError")) == [
        ("transport error", "ConnectError")
    ]
    assert stats.error_kinds(outcome()) == []


def test_a_full_answer_needs_one_entry_per_fetch_at_the_gateway_and_every_node():
    entries = {"gateway": 1, "council": 1, "health": 1, "social-care": 1}
    assert verdicts(outcome(), PLAN, entries) == {
        "gateway": {"audited": 1},
        "council": {"audited": 1},
        "health": {"audited": 1},
        "social-care": {"audited": 1},
    }


@pytest.mark.parametrize("missing", ["gateway", "council", "social-care"])
def test_an_answer_missing_an_entry_is_unaudited(missing):
    entries = {"gateway": 1, "council": 1, "health": 1, "social-care": 1} | {missing: 0}
    assert verdicts(outcome(), PLAN, entries)[missing] == {stats.UNAUDITED: 1}


def test_a_node_fetched_twice_needs_two_entries():
    steps = (("council",), ("health",), ("council",))
    entries = {"gateway": 1, "council": 1, "health": 1}
    assert verdicts(outcome(), steps, entries)["council"] == {stats.UNAUDITED: 1}


def test_a_dead_node_has_no_entry_and_what_follows_it_is_skipped():
    people = (("health",), ("social-care",))
    result = outcome(failed={"health"}, codes={"NODE_UNAVAILABLE"})
    assert verdicts(result, people, {"gateway": 1}) == {
        "gateway": {"audited": 1},
        "health": {"not reached": 1},
        "social-care": {"skipped": 1},
    }
    killed_after_its_entry = verdicts(result, people, {"gateway": 1, "health": 1})
    assert killed_after_its_entry["health"] == {"audited, answer lost": 1}


def test_refusals_and_timeouts_deliver_no_data_so_nodes_need_no_entry():
    assert verdicts(outcome(429), PLAN, {"gateway": 1})["health"] == {"no data answered": 1}
    gave_up = verdicts(outcome(None, failure="client timeout"), PLAN, {"council": 1})
    assert gave_up["gateway"] == {"client gave up": 1}
    assert gave_up["council"] == {"no data answered": 1}
