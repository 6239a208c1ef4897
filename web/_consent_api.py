"""The nodes' consent APIs, called for the signed-in citizen with their own access token.

Each agency's node is the controller of its consent records and their enforcement point:
it checks the citizen's token, lets Polar decide, writes the change and audits it. The
portal never names whose records these are (no ``pseudonym`` argument is ever sent): the
node takes the person from the token's ``person`` claim, so the portal cannot reach anyone
else's records even by mistake. Calls go over mutual TLS with the portal's certificate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

__all__ = ["ConsentApi", "ConsentApiError", "ConsentNode", "NodeConsents"]

READ = "{ consents { purpose state expiresAt } consentHistory { purpose state actor at note } }"
GIVE = "mutation($purpose: String!) { giveConsent(purpose: $purpose) { purpose state } }"
WITHDRAW = "mutation($purpose: String!) { withdrawConsent(purpose: $purpose) { purpose state } }"


class ConsentApiError(Exception):
    """A node refused or could not answer; ``code`` is its ``extensions.code`` if it gave one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ConsentNode:
    id: str
    name: str
    url: str


@dataclass(frozen=True)
class NodeConsents:
    """What one node holds for the citizen: current consents and every change."""

    current: tuple[dict[str, Any], ...]
    history: tuple[dict[str, Any], ...]


class ConsentApi:
    def __init__(self, ssl_context: ssl.SSLContext | bool, timeout_seconds: float = 10.0):
        self._http = httpx.AsyncClient(verify=ssl_context, timeout=timeout_seconds)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def read(self, node: ConsentNode, access_token: str) -> NodeConsents:
        data = await self._call(node, access_token, READ, {})
        return NodeConsents(
            current=tuple(data.get("consents") or ()),
            history=tuple(
                {**change, "at": datetime.fromisoformat(change["at"])}
                for change in data.get("consentHistory") or ()
            ),
        )

    async def give(self, node: ConsentNode, access_token: str, purpose: str) -> str:
        data = await self._call(node, access_token, GIVE, {"purpose": purpose})
        return data["giveConsent"]["state"]

    async def withdraw(self, node: ConsentNode, access_token: str, purpose: str) -> str:
        data = await self._call(node, access_token, WITHDRAW, {"purpose": purpose})
        return data["withdrawConsent"]["state"]

    async def _call(
        self, node: ConsentNode, token: str, query: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            response = await self._http.post(
                node.url,
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as error:
            raise ConsentApiError(f"{node.name} did not answer ({type(error).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ConsentApiError(f"{node.name} answered with status {response.status_code}")
        errors = body.get("errors")
        if errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = (first.get("extensions") or {}).get("code")
            raise ConsentApiError(str(first.get("message", "refused")), code)
        if response.status_code != 200 or not isinstance(body.get("data"), dict):
            raise ConsentApiError(f"{node.name} answered with status {response.status_code}")
        return body["data"]
