"""authlib's AuthorizationServer, adapted to Starlette and issuing RFC 9068 access tokens.

authlib ships Flask and Django integrations but none for Starlette; this module is the thin
equivalent: it turns a Starlette request (already read, since authlib is synchronous) into an
``OAuth2Request`` and authlib's ``(status, body, headers)`` into a Starlette response.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections import defaultdict
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from joserfc import jwt
from starlette.responses import Response

from datatrust.trust._keys import load_or_create_key, person_pseudonym
from datatrust.trust.identity._grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    Introspection,
    OpenIDConnect,
    PrivateKeyJWT,
    RefreshTokenGrant,
    Revocation,
    S256CodeChallenge,
)
from datatrust.trust.identity._keys import ALGORITHM, KeyRing
from datatrust.trust.identity._models import Client, User
from datatrust.trust.identity._settings import IdentitySettings
from datatrust.trust.identity._store import IdentityStore

__all__ = ["TrustAuthorizationServer", "oauth2_request"]


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _StarletteRequest(OAuth2Request):
    def __init__(
        self,
        method: str,
        uri: str,
        headers: Any,
        args: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._args = dict(args)
        self._form = dict(form)
        self.payload = _Payload(args + form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def oauth2_request(
    method: str,
    uri: str,
    headers: Any,
    args: list[tuple[str, str]],
    form: list[tuple[str, str]] | None = None,
) -> OAuth2Request:
    """An authlib request from parts of a Starlette request (the body already parsed)."""
    return _StarletteRequest(method, uri, headers, args, form or [])


class _AccessTokens(BearerTokenGenerator):
    """RFC 9068 JWT access tokens with the trust's claims: agency, roles and purposes."""

    def __init__(self, server: TrustAuthorizationServer) -> None:
        super().__init__(
            self._access_token,
            lambda **_: secrets.token_urlsafe(32),
            lambda client, grant_type: server.settings.access_token_lifetime_seconds,
        )
        self.server = server

    def generate(
        self,
        grant_type: str,
        client: Client,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Narrow the scope to what the person may use, then issue as authlib does."""
        scope = client.get_allowed_scope(scope)
        if user is not None:
            people = set(user.row["purposes"])
            scope = " ".join(s for s in scope.split() if s in people or s in ("openid", "profile"))
        return super().generate(grant_type, client, user, scope, expires_in, include_refresh_token)

    def _person(self, user: User | None) -> str | None:
        """A citizen's trust pseudonym, when the trust's pseudonym key is configured."""
        key_file = self.server.settings.person_key_file
        if user is None or key_file is None or not user.row["nhs_number"]:
            return None
        return person_pseudonym(load_or_create_key(key_file), user.row["nhs_number"])

    def _access_token(self, client: Client, grant_type: str, user: User | None, scope: str):
        settings = self.server.settings
        now = int(time.time())
        owner = user.row if user is not None else client.row
        claims = {
            "iss": settings.issuer,
            "sub": owner["user_id"] if user is not None else client.client_id,
            "aud": list(settings.audiences),
            "exp": now + settings.access_token_lifetime_seconds,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": client.client_id,
            "scope": scope,
            "agency": owner["agency"],
            "roles": list(owner["roles"]),
            "purposes": [s for s in scope.split() if s in client.purposes],
        }
        person = self._person(user)
        if person is not None:
            claims["person"] = person
        key = self.server.keys.signing_key
        header = {"alg": ALGORITHM, "typ": "at+jwt", "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


class TrustAuthorizationServer(AuthorizationServer):
    """The trust's OAuth 2.0 / OIDC server: authlib grants over our store and key ring."""

    def __init__(self, settings: IdentitySettings, store: IdentityStore, keys: KeyRing) -> None:
        super().__init__(scopes_supported=None)
        self.settings = settings
        self.store = store
        self.keys = keys
        self.register_token_generator("default", _AccessTokens(self))
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(self))
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(), OpenIDConnect(self)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> Client | None:
        row = self.store.client(client_id)
        return Client(row) if row else None

    def user(self, user_id: str) -> User | None:
        row = self.store.user(user_id)
        return User(row) if row else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        previous = request.refresh_token
        family = previous.row["family_id"] if previous is not None else uuid.uuid4().hex
        user_id = request.user.get_user_id() if request.user is not None else None
        claims = _unverified_claims(token["access_token"])
        common = {
            "client_id": request.client.client_id,
            "user_id": user_id,
            "scope": token.get("scope", ""),
            "family_id": family,
            "issued_at": claims["iat"],
        }
        keep = ("sub", "aud", "jti", "agency", "roles", "purposes")
        self.store.add_token(
            token["access_token"],
            kind="access",
            jti=claims["jti"],
            claims={k: claims[k] for k in keep},
            expires_at=claims["exp"],
            **common,
        )
        if "refresh_token" in token:
            self.store.add_token(
                token["refresh_token"],
                kind="refresh",
                expires_at=claims["iat"] + self.settings.refresh_token_lifetime_seconds,
                **common,
            )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal bus here; audit of issuance lands with the node's ledger."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if not isinstance(request, OAuth2Request):
            raise TypeError("build the request with oauth2_request() first")
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers or [])
        if isinstance(body, dict):
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        return Response(body, status_code=status, headers=headers)


def _unverified_claims(token: str) -> dict[str, Any]:
    """Claims of a token this server has just signed itself (so no verification needed)."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
