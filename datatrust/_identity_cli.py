"""The identity server in a local trust: first-run accounts, the server process, tokens.

Demo credentials are generated at first run (never in the repository) and kept, for the
local tools that need them (``datatrust token``), in ``<data_dir>/identity/
demo-credentials.json``, readable only by their owner.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from datatrust.errors import AuthenticationFailed, PeerError, SettingsError
from datatrust.settings import IdentityServerSettings

__all__ = [
    "DEMO_AGENCIES",
    "DEMO_CLIENT",
    "credentials_path",
    "ensure_demo_accounts",
    "identity_app",
    "request_token",
]

DEMO_CLIENT = "analyst-cli"
# Agencies whose people and systems the demo trust's identity server speaks for.
DEMO_AGENCIES = ("council", "health", "social-care", "housing", "university", "public")


def credentials_path(data_dir: Path) -> Path:
    return data_dir / "identity" / "demo-credentials.json"


def _identity_settings(settings: IdentityServerSettings):
    from datatrust.trust.identity import IdentitySettings

    return IdentitySettings(
        issuer=settings.effective_issuer,
        audiences=tuple(settings.audiences),
        data_dir=settings.data_dir / "identity",
        portal_redirect_uris=tuple(settings.portal_redirect_uris),
        person_key_file=settings.data_dir / "keys" / "pseudonym.key",
    )


def open_identity_service(settings: IdentityServerSettings):
    """The identity service (store and key ring) the settings describe."""
    from datatrust.trust.identity import IdentityService

    return IdentityService(_identity_settings(settings))


def ensure_demo_accounts(settings: IdentityServerSettings) -> dict | None:
    """Create the demo people and clients on first run; return their credentials then only."""
    path = credentials_path(settings.data_dir)
    if path.exists():
        return None
    from datatrust.trust.identity import create_demo_accounts

    accounts = create_demo_accounts(open_identity_service(settings))
    credentials = {"passwords": accounts.passwords, "client_secrets": accounts.client_secrets}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle, indent=2)
    return credentials


def identity_app(settings: IdentityServerSettings):
    from datatrust.trust.identity import create_identity_app

    return create_identity_app(_identity_settings(settings))


def request_token(issuer: str, data_dir: Path, purpose: str, client: str) -> str:
    """An access token for ``purpose`` through the real client credentials flow."""
    try:
        credentials = json.loads(credentials_path(data_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(
            f"no demo credentials in {credentials_path(data_dir)}: run 'datatrust up' first"
        ) from None
    secret = credentials["client_secrets"].get(client)
    if secret is None:
        raise SettingsError(
            f"no secret for client {client!r} in {credentials_path(data_dir)}; known clients: "
            f"{', '.join(sorted(credentials['client_secrets']))}"
        )
    try:
        response = httpx.post(
            f"{issuer}/token",
            data={"grant_type": "client_credentials", "scope": purpose},
            auth=(client, secret),
            timeout=10,
        )
    except httpx.HTTPError as error:
        raise PeerError(f"the identity server at {issuer} did not answer: {error}") from error
    if response.status_code != 200:
        try:
            detail = response.json().get("error_description") or response.json().get("error")
        except ValueError:
            detail = response.text[:200]
        raise AuthenticationFailed(
            f"the identity server refused a token for purpose {purpose!r} to client "
            f"{client!r}: {detail}"
        )
    return response.json()["access_token"]
