"""One agency node: a Starlette application around that agency's store.

It serves the node's Federation subgraph at ``/graphql`` (guarded by the enforcement
point, every decision audited), ``/healthz`` (the process answers), ``/readyz`` (the store
is reachable and its migrations current) and ``/metrics`` (Prometheus text). Migrations
run when the node starts, so a node never serves an out-of-date schema. The council node,
which holds the LoRaWAN sensors, also takes uplinks pushed by network servers
(``/ingest/ttn``, ``/ingest/chirpstack``), guarded by the secret in
``<data_dir>/keys/council/webhook-secret``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from datatrust._auth import build_authenticator, trusted_issuers
from datatrust._metrics import RequestMetrics
from datatrust._ratelimit import RateLimiter
from datatrust.errors import DatatrustError, StoreError
from datatrust.federation.subgraphs import RequestOutcome, SubgraphEndpoint, subgraph_schema
from datatrust.policies import skeleton_policy
from datatrust.settings import NodeSettings
from datatrust.store import check_ready, create_store_engine, migrate
from datatrust.trust import append_audit_entry, demo_purpose_register

__all__ = ["create_node_app"]

logger = logging.getLogger("datatrust.node")

WEBHOOK_NODES = ("council",)


def create_node_app(settings: NodeSettings) -> Starlette:
    """The node application for ``settings``; the store is migrated when it starts."""
    engine = create_store_engine(settings.effective_database_url)
    register = demo_purpose_register()
    metrics = RequestMetrics(f"node:{settings.node_id}")
    known_purposes = set(register.ids)

    def observe(outcome: RequestOutcome) -> None:
        purpose = outcome.purpose if outcome.purpose in known_purposes else "other"
        metrics.observe(outcome.outcome, purpose if outcome.purpose else None, outcome.seconds)

    endpoint = SubgraphEndpoint(
        schema=subgraph_schema(settings.node_id),
        node_id=settings.node_id,
        engine=engine,
        register=register,
        policy=skeleton_policy(),
        authenticate=build_authenticator(
            trusted_issuers(settings),
            settings.effective_audience,
            RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        ),
        audit=lambda entry: append_audit_entry(engine, entry),
        observe=observe,
    )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "node": settings.node_id})

    async def readyz(request: Request) -> JSONResponse:
        try:
            check_ready(engine)
        except DatatrustError as error:
            return JSONResponse(
                {"status": "not ready", "node": settings.node_id, "reason": error.message}, 503
            )
        return JSONResponse({"status": "ready", "node": settings.node_id})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            migrate(engine)
        except StoreError:
            logger.exception("node %s could not migrate its store", settings.node_id)
            raise
        yield
        engine.dispose()

    return Starlette(
        routes=[
            Route("/graphql", endpoint.__call__, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.endpoint),
            *_ingest_routes(settings, engine),
        ],
        lifespan=lifespan,
    )


def _ingest_routes(settings: NodeSettings, engine) -> list[Route]:
    """Webhook routes where uplinks arrive (the council's sensors), else none."""
    if settings.node_id not in WEBHOOK_NODES:
        return []
    from datatrust._prepare import node_pseudonymiser
    from datatrust.ingest import webhook_routes, webhook_secret

    data_dir = settings.data_dir.resolve()
    secret = webhook_secret(data_dir / "keys" / settings.node_id)
    return webhook_routes(engine, node_pseudonymiser(data_dir, settings.node_id), secret)
