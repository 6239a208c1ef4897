"""A node's OPA sidecar down: that node fails closed, the other nodes keep serving.

The health node is restarted in OPA mode (``policy_engine = "opa"``) with its OPA server
absent: first a port where nothing listens, then a server that accepts each connection
and drops it at once. Either way the node denies every data request with a coded reason
and audits it as a deny, while the gateway answers the same query with the council's and
social care's fields and an error naming health for health's. Back on its embedded
engine, the node answers in full again.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from datatrust._ports import free_port
from tests._trust import tool_tls
from tests.federation.test_node_outage import answered_in_full, ask, health_errors


def ledger(parts, part: str) -> list[tuple[str, str, str]]:
    """(outcome, code, reason) of each entry of ``part``'s ledger (a node's, the gateway's)."""
    with sqlite3.connect(parts.data_dir / f"{part}.db") as db:
        query = "SELECT outcome, code, reason FROM audit_event ORDER BY seq"
        return [tuple(r) for r in db.execute(query)]


@contextmanager
def dropping_server() -> Iterator[str]:
    """A TCP server that accepts every connection and closes it without a word."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopping.set()
        thread.join(5)
        listener.close()


def restart_health(parts, opa_url: str | None) -> None:
    _, config = parts.configs["health"]
    settings = config.read_text(encoding="utf-8")
    if opa_url is not None:
        settings = f'policy_engine = "opa"\nopa_url = "{opa_url}"\n' + settings
    chosen = config.with_name("health-opa.toml")
    chosen.write_text(settings, encoding="utf-8")
    parts.kill("health")
    parts.start("health", chosen)


def denied_by_health(parts) -> dict:
    """The gateway's first answer after health is back up (in OPA mode, so denying)."""
    deadline = time.monotonic() + 30
    while True:
        body = ask(parts)
        codes = {e["extensions"].get("code") for e in health_errors(body)}
        if (codes and "NODE_UNAVAILABLE" not in codes) or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def assert_health_denied_and_the_rest_served(body: dict, full: dict) -> None:
    """Health's fields null with its ACCESS_DENIED, named; everything else as in full."""
    errors = health_errors(body)
    assert errors, body.get("errors")
    assert {e["extensions"]["code"] for e in errors} == {"ACCESS_DENIED"}, errors
    assert all("could not be loaded into OPA" in e["message"] for e in errors), errors
    for area, whole in zip(body["data"]["areas"], full["data"]["areas"], strict=True):
        assert area["encounterCount"] is None
        assert {k: v for k, v in area.items() if k != "encounterCount"} == {
            k: v for k, v in whole.items() if k != "encounterCount"
        }


def assert_fails_closed(parts, opa_url: str, full: dict) -> None:
    restart_health(parts, opa_url)
    denied_by_health(parts)
    readyz = parts.run["nodes"]["health"].replace("/graphql", "/readyz")
    ready = httpx.get(readyz, verify=tool_tls(parts.run), timeout=10)
    assert ready.status_code == 503, ready.text  # its operator sees why it refuses
    assert "could not be loaded into OPA" in ready.json()["reason"]
    health_before, gateway_before = ledger(parts, "health"), ledger(parts, "gateway")
    assert_health_denied_and_the_rest_served(ask(parts), full)
    health_after = ledger(parts, "health")
    assert health_after[: len(health_before)] == health_before
    new = health_after[len(health_before) :]
    assert new, "health did not audit its refusal"
    for outcome, code, reason in new:
        assert (outcome, code) == ("deny", "ACCESS_DENIED"), reason
        assert "could not be loaded into OPA" in reason
    gateway_after = ledger(parts, "gateway")
    assert gateway_after[: len(gateway_before)] == gateway_before
    assert len(gateway_after) == len(gateway_before) + 1


def test_a_node_whose_opa_server_is_down_fails_closed_while_the_others_serve(trust_parts):
    full = answered_in_full(trust_parts)
    assert "errors" not in full, full["errors"]
    try:
        assert_fails_closed(trust_parts, f"http://127.0.0.1:{free_port()}", full)
        with dropping_server() as url:
            assert_fails_closed(trust_parts, url, full)
    finally:
        restart_health(trust_parts, None)
    assert answered_in_full(trust_parts) == full
