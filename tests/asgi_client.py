"""A synchronous client for an ASGI app, running its lifespan, over httpx.ASGITransport.

(Starlette's TestClient now wants the httpx2 package; this keeps to httpx.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio.from_thread
import httpx


class AppClient:
    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@contextlib.contextmanager
def app_client(app: Any, base_url: str = "http://testserver") -> Iterator[AppClient]:
    """Start ``app``'s lifespan, yield a client for it, then shut the lifespan down."""
    with anyio.from_thread.start_blocking_portal() as portal:
        lifespan = app.router.lifespan_context(app)
        portal.call(lifespan.__aenter__)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
        try:
            yield AppClient(portal, client)
        finally:
            portal.call(client.aclose)
            portal.call(lifespan.__aexit__, None, None, None)
