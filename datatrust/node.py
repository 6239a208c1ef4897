"""One agency node: a Starlette application around that agency's store.

It serves the node's Federation subgraph at ``/graphql`` (guarded by the enforcement
point, every decision audited), ``/healthz`` (the process answers), ``/readyz`` (the store
is reachable and its migrations current) and ``/metrics`` (Prometheus text). Migrations
run when the node starts, so a node never serves an out-of-date schema. The council node,
which holds the LoRaWAN sensors, also takes uplinks pushed by network servers
(``/ingest/ttn``, ``/ingest/chirpstack``), guarded by the secret in
``<data_dir>/keys/council/webhook-secret``. The health and social-care nodes serve the
consent API at ``/consent`` (GraphQL; Polar decides who may change whose consent).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from datatrust._auth import build_authenticator, trusted_issuers
from datatrust._metrics import OperationalMetrics, RequestMetrics
from datatrust._ratelimit import RateLimiter
from datatrust._tracing import ServerSpans
from datatrust.errors import DatatrustError, StoreError
from datatrust.federation.subgraphs import RequestOutcome, SubgraphEndpoint, subgraph_schema
from datatrust.federation.subgraphs._base import NodeKeys
from datatrust.federation.subgraphs._overlap import OverlapNodeKeys, QueryIdRegister
from datatrust.policies._published import published_runtime
from datatrust.settings import NodeSettings
from datatrust.store import check_ready, create_store_engine, migrate
from datatrust.trust import (
    append_audit_entry,
    audit_head_path,
    load_or_create_key,
    opt_out_list_date,
    overlap_key_path,
)

__all__ = ["create_node_app"]

logger = logging.getLogger("datatrust.node")

WEBHOOK_NODES = ("council",)
CONSENT_NODES = ("health", "social-care")
"""Nodes that hold people's records under consent, and so serve the consent API."""


def create_node_app(settings: NodeSettings) -> Starlette:
    """The node application for ``settings``; the store is migrated when it starts."""
    engine = create_store_engine(settings.effective_database_url)
    data_dir = settings.data_dir.resolve()
    head = audit_head_path(data_dir, settings.node_id)
    runtime = published_runtime(
        data_dir, engine_kind=settings.policy_engine, opa_url=settings.opa_url
    )
    metrics = RequestMetrics(f"node:{settings.node_id}")
    operational = OperationalMetrics(metrics.registry, metrics.component)
    runtime.on_decision = operational.decision
    operational.watch_ingest(engine)
    if settings.tls_files is not None:
        operational.watch_certificate(settings.tls_files.cert)

    def observe(outcome: RequestOutcome) -> None:
        register = runtime.register
        known = outcome.purpose if register and outcome.purpose in register.ids else "other"
        metrics.observe(outcome.outcome, known if outcome.purpose else None, outcome.seconds)

    def list_date() -> str | None:
        checked = opt_out_list_date(engine)
        return checked.isoformat() if checked else None

    common = {
        "node_id": settings.node_id,
        "engine": engine,
        "runtime": runtime,
        "authenticate": build_authenticator(
            trusted_issuers(settings),
            settings.effective_audience,
            RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
            leeway_seconds=settings.token_leeway_seconds,
        ),
        "audit": lambda entry: append_audit_entry(engine, entry, head),
        "keys": node_keys(data_dir),
        "opt_out_list_date": list_date,
        "observe": observe,
    }
    endpoint = SubgraphEndpoint(schema=subgraph_schema(settings.node_id), **common)
    consent_routes = []
    if settings.node_id in CONSENT_NODES:
        from datatrust.federation.subgraphs._consent import consent_schema

        consent = SubgraphEndpoint(schema=consent_schema, decides_data_use=False, **common)
        consent_routes.append(Route("/consent", consent.__call__, methods=["GET", "POST"]))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "node": settings.node_id})

    async def readyz(request: Request) -> JSONResponse:
        try:
            check_ready(engine)
        except DatatrustError as error:
            return JSONResponse(
                {"status": "not ready", "node": settings.node_id, "reason": error.message}, 503
            )
        if runtime.register is None:
            return JSONResponse(
                {
                    "status": "not ready",
                    "node": settings.node_id,
                    "reason": f"no data-use policy in force ({runtime.load_error})",
                },
                503,
            )
        return JSONResponse(
            {
                "status": "ready",
                "node": settings.node_id,
                "policy_version": runtime.policy_version,
                "policy_problem": runtime.load_error,
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            migrate(engine)
        except StoreError:
            logger.exception("node %s could not migrate its store", settings.node_id)
            raise
        yield
        engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", endpoint.__call__, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.endpoint),
            *consent_routes,
            *_ingest_routes(settings, engine),
        ],
        middleware=[Middleware(ServerSpans, component=metrics.component)],
        lifespan=lifespan,
    )
    app.state.metrics = operational  # `serve node` adds the directory it watches
    return app


def _ingest_routes(settings: NodeSettings, engine) -> list[Route]:
    """Webhook routes where uplinks arrive (the council's sensors), else none."""
    if settings.node_id not in WEBHOOK_NODES:
        return []
    from datatrust._prepare import node_pseudonymiser
    from datatrust.ingest import webhook_routes, webhook_secret

    data_dir = settings.data_dir.resolve()
    secret = webhook_secret(data_dir / "keys" / settings.node_id)
    return webhook_routes(engine, node_pseudonymiser(data_dir, settings.node_id), secret)


def node_keys(data_dir: Path) -> NodeKeys:
    """The trust-wide secrets a node's resolvers use (created at first use, 0600).

    Only a node loads the overlap key (``datatrust init`` creates it): with it, a node
    derives each cross-agency count's key, and the query ids it has answered are kept
    beside it so none is answered twice. The gateway never calls this.
    """
    keys = data_dir / "keys"
    salt = load_or_create_key(keys / "disclosure.key")
    return OverlapNodeKeys(
        pseudonym_key=load_or_create_key(keys / "pseudonym.key"),
        sdc_salt=int.from_bytes(salt[:16], "big"),  # 128 bits, as disclosure-control.md asks
        overlap_key=load_or_create_key(overlap_key_path(data_dir)),
        query_ids=QueryIdRegister(),
    )
