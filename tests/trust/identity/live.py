"""A real identity server on a free loopback port, in a thread, for tests over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey

from datatrust.network import TlsFiles
from datatrust.trust.identity import (
    DemoAccounts,
    IdentityService,
    IdentitySettings,
    create_demo_accounts,
    create_identity_app,
)

GATEWAY = "https://gateway.trust.test"
COUNCIL_NODE = "https://council.trust.test"
REDIRECT_URI = "http://127.0.0.1:9/callback"
PARTNER_KEY_CLIENT = "housing-partner"


@dataclass
class LiveIdentity:
    url: str
    service: IdentityService
    accounts: DemoAccounts
    partner_key: ECKey
    server: uvicorn.Server
    thread: threading.Thread
    ca_file: Path | None = None  # served over HTTPS with a certificate this CA signed

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client_credentials(self, client: str = "analyst-cli", scope: str | None = None) -> dict:
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        response = httpx.post(
            f"{self.url}/token",
            data=data,
            auth=(client, self.accounts.client_secrets[client]),
            verify=ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def client_assertion(self, audience: str | None = None, **claims) -> str:
        now = int(time.time())
        payload = {
            "iss": PARTNER_KEY_CLIENT,
            "sub": PARTNER_KEY_CLIENT,
            "aud": audience or f"{self.url}/token",
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
            **claims,
        }
        header = {"alg": "ES256", "kid": self.partner_key.kid}
        return jwt.encode(header, payload, self.partner_key, algorithms=["ES256"])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_in(
    live: LiveIdentity,
    *,
    challenge: str,
    username: str = "analyst",
    scope: str = "openid profile research",
    method: str = "S256",
) -> httpx.Response:
    """Drive the login form like a browser; returns the final (redirect) response."""
    params = {
        "response_type": "code",
        "client_id": "portal",
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "xyz",
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": method,
    }
    with httpx.Client(base_url=live.url) as browser:
        page = browser.get("/authorize", params=params)
        assert page.status_code == 200, page.text
        fields = dict(re.findall(r'name="(csrf_token|oauth)" value="([^"]*)"', page.text))
        oauth = fields["oauth"].replace("&amp;", "&")
        return browser.post(
            "/authorize",
            data={
                "csrf_token": fields["csrf_token"],
                "oauth": oauth,
                "username": username,
                "password": live.accounts.passwords[username],
            },
        )


@contextmanager
def running_identity(
    data_dir: Path, tls: TlsFiles | None = None, **settings
) -> Iterator[LiveIdentity]:
    """The identity server on a free loopback port; over HTTPS with ``tls``'s certificate."""
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else 40 ms per request
    sock.bind(("127.0.0.1", 0))
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
    identity_settings = IdentitySettings(
        issuer=url,
        audiences=settings.pop("audiences", (GATEWAY, COUNCIL_NODE)),
        data_dir=data_dir,
        portal_redirect_uris=(REDIRECT_URI,),
        **settings,
    )
    service = IdentityService(identity_settings)
    accounts = create_demo_accounts(service)
    partner_key = ECKey.generate_key("P-256", auto_kid=True)
    service.register_client(
        PARTNER_KEY_CLIENT,
        agency="housing",
        purposes=["service-planning"],
        auth_method="private_key_jwt",
        jwks={"keys": [partner_key.as_dict(private=False)]},
    )
    app = create_identity_app(identity_settings, service)
    served_tls = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)} if tls else {}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **served_tls))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the identity server did not start within 10 seconds")
        time.sleep(0.01)
    live = LiveIdentity(
        url, service, accounts, partner_key, server, thread, tls.ca if tls else None
    )
    try:
        yield live
    finally:
        live.stop()
        sock.close()
