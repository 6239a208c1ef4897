"""Signing in through the trust's identity server: OAuth 2.0 authorization code with PKCE.

The portal is a public client (no secret). Each sign-in gets a fresh ``state`` (ties the
answer to this browser's request: RFC 6749 section 10.12), a ``nonce`` (ties the ID token
to it: OIDC Core 3.1.2.1) and a PKCE verifier whose S256 challenge goes with the request
(RFC 7636), all kept in the encrypted session until the identity server sends the person
back. The ID token's signature, issuer, audience, expiry and nonce are checked here, and
the access token is checked as every node checks it; the citizen is whoever that access
token's ``person`` claim names, and nobody else.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from datatrust.errors import AuthenticationFailed, PeerError

__all__ = [
    "REFUSED",
    "STALE",
    "PendingSignIn",
    "SignInClient",
    "TokenSet",
    "begin_sign_in",
    "finish_sign_in",
    "returning_sign_in",
    "sign_out_of",
]

SCOPE = "openid profile"
ID_TOKEN_ALGORITHMS = ("ES256",)
PENDING_LIFETIME_SECONDS = 600
REFRESH_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in this browser started: what the answer must match, and where to go after."""

    state: str
    nonce: str
    verifier: str
    next: str
    started_at: int

    @classmethod
    def start(cls, next_path: str) -> PendingSignIn:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),
            next=next_path,
            started_at=int(time.time()),
        )

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    @property
    def is_expired(self) -> bool:
        return time.time() > self.started_at + PENDING_LIFETIME_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Any) -> PendingSignIn | None:
        try:
            return cls(**data)
        except TypeError:
            return None


@dataclass(frozen=True)
class TokenSet:
    """The tokens of one sign-in (kept only in the encrypted session)."""

    access_token: str
    refresh_token: str | None
    expires_at: int
    name: str

    @property
    def needs_refresh(self) -> bool:
        return time.time() > self.expires_at - REFRESH_MARGIN_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Any) -> TokenSet | None:
        try:
            return cls(**data)
        except TypeError:
            return None


STALE = "stale"
"""A sign-in answer that did not start in this browser's session, or came back too late."""
REFUSED = "refused"
"""A sign-in answer without a code: the person cancelled, or the identity server refused."""


def begin_sign_in(session: Any, signin: SignInClient, next_path: str) -> str:
    """Remember a fresh sign-in in ``session``; the identity server URL to send the browser to.

    The portal, the DPO console and the analyst explorer all sign in this way; each says in
    its own words what went wrong.
    """
    pending = PendingSignIn.start(next_path)
    session.set("pending", pending.as_dict())
    return signin.authorization_url(pending)


def returning_sign_in(
    session: Any, params: Mapping[str, str]
) -> tuple[PendingSignIn | None, str | None]:
    """The sign-in an authorization answer completes, taken out of ``session`` (used once),
    or why it cannot be: ``STALE`` or ``REFUSED``."""
    pending = PendingSignIn.from_dict(session.pop("pending"))
    if pending is None or pending.is_expired or params.get("state") != pending.state:
        return None, STALE
    if "error" in params or not params.get("code"):
        return None, REFUSED
    return pending, None


def finish_sign_in(session: Any, tokens: TokenSet) -> None:
    """A new session (and CSRF token) for the person now signed in, holding their tokens."""
    session.renew()
    session.set("tokens", tokens.as_dict())
    session.set("signed_in_at", int(time.time()))


async def sign_out_of(session: Any, signin: SignInClient) -> None:
    """Revoke the session's tokens at the identity server and start a new, empty session."""
    tokens = TokenSet.from_dict(session.get("tokens"))
    if tokens is not None:
        await signin.revoke(tokens)
    session.renew()


class SignInClient:
    """Talks to the identity server for the portal: authorize URL, code, refresh, revoke."""

    def __init__(
        self, issuer: str, client_id: str, redirect_uri: str, *, scope: str = SCOPE
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope  # the explorer adds the purposes an analyst's token should carry
        self._http = httpx.AsyncClient(timeout=10.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    def authorization_url(self, pending: PendingSignIn) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": pending.challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self.issuer}/authorize?{query}"

    async def exchange(self, code: str, pending: PendingSignIn) -> TokenSet:
        """Trade the code for tokens and check the ID token against this sign-in."""
        body = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "client_id": self.client_id,
                "code_verifier": pending.verifier,
            }
        )
        claims = await self._id_token_claims(body.get("id_token"), pending.nonce)
        return _token_set(body, name=str(claims.get("name") or "you"))

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise AuthenticationFailed("the sign-in has expired: sign in again")
        body = await self._token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "client_id": self.client_id,
            }
        )
        return _token_set(body, name=tokens.name)

    async def revoke(self, tokens: TokenSet) -> None:
        """Revoke the sign-in's refresh token (and with it its family); best effort."""
        if not tokens.refresh_token:
            return
        # Best effort: the session is cleared anyway and the token expires by itself.
        with contextlib.suppress(httpx.HTTPError):
            await self._http.post(
                f"{self.issuer}/revoke",
                data={
                    "token": tokens.refresh_token,
                    "token_type_hint": "refresh_token",
                    "client_id": self.client_id,
                },
            )

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._http.post(f"{self.issuer}/token", data=form)
        except httpx.HTTPError as error:
            raise PeerError(f"the identity server at {self.issuer} did not answer") from error
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            detail = body.get("error_description") or body.get("error") or response.status_code
            raise AuthenticationFailed(f"the identity server refused the sign-in: {detail}")
        if not isinstance(body.get("access_token"), str):
            raise AuthenticationFailed("the identity server sent no access token")
        return body

    async def _id_token_claims(self, id_token: Any, nonce: str) -> dict[str, Any]:
        if not isinstance(id_token, str):
            raise AuthenticationFailed("the identity server sent no ID token")
        try:
            response = await self._http.get(f"{self.issuer}/jwks.json")
            keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as error:
            raise PeerError(f"no signing keys from the identity server {self.issuer}") from error
        try:
            token = jwt.decode(id_token, keys, algorithms=list(ID_TOKEN_ALGORITHMS))
            jwt.JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as error:
            raise AuthenticationFailed(
                f"the ID token is not valid for this sign-in: {error}"
            ) from error
        return token.claims


def _token_set(body: dict[str, Any], *, name: str) -> TokenSet:
    expires_in = body.get("expires_in")
    lifetime = int(expires_in) if isinstance(expires_in, int | float) else 300
    refresh = body.get("refresh_token")
    return TokenSet(
        access_token=body["access_token"],
        refresh_token=refresh if isinstance(refresh, str) else None,
        expires_at=int(time.time()) + lifetime,
        name=name,
    )
