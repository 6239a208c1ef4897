"""Prometheus metrics of one process (node or gateway), in its own registry."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["RequestMetrics"]


class RequestMetrics:
    """Requests by outcome and purpose, and their latency, for one process."""

    def __init__(self, component: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "datatrust_graphql_requests",
            "GraphQL requests answered, by outcome and declared purpose.",
            ["component", "outcome", "purpose"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "datatrust_graphql_request_seconds",
            "Time to answer a GraphQL request.",
            ["component"],
            registry=self.registry,
        )
        self.component = component

    def observe(self, outcome: str, purpose: str | None, seconds: float) -> None:
        # Purpose values are bounded to the register's ids by the caller or "other".
        self.requests.labels(self.component, outcome, purpose or "none").inc()
        self.latency.labels(self.component).observe(seconds)

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
