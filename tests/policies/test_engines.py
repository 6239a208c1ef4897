"""``OpaEngine`` fails closed, loads only its own namespace, and keeps its connection open.

A server that is down, slow or answers with anything but the decision object must give a
deny with a reason, never an exception or an allow. Answers no real OPA would give (not
JSON, an error page) come from a small HTTP server here that plays a broken OPA; the rest
run against a real OPA server started for each test where an ``opa`` binary exists.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opa_client import OpaClient

from datatrust.policies._engines import OPA_URL_ENV, Decision, OpaEngine, create_policy_engine
from datatrust.policies._table import decision_table_documents, load_decision_table
from tests.policies._opa_server import NO_OPA_BINARY, OPA, started_opa

POLICY_DIR = Path(__file__).parents[2] / "policies" / "datause"
CASE = load_decision_table()[0]  # an allowed planning request
VERSION = "agreements 2026-11-26, purposes 2026-11-01"


@contextmanager
def broken_opa(status: int, body: bytes, delay: float = 0.0) -> Iterator[tuple[str, set]]:
    """An HTTP server that answers every request with ``status`` and ``body``; yields its
    URL and the set of client ports that connected (one per TCP connection)."""
    ports: set[int] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as OPA

        def do_POST(self) -> None:
            ports.add(self.client_address[1])
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", ports
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        return int(probe.server_address[1])


def test_a_server_that_is_down_denies_every_request() -> None:
    engine = OpaEngine(None, None, f"http://127.0.0.1:{_closed_port()}", timeout=1)
    assert engine.decide(CASE["input"]) == Decision.failure(
        "the OPA server gave no answer (ConnectionError)"
    )


def test_a_server_down_when_loading_leaves_an_engine_that_denies() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    engine = OpaEngine(POLICY_DIR, {"policy_version": "v7"}, url, timeout=1)
    assert (engine.compiled, engine.decide(CASE["input"])) == (
        False,
        Decision.failure(
            "the data-use policy could not be loaded into OPA (ConnectionError)", "v7"
        ),
    )


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b"<html>proxy login</html>", "the OPA server gave no answer (JSONDecodeError)"),
        (200, b"{}", "the data-use policy gave no decision"),
        (200, b"[1, 2]", "the data-use policy gave no decision"),
        (200, b'{"result": true}', "the data-use policy could not be evaluated (ValueError)"),
        (
            200,
            json.dumps({"result": {**CASE["expected"], "allow": "yes"}}).encode(),
            "the data-use policy could not be evaluated (ValueError)",
        ),
        (500, b'{"code": "internal_error"}', "the OPA server gave no answer (HTTPError)"),
        (403, b'{"code": "unauthorized"}', "the OPA server gave no answer (HTTPError)"),
    ],
    ids=[
        "not json",
        "undefined",
        "an array",
        "a bare true",
        "allow not a boolean",
        "a server error",
        "refused",
    ],
)
def test_an_answer_that_is_not_a_decision_is_a_deny(status: int, body: bytes, reason: str) -> None:
    with broken_opa(status, body) as (url, _):
        assert OpaEngine(None, None, url).decide(CASE["input"]) == Decision.failure(reason)


def test_a_server_slower_than_the_timeout_is_a_deny() -> None:
    answer = json.dumps({"result": CASE["expected"]}).encode()
    with broken_opa(200, answer, delay=1.0) as (url, _):
        decision = OpaEngine(None, None, url, timeout=0.2).decide(CASE["input"])
    assert decision == Decision.failure("the OPA server gave no answer (ReadTimeout)")


def test_an_input_that_is_not_json_is_a_deny_without_asking() -> None:
    with broken_opa(200, b"{}") as (url, ports):
        decision = OpaEngine(None, None, url).decide({"purpose": {1, 2}})
    assert (decision.allow, decision.reasons, ports) == (
        False,
        ("the OPA server gave no answer (TypeError)",),
        set(),
    )


def test_decisions_reuse_one_pooled_connection() -> None:
    answer = json.dumps({"result": CASE["expected"]}).encode()
    with broken_opa(200, answer) as (url, ports):
        engine = OpaEngine(None, None, url)
        decisions = [engine.decide(CASE["input"]).as_dict() for _ in range(20)]
        engine.close()
    assert (decisions == [CASE["expected"]] * 20, len(ports)) == (True, 1)


def test_the_url_comes_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(OPA_URL_ENV, raising=False)
    with pytest.raises(ValueError, match=f"give its URL or set {OPA_URL_ENV}"):
        OpaEngine(None, None)
    with pytest.raises(ValueError, match="not of the form http"):
        create_policy_engine("opa", POLICY_DIR, {}, "opa.internal:8181")
    monkeypatch.setenv(OPA_URL_ENV, "http://127.0.0.1:8181/v1/data")
    with pytest.raises(ValueError, match=f"from {OPA_URL_ENV}"):
        OpaEngine(None, None)
    monkeypatch.setenv(OPA_URL_ENV, "http://127.0.0.1:8181")
    assert OpaEngine(None, None).url == "http://127.0.0.1:8181"


# -- against a real OPA server -----------------------------------------------------------


@pytest.fixture
def opa_url(tmp_path: Path) -> Iterator[str]:
    """A fresh server per test: policies of one test must not meet those of another."""
    if OPA is None:
        pytest.skip(NO_OPA_BINARY)
    with started_opa(tmp_path / "opa.log") as url:
        yield url


def _policy(directory: Path, **modules: str) -> Path:
    directory.mkdir()
    for name, source in modules.items():
        (directory / f"{name}.rego").write_text(source, encoding="utf-8")
    return directory


def test_the_engine_loads_the_policy_and_decides_like_the_table(opa_url: str) -> None:
    engine = OpaEngine(POLICY_DIR, decision_table_documents(), opa_url, namespace="real")
    assert (engine.compiled, engine.decide(CASE["input"]).as_dict()) == (True, CASE["expected"])


def test_a_policy_opa_refuses_leaves_an_engine_that_denies(opa_url: str, tmp_path: Path) -> None:
    bad = _policy(tmp_path / "bad", decision="package datause.decision\n\ndecision := \n")
    engine = OpaEngine(bad, {"policy_version": "v9"}, opa_url, namespace="odd")
    assert (engine.compiled, engine.decide(CASE["input"])) == (
        False,
        Decision.failure("the data-use policy could not be loaded into OPA (RegoParseError)", "v9"),
    )


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (
            'decision := {"allow": true} if input.never',
            "the data-use policy gave no decision",
        ),
        ('decision := "allow"', "the data-use policy could not be evaluated (ValueError)"),
        ('decision := {"allow": true}', "the data-use policy could not be evaluated (ValueError)"),
    ],
    ids=["undefined", "a string", "an object missing keys"],
)
def test_a_decision_opa_gives_that_is_not_the_decision_object_is_a_deny(
    opa_url: str, tmp_path: Path, rule: str, reason: str
) -> None:
    odd = _policy(tmp_path / "odd", decision=f"package datause.decision\n\n{rule}\n")
    engine = OpaEngine(odd, {"policy_version": "v2"}, opa_url, namespace="odd")
    assert (engine.compiled, engine.decide(CASE["input"])) == (True, Decision.failure(reason, "v2"))


def test_loading_replaces_only_the_engines_own_namespace(opa_url: str, tmp_path: Path) -> None:
    client = OpaClient(host="127.0.0.1", port=int(opa_url.rsplit(":", 1)[1]))
    client.update_policy_from_string("package elsewhere\n\nx := 1\n", "other/x.rego", False)
    extra = "package datause.extra\n\ny := 2\n"
    source = (POLICY_DIR / "decision.rego").read_text(encoding="utf-8")
    first = _policy(tmp_path / "first", decision=source, extra=extra)
    second = _policy(tmp_path / "second", decision=source)
    OpaEngine(first, VERSION_DOCS, opa_url, namespace="mine")
    assert {"mine/decision.rego", "mine/extra.rego"} <= set(client.get_policies_list())
    engine = OpaEngine(second, VERSION_DOCS, opa_url, namespace="mine")
    names = set(client.get_policies_list())
    client.close_connection()
    assert ("mine/extra.rego" in names, "mine/decision.rego" in names) == (False, True)
    assert "other/x.rego" in names
    assert engine.decide({}).reasons[0].startswith("input: ")


def test_another_policy_of_the_same_package_under_another_namespace_denies(
    opa_url: str, tmp_path: Path
) -> None:
    """Namespaces separate policy ids, not packages: one server serves one data-use policy.
    A different one loaded beside it makes the rules conflict, and that fails closed."""
    first = OpaEngine(POLICY_DIR, decision_table_documents(), opa_url, namespace="node-a")
    other = _policy(tmp_path / "other", decision=ALLOW_ALL)
    OpaEngine(other, None, opa_url, namespace="node-b")
    decision = first.decide(CASE["input"])
    assert decision == Decision.failure("the OPA server gave no answer (HTTPError)", VERSION)


ALLOW_ALL = """package datause.decision

decision := {"allow": true, "reasons": ["all"], "agreement": null, "policy_version": "x",
    "obligations": {"aggregate_only": false, "min_cell": 0, "round_to": 0, "mask": [],
    "pseudonymise": [], "row_filters": []}}
"""
VERSION_DOCS = {"policy_version": VERSION, "purposes": [], "agreements": {}}
