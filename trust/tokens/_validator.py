"""Access-token checks for every node and the gateway: who is asking, for which agency and purpose.

A node never trusts the network or the gateway, so each one validates the caller's RFC 9068
access token itself. Every check refuses rather than guesses, in this order, so that nothing
reaches a key lookup or a signature check before the cheap structural checks have passed:

1. shape: three base64url parts, a JSON header and claims, at most ``MAX_TOKEN_BYTES``;
2. header: no ``jku``, ``x5u``, ``jwk`` or ``x5c`` (keys come only from the issuer's JWKS), no
   ``crit``;
3. issuer: ``iss`` is configured, and ``alg`` is one the issuer is pinned to (so ``none`` and
   ``HS256`` keyed with the public key are refused before any key is touched); then ``typ``
   is ``at+jwt`` and ``kid`` is 1 to 64 letters, digits, ``-`` or ``_``;
4. signature, with the issuer's key of that ``kid`` (``_jwks.py`` caches and refreshes keys);
5. claims: ``aud`` contains ours, ``exp``/``nbf``/``iat`` within the leeway, the ``agency``
   is one the issuer may speak for, and (if configured) introspection says it is active.

Messages say what is wrong in plain words and never repeat the token.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature

from datatrust.errors import AuthenticationFailed, PermissionDenied
from datatrust.trust.tokens._jwks import (
    KID_PATTERN,
    IntrospectionConfig,
    IssuerConfig,
    JwksCache,
)

__all__ = [
    "TokenValidator",
    "VerifiedRequester",
    "require_purpose",
]

MAX_TOKEN_BYTES = 8192
"""Far above a real access token (about 600 bytes), far below anything that costs to parse."""

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
"""RFC 9068 section 2.1: the ``typ`` that keeps ID tokens and other JWTs out."""

KEY_REFERENCE_HEADERS = ("jku", "x5u", "jwk", "x5c")
"""Headers that let a token name or carry its own key: never honoured, always refused."""

_COMPACT = re.compile(r"\A[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\Z")
"""The signature part may be empty so that ``alg: none`` is refused by name, not as malformed."""


@dataclass(frozen=True)
class VerifiedRequester:
    """Who is asking, as an issuer the trust lists has vouched for it."""

    subject: str
    client_id: str
    agency: str
    roles: tuple[str, ...]
    purposes: tuple[str, ...]
    issuer: str
    token_id: str
    expires_at: int
    person: str | None = None
    """The trust pseudonym of a citizen acting for themselves (the ``person`` claim)."""


class TokenValidator:
    """Validates bearer access tokens against the issuers a trust lists.

    ``issuers`` maps each issuer URL (the ``iss`` claim, exactly) to its configuration;
    ``audience`` is this node's or the gateway's audience. ``http_client`` and ``clock`` are
    injectable for tests; validating a token signed by a cached key does no I/O unless
    introspection is configured for its issuer.
    """

    def __init__(
        self,
        issuers: Mapping[str, IssuerConfig],
        audience: str,
        *,
        leeway_seconds: int = 30,
        http_client: httpx.Client | None = None,
        refresh_interval_seconds: float = 300.0,
        min_refresh_interval_seconds: float = 30.0,
        keys_max_age_seconds: float = 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuers:
            raise ValueError("a TokenValidator needs at least one issuer")
        self.issuers = dict(issuers)
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self._clock = clock
        self._http = http_client or httpx.Client(timeout=5.0)
        self._keys = JwksCache(
            self._http,
            clock=clock,
            refresh_interval_seconds=refresh_interval_seconds,
            min_refresh_interval_seconds=min_refresh_interval_seconds,
            keys_max_age_seconds=keys_max_age_seconds,
        )

    def refresh(self, issuer: str) -> None:
        """Fetch ``issuer``'s JWKS now (operators and tests; validation refreshes by itself)."""
        self._keys.refresh(issuer, self.issuers[issuer])

    def validate_header(self, authorization: str | None) -> VerifiedRequester:
        """Validate an HTTP ``Authorization`` header value of the form ``Bearer <token>``."""
        if not authorization or not authorization.strip():
            raise AuthenticationFailed(
                "no access token: send the header 'Authorization: Bearer <access token>'"
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("the Authorization header is not 'Bearer <access token>'")
        return self.validate(token.strip())

    def validate(self, token: str) -> VerifiedRequester:
        """The requester a valid access token speaks for; AuthenticationFailed otherwise."""
        if not token:
            raise AuthenticationFailed(
                "no access token: send the header 'Authorization: Bearer <access token>'"
            )
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthenticationFailed(
                f"the access token is malformed: it is longer than {MAX_TOKEN_BYTES} bytes"
            )
        if not _COMPACT.match(token):
            raise AuthenticationFailed(
                "the access token is malformed: it is not three base64url parts "
                "separated by dots (a JWS compact serialization)"
            )
        header_part, claims_part, signature_part = token.split(".")
        header = _json_object(header_part, "header")
        claims = _json_object(claims_part, "claims set")
        _check_key_headers(header)
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise AuthenticationFailed("the access token names no issuer (iss)")
        config = self.issuers.get(issuer)
        if config is None:
            raise AuthenticationFailed(
                f"the access token's issuer {issuer[:200]!r} is not one this trust accepts"
            )
        alg = header.get("alg")
        if alg not in config.algorithms:
            raise AuthenticationFailed(
                f"the access token is signed with {str(alg)[:20]!r}, but issuer {issuer!r} "
                f"is pinned to {', '.join(config.algorithms)}"
            )
        kid = _check_type_and_kid(header)
        key = self._keys.key(issuer, config, kid)
        signature = _b64decode(signature_part)
        try:
            key.verify(alg, signature, f"{header_part}.{claims_part}".encode("ascii"))
        except (InvalidSignature, ValueError):
            raise AuthenticationFailed(
                f"the access token's signature does not verify with key {kid!r} of issuer "
                f"{issuer!r}"
            ) from None
        requester = self._check_claims(claims, issuer, config)
        if config.introspection is not None:
            self._check_active(token, config.introspection)
        return requester

    def _check_claims(
        self, claims: dict[str, Any], issuer: str, config: IssuerConfig
    ) -> VerifiedRequester:
        now = self._clock()
        leeway = self.leeway_seconds
        audiences = claims.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or self.audience not in audiences:
            raise AuthenticationFailed(
                f"the access token is for audience {claims.get('aud')!r}, not {self.audience!r}"
            )
        expires_at = _int_claim(claims, "exp")
        if expires_at + leeway < now:
            raise AuthenticationFailed(
                f"the access token expired at {_iso(expires_at)} "
                f"({int(now - expires_at)} seconds ago): get a new one"
            )
        issued_at = _int_claim(claims, "iat")
        if issued_at - leeway > now:
            raise AuthenticationFailed(
                f"the access token says it was issued at {_iso(issued_at)}, in the future: "
                "the issuer's clock or ours is wrong"
            )
        if "nbf" in claims:
            not_before = _int_claim(claims, "nbf")
            if not_before - leeway > now:
                raise AuthenticationFailed(
                    f"the access token is not valid before {_iso(not_before)}"
                )
        agency = _str_claim(claims, "agency")
        if agency not in config.agencies:
            raise AuthenticationFailed(
                f"the access token claims agency {agency!r}, but issuer {issuer!r} may speak "
                f"only for {', '.join(sorted(config.agencies))}"
            )
        return VerifiedRequester(
            subject=_str_claim(claims, "sub"),
            client_id=_str_claim(claims, "client_id"),
            agency=agency,
            roles=_str_list_claim(claims, "roles"),
            purposes=_str_list_claim(claims, "purposes"),
            issuer=issuer,
            token_id=_str_claim(claims, "jti"),
            expires_at=expires_at,
            person=_person_claim(claims),
        )

    def _check_active(self, token: str, introspection: IntrospectionConfig) -> None:
        """Ask the issuer whether the token was revoked; any failure to ask is a refusal."""
        try:
            response = self._http.post(
                introspection.url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=(introspection.client_id, introspection.client_secret),
            )
            response.raise_for_status()
            active = response.json().get("active")
        except (httpx.HTTPError, ValueError, AttributeError) as error:
            raise AuthenticationFailed(
                "cannot confirm that the access token is not revoked: introspection at "
                f"{introspection.url} failed ({type(error).__name__})"
            ) from None
        if active is not True:
            raise AuthenticationFailed(
                f"the access token has been revoked (introspection at {introspection.url} "
                "says it is not active)"
            )


def require_purpose(requester: VerifiedRequester, purpose: str) -> None:
    """Refuse (403) a request whose declared purpose the requester's token does not allow."""
    if purpose not in requester.purposes:
        allowed = ", ".join(requester.purposes) or "none"
        raise PermissionDenied(
            f"purpose {purpose[:64]!r} is not among the purposes this access token allows "
            f"({allowed}): ask for a token for that purpose",
            purpose=purpose[:64],
            token_purposes=list(requester.purposes),
        )


def _check_key_headers(header: dict[str, Any]) -> None:
    for name in KEY_REFERENCE_HEADERS:
        if name in header:
            raise AuthenticationFailed(
                f"the access token's header carries {name!r}: keys are taken only from the "
                "issuer's published JWKS, never from the token"
            )
    if "crit" in header:
        raise AuthenticationFailed(
            "the access token's header has critical extensions (crit), which are not supported"
        )


def _check_type_and_kid(header: dict[str, Any]) -> str:
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise AuthenticationFailed(
            f"the token's type (typ) is {str(typ)[:40]!r}, not 'at+jwt': only access tokens "
            "(RFC 9068) are accepted, never ID tokens or other JWTs"
        )
    kid = header.get("kid")
    if kid is None:
        raise AuthenticationFailed("the access token's header names no signing key (kid)")
    if not isinstance(kid, str) or not KID_PATTERN.match(kid):
        raise AuthenticationFailed(
            "the access token's key id (kid) is not 1 to 64 letters, digits, '-' or '_'"
        )
    return kid


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_object(part: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part))
    except (binascii.Error, ValueError):
        value = None
    if not isinstance(value, dict):
        raise AuthenticationFailed(
            f"the access token is malformed: its {name} is not a base64url JSON object"
        )
    return value


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationFailed(f"the access token has no numeric {name!r} claim")
    return int(value)


def _str_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise AuthenticationFailed(f"the access token has no {name!r} claim")
    return value


def _str_list_claim(claims: dict[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AuthenticationFailed(f"the access token's {name!r} claim is not a list of names")
    return tuple(value)


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


_PERSON = re.compile(r"^[pl]-[0-9a-f]{32}$")


def _person_claim(claims: dict[str, Any]) -> str | None:
    """The ``person`` claim if present; a malformed one refuses the token (never ignored)."""
    person = claims.get("person")
    if person is None:
        return None
    if not isinstance(person, str) or not _PERSON.match(person):
        raise AuthenticationFailed("access token refused: its 'person' claim is malformed")
    return person
