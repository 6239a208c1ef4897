"""Traces from the gateway through each node (OpenTelemetry): the one place that knows how.

A request's trace starts at the gateway (or continues the caller's W3C ``traceparent``):
``ServerSpans`` opens a server span per HTTP request, ``node_call_span`` a client span per
node call whose context goes out in that call's ``traceparent``, and each node's
``ServerSpans`` continues it. ``current_ids`` gives the trace and span ids that audit
entries and log lines carry, so one request can be followed across every part.

``configure_tracing`` (run by ``datatrust serve``) installs the SDK's tracer provider; it
exports over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or its traces variant)
is set and the exporter package is installed, so no collector is ever needed to run.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ServerSpans",
    "bind_request_id",
    "configure_tracing",
    "current_ids",
    "current_request_id",
    "current_trace_id",
    "node_call_span",
    "traced_by",
]

_log = logging.getLogger("datatrust.tracing")
_request_log = logging.getLogger("datatrust.http")
_TRACER_NAME = "datatrust"
_TRACE_HEADERS = (b"traceparent", b"tracestate")
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_request_id: ContextVar[str | None] = ContextVar("datatrust_request_id", default=None)


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the SDK tracer provider for this process; True if this call installed it.

    A provider already installed (by a test, or an embedding application) is kept. Standard
    variables apply: ``OTEL_SERVICE_NAME`` overrides ``service_name``, ``OTEL_SDK_DISABLED``
    turns tracing off, ``OTEL_TRACES_EXPORTER=none`` keeps spans in-process.
    """
    environ = os.environ if environ is None else environ
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return False
    name = environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporter = _otlp_exporter(environ)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def _otlp_exporter(environ: Mapping[str, str]) -> Any:
    """The OTLP/HTTP span exporter when an endpoint is configured and the package exists."""
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint or environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        _log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http is "
            "not installed, so spans are not exported; pip install it to export them"
        )
        return None
    return OTLPSpanExporter()  # reads the endpoint, headers and timeout from OTEL_* itself


_provider: trace.TracerProvider | None = None
"""The provider ``traced_by`` put in force, else None: the process-wide one."""


@contextmanager
def traced_by(provider: trace.TracerProvider) -> Iterator[None]:
    """Trace with ``provider`` inside the block, without setting the process-wide provider
    (which OpenTelemetry lets a process set only once): for tests and embedders."""
    global _provider
    previous, _provider = _provider, provider
    try:
        yield
    finally:
        _provider = previous


def _tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME, tracer_provider=_provider)


def current_ids() -> tuple[str | None, str | None]:
    """The current trace and span ids as lowercase hex, or (None, None) outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def current_trace_id() -> str | None:
    """The current trace id (32 hex digits), as audit entries record it."""
    return current_ids()[0]


def current_request_id() -> str | None:
    """The request id bound to this request (see ``bind_request_id``), for log lines."""
    return _request_id.get()


def bind_request_id(request_id: str | None) -> None:
    """Make ``request_id`` the current request's id for log lines (the gateway makes one up
    when the caller sent none; ``ServerSpans`` binds a sane incoming one itself)."""
    _request_id.set(request_id)


@contextmanager
def node_call_span(node: str) -> Iterator[dict[str, str]]:
    """A client span around one call to ``node``; yields the trace headers to send with it.

    The headers carry the span's own context, so the node's server span is its child; a
    failed call (an exception out of the block) marks the span as an error.
    """
    with _tracer().start_as_current_span(
        f"node {node}", kind=SpanKind.CLIENT, attributes={"datatrust.node": node}
    ):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        yield headers


class ServerSpans:
    """ASGI middleware: one server span per HTTP request, continuing its ``traceparent``.

    Only the method, path and status go on the span and on the one log line per request
    (``datatrust.http``): never a header value, a query string or a body, so neither a
    trace backend nor a log holds a payload or an identifier.
    """

    def __init__(self, app: ASGIApp, component: str) -> None:
        self.app = app
        self.component = component

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        carrier = {
            name.decode("latin-1"): headers[name].decode("latin-1")
            for name in _TRACE_HEADERS
            if name in headers
        }
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        method, path = scope.get("method", "GET"), scope.get("path", "/")
        with _tracer().start_as_current_span(
            f"{method} {path}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": path,
                "datatrust.component": self.component,
            },
        ) as span:
            token = _request_id.set(given if _SANE_REQUEST_ID.fullmatch(given) else None)

            status: int | str = "nothing"  # until the response starts

            async def send_noting_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
                await send(message)

            started = time.perf_counter()
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                _request_log.info(
                    "%s %s answered %s",
                    method,
                    path,
                    status,
                    extra={
                        "component": self.component,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
                _request_id.reset(token)
