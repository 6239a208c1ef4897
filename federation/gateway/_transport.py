"""The gateway's connections to nodes: aiohttp underneath the ``httpx.AsyncClient`` seam.

Every node call went through httpcore, whose pure-Python HTTP/1.1 and anyio streams cost
about 1.6 ms of CPU per call against a node on loopback, where aiohttp's C parser costs
under 0.5 ms; a query over two nodes makes two calls, and under load the gateway's CPU is
what limits its throughput. So :class:`AiohttpTransport` sends the requests httpx builds
through one aiohttp session with a keep-alive pool, and hands httpx back a plain response:
the client, its timeouts, and the ``trace`` events ``_execute`` reads to tell a connection
the node closed under a request (see ``_on_reused_connection_before_response``) are as
before, and a test can still give the gateway any other httpx transport.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

_Trace = Callable[[str, dict[str, Any]], Awaitable[None]]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an aiohttp session, made on first use in the running loop."""

    def __init__(self, *, verify: ssl.SSLContext | str | bool = True, limits: httpx.Limits) -> None:
        self._ssl: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl,
                limit=self._limits.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry or 0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trace_configs=[_TRACE_CONFIG],
                auto_decompress=False,  # httpx decodes, by the response's own headers
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        timeouts = request.extensions.get("timeout", {})
        trace: _Trace | None = request.extensions.get("trace")
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
            connect=timeouts.get("pool"),
        )
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in ("content-length", "transfer-encoding")
        ]
        try:
            async with self._open().request(
                request.method,
                str(request.url),
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                trace_request_ctx=SimpleNamespace(trace=trace),
            ) as response:
                content = await response.read()
                return httpx.Response(
                    status_code=response.status,
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers
                    ],
                    content=content,
                    request=request,
                    extensions={"http_version": b"HTTP/1.1"},
                )
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise httpx.ReadTimeout(f"no answer in time: {error!r}", request=request) from error
        except aiohttp.ClientConnectorError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        except aiohttp.ServerDisconnectedError as error:
            raise httpx.RemoteProtocolError(
                f"server disconnected: {error}", request=request
            ) from error
        except aiohttp.ClientPayloadError as error:
            raise httpx.RemoteProtocolError(str(error), request=request) from error
        except aiohttp.ClientOSError as error:
            raise httpx.ReadError(str(error), request=request) from error
        except aiohttp.ClientError as error:
            raise httpx.TransportError(
                f"{type(error).__name__}: {error}", request=request
            ) from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _emitting(event: str) -> Callable[..., Awaitable[None]]:
    """An aiohttp trace hook that reports ``event`` as httpcore names it to httpx's trace."""

    async def emit(_session: Any, context: SimpleNamespace, _params: Any) -> None:
        trace = getattr(context.trace_request_ctx, "trace", None)
        if trace is not None:
            await trace(event, {})

    return emit


_TRACE_CONFIG = aiohttp.TraceConfig()
_TRACE_CONFIG.on_connection_create_start.append(_emitting("connection.connect_tcp.started"))
_TRACE_CONFIG.on_request_headers_sent.append(_emitting("http11.send_request_headers.started"))
_TRACE_CONFIG.on_request_end.append(_emitting("http11.receive_response_headers.complete"))
_TRACE_CONFIG.freeze()
