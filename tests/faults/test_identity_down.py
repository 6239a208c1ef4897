"""The identity server down: tokens it issued keep working until they expire.

The gateway and every node validate access tokens with the issuer's signing keys, which
they fetched and cached while it was up. The trust's identity server is replaced by one
issuing short-lived tokens (the same issuer, keys and accounts; only the access token
lifetime differs), a token is taken from it, and it is stopped. The token still gets a
full answer through the gateway (the gateway and the three nodes each accept it) until it
expires; after its expiry and the gateway's clock leeway (its ``token_leeway_seconds``,
small in these tests so the wait is seconds), the gateway refuses it with 401. Each request
leaves exactly one gateway ledger entry, and none is lost.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from datatrust._demo_trust import EXAMPLE_PURPOSE, EXAMPLE_QUERY
from datatrust._identity_cli import _identity_settings, request_token
from datatrust.settings import GatewaySettings, IdentityServerSettings, load_settings
from datatrust.trust.identity import create_identity_app
from tests.faults._node import wait_until
from tests.federation.test_node_outage import answered_in_full

TOKEN_LIFETIME_SECONDS = 8


@contextmanager
def short_lived_identity(parts) -> Iterator[str]:
    """The trust's identity server, in this process, issuing short-lived access tokens."""
    _, config = parts.configs["identity"]
    settings = load_settings(IdentityServerSettings, toml_path=config, environ={})
    identity = dataclasses.replace(
        _identity_settings(settings), access_token_lifetime_seconds=TOKEN_LIFETIME_SECONDS
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_identity_app(identity),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 20, "the short-lived identity server")
        yield settings.effective_issuer
    finally:
        server.should_exit = True
        thread.join(10)


def refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return True
    return False


def gateway_leeway(parts) -> int:
    """The clock leeway the running gateway allows on token times, from its settings."""
    _, config = parts.configs["gateway"]
    return load_settings(GatewaySettings, toml_path=config, environ={}).token_leeway_seconds


def expiry(token: str) -> int:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def gateway_ledger(parts) -> list[tuple[str, str]]:
    with sqlite3.connect(parts.data_dir / "gateway.db") as db:
        return [tuple(r) for r in db.execute("SELECT outcome, code FROM audit_event ORDER BY seq")]


def ask_with(parts, bearer: str) -> httpx.Response:
    return httpx.post(
        parts.run["gateway"],
        json={"query": EXAMPLE_QUERY},
        headers={"Purpose": EXAMPLE_PURPOSE, "Authorization": f"Bearer {bearer}"},
        timeout=30,
    )


def test_tokens_issued_before_the_identity_server_stopped_work_until_they_expire(trust_parts):
    parts = trust_parts
    leeway = gateway_leeway(parts)
    full = answered_in_full(parts)  # the gateway and nodes have fetched the signing keys
    assert "errors" not in full, full["errors"]
    issuer = parts.run["identity"]
    parts.kill("identity")
    try:
        with short_lived_identity(parts) as url:
            assert url == issuer
            token = request_token(url, parts.data_dir, EXAMPLE_PURPOSE, "analyst-cli")
        assert refuses_connections(issuer), "the identity server is still up"
        before = gateway_ledger(parts)

        answered = ask_with(parts, token)
        assert time.time() < expiry(token) + leeway  # it was still valid
        assert answered.status_code == 200, answered.text
        assert answered.json() == full

        time.sleep(max(0.0, expiry(token) + leeway + 1 - time.time()))
        expired = ask_with(parts, token)
        assert expired.status_code == 401, expired.text
        error = expired.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert "expired" in error["message"], error
        assert expired.json()["data"] is None

        after = gateway_ledger(parts)
        assert after[: len(before)] == before
        assert after[len(before) :] == [("permit", "OK"), ("deny", "UNAUTHENTICATED")]
    finally:
        parts.start("identity")
    wait_until(lambda: not refuses_connections(issuer), 30, "the identity server again")
