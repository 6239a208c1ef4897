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

    def headers(self, purpose: str | None = "service-planning") -> dict[str, str]:
        token = self.token(purpose if purpose in ("service-planning", "research") else None)
        headers = {"Authorization": f"Bearer {token}"}
        if purpose is not None:
            headers["Purpose"] = purpose
        return headers


@contextmanager
def trust_identity(data_dir: Path) -> Iterator[TrustIdentity]:
    with running_identity(data_dir, audiences=AUDIENCES) as live:
        yield TrustIdentity(live)
