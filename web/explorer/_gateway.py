"""Sending an analyst's query to the gateway, with their own token and chosen purpose.

The explorer is a backend-for-frontend: the access token stays in the encrypted session
and only this module ever puts it on the wire, in the ``Authorization`` header of a request
to the gateway. The gateway's answer comes back whole (its status and JSON body), so a
refusal reads exactly as the gateway worded it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from datatrust.errors import PeerError

__all__ = ["GatewayAnswer", "GatewayClient"]

TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class GatewayAnswer:
    status: int
    body: dict[str, Any]


class GatewayClient:
    def __init__(self, url: str, verify: Any = True) -> None:
        self.url = url
        self._http = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, verify=verify)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ask(
        self,
        access_token: str,
        purpose: str,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> GatewayAnswer:
        """POST the query; PeerError when the gateway does not answer with JSON."""
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        if operation_name:
            payload["operationName"] = operation_name
        try:
            response = await self._http.post(
                self.url,
                json=payload,
                headers={"Authorization": f"Bearer {access_token}", "Purpose": purpose},
            )
        except httpx.HTTPError as error:
            raise PeerError(f"the gateway at {self.url} did not answer: {error}") from error
        try:
            body = response.json()
        except ValueError as error:
            raise PeerError(
                f"the gateway at {self.url} answered {response.status_code} without JSON"
            ) from error
        if not isinstance(body, dict):
            raise PeerError(f"the gateway at {self.url} answered with a JSON {type(body)}")
        return GatewayAnswer(response.status_code, body)
