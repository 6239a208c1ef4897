"""Prometheus metrics of one process (node or gateway), in its own registry.

``RequestMetrics`` counts a node's GraphQL requests; ``OperationalMetrics`` adds what an
operator watches besides: policy decisions by outcome and code, records ingested and
quarantined, and how long the signed directory and this process's TLS certificate have
left. Gauges are computed when ``/metrics`` is scraped, so they are never stale.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["OperationalMetrics", "RequestMetrics", "ingest_observed"]

IngestListener = Callable[[str, str, int, int], None]
"""Told (source, format, records loaded, records quarantined) after each committed chunk."""

_ingest_listeners: weakref.WeakKeyDictionary[Engine, list[IngestListener]] = (
    weakref.WeakKeyDictionary()
)


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


class OperationalMetrics:
    """Decisions, ingest and expiries of one process, added to its ``registry``."""

    def __init__(self, registry: CollectorRegistry, component: str) -> None:
        self.component = component
        self.decisions = Counter(
            "datatrust_policy_decisions",
            "Policy decisions made, by outcome (permit or deny) and code (OK or the refusal's).",
            ["component", "outcome", "code"],
            registry=registry,
        )
        self.loaded = Counter(
            "datatrust_ingest_records_loaded",
            "Records ingest loaded into this process's store, by source format.",
            ["component", "format"],
            registry=registry,
        )
        self.quarantined = Counter(
            "datatrust_ingest_records_quarantined",
            "Records ingest set aside in quarantine, by source and format.",
            ["component", "source", "format"],
            registry=registry,
        )
        self.directory_expiry = Gauge(
            "datatrust_directory_expiry_seconds",
            "Seconds until the signed trust directory in force expires (negative: expired).",
            ["component"],
            registry=registry,
        )
        self.certificate_expiry = Gauge(
            "datatrust_certificate_expiry_seconds",
            "Seconds until this process's TLS certificate expires (negative: expired).",
            ["component"],
            registry=registry,
        )

    def decision(self, outcome: str, code: str) -> None:
        """Count one decision (``PolicyRuntime.on_decision``)."""
        self.decisions.labels(self.component, outcome, code).inc()

    def watch_ingest(self, engine: Engine) -> None:
        """Count what ingest loads into ``engine``'s store from now on (webhooks, MQTT)."""
        _ingest_listeners.setdefault(engine, []).append(self._ingested)

    def _ingested(self, source: str, format_name: str, loaded: int, quarantined: int) -> None:
        if loaded:
            self.loaded.labels(self.component, format_name).inc(loaded)
        if quarantined:
            self.quarantined.labels(self.component, source_label(source), format_name).inc(
                quarantined
            )

    def watch_directory(self, expires_at: Callable[[], dt.datetime]) -> None:
        """Report the seconds left on the directory ``expires_at`` returns, at each scrape."""
        self.directory_expiry.labels(self.component).set_function(
            lambda: _seconds_until(expires_at())
        )

    def watch_certificate(self, certificate: Path) -> None:
        """Report the seconds left on the certificate in ``certificate``, read at each scrape
        (so a rotated certificate shows at once)."""
        from datatrust.network._tls import certificate_expires_at

        self.certificate_expiry.labels(self.component).set_function(
            lambda: _seconds_until(certificate_expires_at(certificate))
        )


def ingest_observed(
    engine: Engine, source: str, format_name: str, loaded: int, quarantined: int
) -> None:
    """Tell the processes watching ``engine`` what one committed ingest chunk held."""
    for listener in _ingest_listeners.get(engine, ()):
        listener(source, format_name, loaded, quarantined)


def source_label(source: str) -> str:
    """A bounded label for an ingest source: a webhook route or broker as it is, any file
    path as "file" (paths would make one series per file)."""
    if source.startswith("/ingest/") or "/" not in source:
        return source
    return "file"


def _seconds_until(moment: dt.datetime) -> float:
    return (moment - dt.datetime.now(dt.UTC)).total_seconds()
