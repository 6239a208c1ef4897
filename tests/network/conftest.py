"""A trust's TLS material in a temp dir, a signed directory, and a node-like app over real mTLS."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from datatrust.network import (
    DirectoryWatcher,
    RequireDirectoryPeer,
    TlsFiles,
    TrustDirectory,
    TrustPki,
    init_trust_pki,
    load_or_create_operator_key,
    mtls_uvicorn_config,
    sign_directory,
)

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
PARTS = ["council", "health", "gateway", "tool", "stranger"]
"""``stranger`` holds a trust-CA certificate that no directory lists."""


def directory_document(pki: TrustPki, *, version: int = 1, now: dt.datetime = NOW) -> dict:
    issuer = "http://127.0.0.1:8404"
    return {
        "trust": "test trust",
        "version": version,
        "issued_at": (now - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "expires_at": (now + dt.timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "members": [
            {
                "agency": node,
                "node_id": node,
                "endpoint": f"https://127.0.0.1:{port}",
                "certificate_sha256": pki.fingerprints[node],
                "capabilities": ["subgraph"],
                "issuers": [{"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"}],
            }
            for node, port in (("council", 8401), ("health", 8402))
        ],
        "gateway": {
            "endpoint": "https://127.0.0.1:8400",
            "certificate_sha256": pki.fingerprints["gateway"],
        },
        "tools": [{"name": "tool", "certificate_sha256": pki.fingerprints["tool"], "role": "tool"}],
    }


@dataclass
class Trust:
    data_dir: Path
    pki: TrustPki
    operator_key: ECKey
    directory_path: Path

    def sign(self, document: dict) -> str:
        return sign_directory(TrustDirectory.from_document(document), self.operator_key)

    def publish(self, document: dict) -> None:
        self.directory_path.write_text(self.sign(document), encoding="ascii")


@pytest.fixture(scope="session")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Trust:
    """Session-wide: generating keys and certificates is the slow part."""
    data_dir = tmp_path_factory.mktemp("trust")
    pki = init_trust_pki(data_dir, PARTS)
    key = load_or_create_operator_key(data_dir)
    path = data_dir / "directory.jws"
    trust = Trust(data_dir, pki, key, path)
    trust.publish(directory_document(pki, now=dt.datetime.now(dt.UTC)))
    return trust


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> TrustPki:
    """A second, unrelated CA that issued a certificate named like ours."""
    return init_trust_pki(tmp_path_factory.mktemp("other"), ["tool"], trust_name="elsewhere")


async def whoami(request: Request) -> JSONResponse:
    peer = request.scope["state"]["peer"]
    tls_version = hex(request.scope["extensions"]["tls"]["tls_version"])
    return JSONResponse(
        {"kind": peer.kind, "name": peer.name, "agency": peer.agency, "tls_version": tls_version}
    )


@dataclass
class LiveNode:
    url: str
    watcher: DirectoryWatcher
    requests_seen: list[str]
    """Paths of every HTTP request that reached the application (past the TLS handshake)."""


class RecordRequests:
    def __init__(self, app, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope, receive, send) -> None:
        self.seen.append(scope["path"])
        await self.app(scope, receive, send)


@contextmanager
def running_node(files: TlsFiles, watcher: DirectoryWatcher) -> Iterator[LiveNode]:
    """A node-like app over mutual TLS behind ``RequireDirectoryPeer``, in a thread."""
    seen: list[str] = []
    app = RecordRequests(
        RequireDirectoryPeer(Starlette(routes=[Route("/whoami", whoami)]), watcher), seen
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(mtls_uvicorn_config(app, files, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the mTLS test server did not start within 10 seconds")
        time.sleep(0.01)
    try:
        yield LiveNode(f"https://127.0.0.1:{sock.getsockname()[1]}", watcher, seen)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def live_node(trust: Trust) -> Iterator[LiveNode]:
    """The council node's certificate, with the trust's directory."""
    watcher = DirectoryWatcher(trust.directory_path, trust.operator_key, check_interval_seconds=0)
    with running_node(trust.pki.files("council"), watcher) as node:
        yield node
