"""A real identity server for tests of nodes and the gateway, and tokens from it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from datatrust._identity_cli import DEMO_AGENCIES
from datatrust.settings import GATEWAY_AUDIENCE, IssuerSetting, node_audience
from tests.trust.identity.live import LiveIdentity, running_identity

AUDIENCES = (GATEWAY_AUDIENCE, *(node_audience(n) for n in ("council", "health", "social-care")))


@dataclass
class TrustIdentity:
    live: LiveIdentity

    @property
    def issuers(self) -> list[IssuerSetting]:
        return [
            IssuerSetting(
                issuer=self.live.url,
                jwks_url=f"{self.live.url}/jwks.json",
                agencies=list(DEMO_AGENCIES),
            )
        ]

    def token(self, purpose: str = "service-planning") -> str:
        return self.live.client_credentials(scope=purpose)["access_token"]

    def headers_for(self, client: str, purpose: str) -> dict[str, str]:
        """Headers of a request by demo ``client`` (e.g. research-cli) for ``purpose``."""
        token = self.live.client_credentials(client=client, scope=purpose)["access_token"]
        return {"Authorization": f"Bearer {token}", "Purpose": purpose}

    def person_token(self, username: str, scope: str = "openid") -> str:
        """An access token for a demo person, through the real authorization-code flow."""
        from urllib.parse import parse_qs, urlsplit

        import httpx

        from tests.trust.identity.live import REDIRECT_URI, pkce_pair, sign_in

        verifier, challenge = pkce_pair()
        redirect = sign_in(self.live, challenge=challenge, username=username, scope=scope)
        code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
        response = httpx.post(
            f"{self.live.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": "portal",
                "code_verifier": verifier,
            },
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def headers(self, purpose: str | None = "service-planning") -> dict[str, str]:
        token = self.token(purpose if purpose in ("service-planning", "research") else None)
        headers = {"Authorization": f"Bearer {token}"}
        if purpose is not None:
            headers["Purpose"] = purpose
        return headers


@contextmanager
def trust_identity(data_dir: Path, **settings) -> Iterator[TrustIdentity]:
    with running_identity(data_dir, audiences=AUDIENCES, **settings) as live:
        yield TrustIdentity(live)
