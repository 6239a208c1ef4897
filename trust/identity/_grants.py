"""authlib's grants and endpoints, narrowed to what the trust allows.

- client credentials: ``client_secret_basic`` or ``private_key_jwt`` only;
- authorization code: an exact, explicit ``redirect_uri`` and PKCE with S256 (``plain`` and
  a missing challenge are refused), with an ID token when ``openid`` is asked for;
- refresh: every use rotates the token; a second use of a rotated token revokes its family;
- revocation (RFC 7009) and introspection (RFC 7662), the latter for clients allowed to.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode
from joserfc.jwk import KeySet

from datatrust.trust.identity._models import AuthorizationCode, IssuedToken, User

if TYPE_CHECKING:
    from datatrust.trust.identity._server import TrustAuthorizationServer

__all__ = [
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "Introspection",
    "OpenIDConnect",
    "PrivateKeyJWT",
    "RefreshTokenGrant",
    "Revocation",
    "S256CodeChallenge",
]

CONFIDENTIAL = ["client_secret_basic", "private_key_jwt"]
ANY_CLIENT = ["none", *CONFIDENTIAL]


def _check_scope(grant: Any) -> None:
    """Refuse a scope naming anything the client may not ask for, saying what it may."""
    client = grant.request.client
    unknown = [
        s
        for s in scope_to_list(grant.request.payload.scope) or []
        if s not in client.allowed_scopes
    ]
    if unknown:
        raise InvalidScopeError(
            f"client '{client.client_id}' may not ask for {' '.join(unknown)}; it may ask "
            f"for: {' '.join(client.allowed_scopes)}"
        )


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL

    def validate_requested_scope(self) -> None:
        _check_scope(self)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_CLIENT
    server: TrustAuthorizationServer

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: Any) -> str:
        uri = request.payload.redirect_uri
        if not uri:
            raise InvalidRequestError("redirect_uri is required", state=request.payload.state)
        if not client.check_redirect_uri(uri):
            raise InvalidRequestError(
                f"redirect_uri is not registered for client '{client.client_id}' (exact match)",
                state=request.payload.state,
            )
        return uri

    def validate_requested_scope(self) -> None:
        _check_scope(self)

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        now = int(time.time())
        self.server.store.add_code(
            code,
            client_id=request.client.client_id,
            user_id=request.user.get_user_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            nonce=data.get("nonce"),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            auth_time=now,
            expires_at=now + self.server.settings.authorization_code_lifetime_seconds,
        )

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        row = self.server.store.consume_code(code, client.client_id)
        return AuthorizationCode(row) if row else None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: ``query_authorization_code`` consumed it."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        return self.server.user(authorization_code.row["user_id"])


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_CLIENT
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: TrustAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        store = self.server.store
        row = store.token(refresh_token, kind="refresh")
        if row is None:
            return None
        if row["revoked"]:
            raise InvalidGrantError("the refresh token has been revoked: sign in again")
        if row["expires_at"] <= time.time():
            raise InvalidGrantError("the refresh token has expired: sign in again")
        if not store.rotate_refresh_token(refresh_token):
            store.revoke_family(row["family_id"])
            raise InvalidGrantError(
                "the refresh token was already used, so every token of this sign-in is now "
                "revoked: sign in again"
            )
        return IssuedToken(row)

    def authenticate_user(self, refresh_token: IssuedToken) -> User | None:
        return self.server.user(refresh_token.row["user_id"])

    def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
        """Nothing to do: ``authenticate_refresh_token`` marked it used, atomically."""


class S256CodeChallenge(CodeChallenge):
    """PKCE that accepts only S256 and requires it on every authorization request."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256"
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is refused)")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDConnect(OpenIDCode):
    """ID tokens signed with the server's current key; citizens' carry ``nhs_number``."""

    def __init__(self, server: TrustAuthorizationServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return self.server.store.nonce_used(request.payload.client_id, nonce)

    def get_client_algorithm(self, client: Any) -> str:
        return "ES256"

    def get_encode_header(self, client: Any) -> dict[str, str]:
        return {"alg": "ES256", "typ": "JWT", "kid": self.server.keys.signing_key.kid}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        lifetime = self.server.settings.id_token_lifetime_seconds
        return {
            "iss": self.server.settings.issuer,
            "aud": [client.client_id],
            "iat": now,
            "exp": now + lifetime,
        }

    def resolve_client_private_key(self, client: Any) -> Any:
        return self.server.keys.signing_key

    def generate_user_info(self, user: User, scope: str) -> dict[str, Any]:
        return user.profile(scope)


class PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client authentication with keys the client registered (never from the JWT)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: TrustAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def get_audiences(self) -> list[str]:
        settings = self.server.settings
        return [settings.issuer, settings.endpoint("/token")]

    def validate_jti(self, claims: Any, jti: str) -> bool:
        expires_at = int(claims.get("exp") or time.time() + 600)
        return self.server.store.use_assertion_id(claims["sub"], str(jti), expires_at)

    def resolve_client_public_key(self, client: Any) -> KeySet:
        return KeySet.import_key_set(client.row["jwks"] or {"keys": []})


class _TokenLookup:
    CLIENT_AUTH_METHODS = ANY_CLIENT
    server: TrustAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        row = self.server.store.token(token_string)
        return IssuedToken(row) if row else None


class Revocation(_TokenLookup, RevocationEndpoint):
    def revoke_token(self, token: IssuedToken, request: Any) -> None:
        store = self.server.store
        if token.row["kind"] == "refresh":
            store.revoke_family(token.row["family_id"])
        else:
            store.revoke_token_digest(token.row["token_digest"])


class Introspection(_TokenLookup, IntrospectionEndpoint):
    def check_permission(self, token: IssuedToken, client: Any, request: Any) -> bool:
        return bool(client.row["may_introspect"]) or token.check_client(client)

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        row = token.row
        body: dict[str, Any] = {
            "active": True,
            "client_id": row["client_id"],
            "scope": row["scope"],
            "token_type": "Bearer" if row["kind"] == "access" else "refresh_token",
            "iat": row["issued_at"],
            "exp": row["expires_at"],
            "iss": self.server.settings.issuer,
        }
        body.update(row["claims"] or {})
        return body
