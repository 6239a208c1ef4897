from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from datatrust.errors import PurposeUnknown
from datatrust.federation.gateway import Supergraph, compose, create_gateway_app

from ._subgraphs import URLS, Network, sdl

Asked = list[tuple[str | None, frozenset[tuple[str, str]]]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
def supergraph() -> Supergraph:
    return compose({name: sdl(name) for name in URLS})


@pytest.fixture
def asked() -> Asked:
    """What the test authorize hook was asked; it refuses the purpose 'unknown'."""
    return []


@pytest.fixture
def app(network: Network, asked: Asked) -> Starlette:
    def authorize(purpose: str | None, fields: frozenset[tuple[str, str]], headers) -> None:
        asked.append((purpose, fields))
        if purpose == "unknown":
            raise PurposeUnknown("purpose 'unknown' is not in the register; use one it lists")

    return create_gateway_app(
        URLS,
        authorize=authorize,
        client_factory=lambda: httpx.AsyncClient(transport=network),
        timeout_seconds=0.5,
        startup_wait_seconds=0.0,
    )


@pytest.fixture
async def gateway(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the gateway app, with its lifespan (startup composition) running."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        yield client
