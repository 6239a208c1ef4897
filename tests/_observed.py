"""A whole trust in one process, watched: spans, JSON log lines, ledgers and metrics.

Shared by tests/test_tracing.py, test_json_logs.py and test_metrics.py. The parts are the
real ones: ``datatrust init``'s trust material (operator key, CA, certificates, signed
directory, published policy), a live identity server, the three agency nodes and the
trust gateway, which reaches the nodes through a transport that hands each call to the
node's ASGI app (so every call goes through the node's own middleware, enforcement and
ledger). Spans go to the SDK's ``InMemorySpanExporter`` through ``traced_by``, so the
process-wide tracer provider is never set; log lines go through ``JsonLogFormatter``.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from datatrust._logs import JsonLogFormatter
from datatrust._network_cli import init_local_trust, signed_directory_path
from datatrust._tracing import traced_by
from datatrust.gateway import create_trust_gateway
from datatrust.network import (
    DirectoryWatcher,
    load_operator_public_key,
    operator_public_key_path,
)
from datatrust.node import create_node_app
from datatrust.settings import GatewaySettings, NodeSettings, load_settings
from tests.asgi_client import AppClient, app_client
from tests.trust_identity import TrustIdentity, trust_identity

NODES = ("council", "health", "social-care")
AREAS = "{ areas(first: 3) { code name encounterCount openCareEpisodes } }"
"""Council answers the areas, health and social-care their counts: every node is asked."""


class NodeTransport(httpx.AsyncBaseTransport):
    """The gateway's calls, each handed to the node app its URL's host names."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.transports = {node: httpx.ASGITransport(app=app) for node, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.transports[request.url.host].handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@dataclass
class ObservedTrust:
    data_dir: Path
    identity: TrustIdentity
    gateway: AppClient
    nodes: dict[str, AppClient]
    node_apps: dict[str, Any]
    gateway_app: Any
    spans: InMemorySpanExporter
    log: io.StringIO

    def ask(self, query: str, headers: dict[str, str]) -> httpx.Response:
        return self.gateway.post("/graphql", json={"query": query}, headers=headers)

    def ledger(self, part: str) -> list[dict[str, Any]]:
        """Every entry of ``part``'s audit ledger (a node, or "gateway"), oldest first."""
        with sqlite3.connect(self.data_dir / f"{part}.db") as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM audit_event ORDER BY seq")]

    def log_lines(self) -> list[dict[str, Any]]:
        """Every log line written so far, each parsed as the JSON object it must be."""
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


@contextmanager
def observed_trust(tmp: Path) -> Iterator[ObservedTrust]:
    data_dir = tmp / "trust"
    init = init_local_trust(data_dir, base_port=19400)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("datatrust")
    level = logger.level
    with ExitStack() as stack:
        stack.enter_context(traced_by(provider))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        stack.callback(logger.setLevel, level)
        stack.callback(logger.removeHandler, handler)
        identity = stack.enter_context(trust_identity(tmp / "identity"))
        tls = {"tls_ca": init.pki.ca}
        apps = {}
        for node in NODES:
            files = init.pki.files(node)
            settings = load_settings(
                NodeSettings,
                environ={},
                node_id=node,
                agency=node,
                data_dir=data_dir,
                issuers=identity.issuers,
                tls_cert=files.cert,
                tls_key=files.key,
                **tls,
            )
            apps[node] = create_node_app(settings)
            # as `datatrust serve node` does with the directory it serves under
            watcher = DirectoryWatcher(
                signed_directory_path(data_dir),
                load_operator_public_key(operator_public_key_path(data_dir)),
            )
            apps[node].state.metrics.watch_directory(lambda w=watcher: w.expires_at)
        gateway_files = init.pki.files("gateway")
        gateway_settings = load_settings(
            GatewaySettings,
            environ={},
            data_dir=data_dir,
            nodes={node: f"http://{node}/graphql" for node in NODES},
            issuers=identity.issuers,
            tls_cert=gateway_files.cert,
            tls_key=gateway_files.key,
            **tls,
        )
        gateway_app = create_trust_gateway(gateway_settings)
        transport = NodeTransport(apps)
        gateway_app.state.gateway.client_factory = lambda: httpx.AsyncClient(transport=transport)
        nodes = {node: stack.enter_context(app_client(app)) for node, app in apps.items()}
        gateway = stack.enter_context(app_client(gateway_app))
        yield ObservedTrust(data_dir, identity, gateway, nodes, apps, gateway_app, exporter, log)
