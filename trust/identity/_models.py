"""Rows of the identity store, wrapped in the interfaces authlib's grants call."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

from datatrust.trust.identity._store import digest

__all__ = ["OIDC_SCOPES", "AuthorizationCode", "Client", "IssuedToken", "User"]

OIDC_SCOPES = ("openid", "profile")
"""Scopes that are not purposes: they ask for an ID token and the person's profile claims."""


@dataclass(frozen=True)
class Client(ClientMixin):
    """A registered client: a partner system, a command-line tool or the citizen portal."""

    row: dict[str, Any]

    @property
    def client_id(self) -> str:
        return self.row["client_id"]

    @property
    def purposes(self) -> tuple[str, ...]:
        return tuple(self.row["purposes"])

    @property
    def allowed_scopes(self) -> tuple[str, ...]:
        """Purposes, plus the OIDC scopes for clients that sign people in."""
        people = "authorization_code" in self.row["grant_types"]
        return self.purposes + (OIDC_SCOPES if people else ())

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(self.purposes)
        return " ".join(s for s in scope.split() if s in self.allowed_scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match against a registered URI: no prefixes, no wildcards."""
        return redirect_uri in self.row["redirect_uris"]

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row["secret_digest"]
        return stored is not None and hmac.compare_digest(digest(client_secret), stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.row["auth_method"]

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row["grant_types"]

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row["grant_types"]


@dataclass(frozen=True)
class User:
    """A person: an analyst or DPO of an agency, or a citizen."""

    row: dict[str, Any]

    def get_user_id(self) -> str:
        return self.row["user_id"]

    def profile(self, scope: str) -> dict[str, Any]:
        """ID-token and userinfo claims; a citizen's carry ``nhs_number``, as NHS login's do."""
        claims: dict[str, Any] = {"sub": self.row["user_id"]}
        if "profile" in scope.split():
            claims.update(
                name=self.row["name"],
                preferred_username=self.row["username"],
                agency=self.row["agency"],
                roles=list(self.row["roles"]),
            )
        if self.row["nhs_number"]:
            claims["nhs_number"] = self.row["nhs_number"]
        return claims


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):
    row: dict[str, Any]

    @property
    def code_challenge(self) -> str:
        return self.row["code_challenge"]

    @property
    def code_challenge_method(self) -> str:
        return self.row["code_challenge_method"]

    def get_redirect_uri(self) -> str:
        return self.row["redirect_uri"]

    def get_scope(self) -> str:
        return self.row["scope"]

    def get_nonce(self) -> str | None:
        return self.row["nonce"]

    def get_auth_time(self) -> int:
        return self.row["auth_time"]


@dataclass(frozen=True)
class IssuedToken(TokenMixin):
    """An access or refresh token the server issued, as its store row."""

    row: dict[str, Any]

    def check_client(self, client: Client) -> bool:
        return self.row["client_id"] == client.get_client_id()

    def get_scope(self) -> str:
        return self.row["scope"]

    def get_expires_in(self) -> int:
        return self.row["expires_at"] - self.row["issued_at"]

    def is_expired(self) -> bool:
        return self.row["expires_at"] <= time.time()

    def is_revoked(self) -> bool:
        return bool(self.row["revoked"])
