"""Issuer configuration and the cache of their published signing keys.

Keys come only from each issuer's JWKS URL, fetched by us: never from a token. They are
cached, so the identity server being down does not stop validation of tokens signed by keys
we already hold (until ``keys_max_age_seconds``). An unknown ``kid`` triggers one refresh, at
most once per ``min_refresh_interval_seconds`` per issuer, so a stream of forged kids cannot
turn a node into a load generator against its identity server.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from datatrust.errors import AuthenticationFailed, SettingsError

__all__ = ["KID_PATTERN", "IntrospectionConfig", "IssuerConfig", "JwksCache", "PublicKey"]

KID_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
"""What a key id may be: checked before any lookup, so no path or SQL characters get through."""

_ES256 = ec.ECDSA(hashes.SHA256())

SUPPORTED_ALGORITHMS = ("ES256", "RS256")
"""Asymmetric only: a symmetric algorithm would let anyone holding the public key sign."""


@dataclass(frozen=True)
class IntrospectionConfig:
    """Where and as whom to ask an issuer whether a token is still active (RFC 7662)."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class IssuerConfig:
    """One issuer a node accepts: its JWKS, its pinned algorithms and the agencies it speaks for.

    ``agency`` is one agency id, or several for a trust-wide identity server.
    """

    jwks_url: str
    agency: str | Collection[str]
    algorithms: tuple[str, ...] = ("ES256",)
    introspection: IntrospectionConfig | None = None

    def __post_init__(self) -> None:
        unsupported = [a for a in self.algorithms if a not in SUPPORTED_ALGORITHMS]
        if unsupported or not self.algorithms:
            raise SettingsError(
                f"issuer algorithms {list(self.algorithms)!r}: each must be one of "
                f"{', '.join(SUPPORTED_ALGORITHMS)} (asymmetric signatures only)"
            )
        parts = urlsplit(self.jwks_url)
        loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise SettingsError(
                f"issuer JWKS URL {self.jwks_url!r} must use https (http only on loopback)"
            )
        if not self.agencies:
            raise SettingsError(f"issuer with JWKS {self.jwks_url!r} names no agency")

    @property
    def agencies(self) -> frozenset[str]:
        if isinstance(self.agency, str):
            return frozenset({self.agency})
        return frozenset(self.agency)


class PublicKey:
    """One parsed public key, kept as a cryptography object so verifying costs only the math."""

    def __init__(self, kid: str, algorithms: frozenset[str], key: Any) -> None:
        self.kid = kid
        self.algorithms = algorithms
        self._key = key

    def verify(self, alg: str, signature: bytes, signing_input: bytes) -> None:
        """Raise InvalidSignature (or ValueError) unless ``signature`` is valid for ``alg``."""
        if alg not in self.algorithms:
            raise ValueError(f"key {self.kid} is not for {alg}")
        if alg == "ES256":
            if len(signature) != 64:
                raise ValueError("an ES256 signature is 64 bytes")
            der = utils.encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            self._key.verify(der, signing_input, _ES256)
        else:
            self._key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())


def parse_jwks(document: Any, algorithms: Collection[str]) -> dict[str, PublicKey]:
    """The usable signing keys of a JWKS document, by kid; anything else is skipped."""
    keys: dict[str, PublicKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the document is not a JWKS (no 'keys' list)")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not KID_PATTERN.match(kid):
            continue
        public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            key = import_key(public).public_key
        except (JoseError, ValueError, TypeError):
            continue
        usable = set()
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
            usable.add("ES256")
        if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
            usable.add("RS256")
        usable &= set(algorithms)
        if "alg" in entry:
            usable &= {entry["alg"]}
        if usable:
            keys[kid] = PublicKey(kid, frozenset(usable), key)
    return keys


@dataclass
class _IssuerKeys:
    keys: dict[str, PublicKey] = field(default_factory=dict)
    fetched_at: float | None = None
    last_attempt: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """Per-issuer signing keys, refreshed when stale or on an unknown kid, rate-limited."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        clock: Callable[[], float],
        refresh_interval_seconds: float,
        min_refresh_interval_seconds: float,
        keys_max_age_seconds: float,
    ) -> None:
        self._http = http
        self._clock = clock
        self.refresh_interval_seconds = refresh_interval_seconds
        self.min_refresh_interval_seconds = min_refresh_interval_seconds
        self.keys_max_age_seconds = keys_max_age_seconds
        self._issuers: dict[str, _IssuerKeys] = {}

    def key(self, issuer: str, config: IssuerConfig, kid: str) -> PublicKey:
        """The issuer's key ``kid``, or AuthenticationFailed saying why there is none."""
        state = self._issuers.setdefault(issuer, _IssuerKeys())
        now = self._clock()
        stale = state.fetched_at is None or now - state.fetched_at > self.refresh_interval_seconds
        if (stale or kid not in state.keys) and self._may_try(state, now):
            error = self._try_refresh(issuer, config, state)
            if error and state.fetched_at is None:
                raise AuthenticationFailed(
                    f"cannot fetch the signing keys of issuer {issuer!r} from "
                    f"{config.jwks_url}: {error}"
                )
        key = state.keys.get(kid)
        if key is None:
            raise AuthenticationFailed(
                f"the access token is signed with key {kid!r}, which issuer {issuer!r} "
                "does not publish"
            )
        if state.fetched_at is not None and now - state.fetched_at > self.keys_max_age_seconds:
            raise AuthenticationFailed(
                f"the cached signing keys of issuer {issuer!r} are older than "
                f"{int(self.keys_max_age_seconds)} seconds and {config.jwks_url} cannot be "
                "reached to renew them"
            )
        return key

    def refresh(self, issuer: str, config: IssuerConfig) -> None:
        """Fetch now, regardless of the rate limit; raise if the JWKS cannot be had."""
        state = self._issuers.setdefault(issuer, _IssuerKeys())
        error = self._try_refresh(issuer, config, state)
        if error:
            raise AuthenticationFailed(
                f"cannot fetch the signing keys of issuer {issuer!r} from "
                f"{config.jwks_url}: {error}"
            )

    def _may_try(self, state: _IssuerKeys, now: float) -> bool:
        return (
            state.last_attempt is None
            or now - state.last_attempt >= self.min_refresh_interval_seconds
        )

    def _try_refresh(self, issuer: str, config: IssuerConfig, state: _IssuerKeys) -> str | None:
        """Replace the issuer's keys with a fresh fetch; on failure keep them, return why."""
        with state.lock:
            state.last_attempt = self._clock()
            try:
                response = self._http.get(config.jwks_url)
                response.raise_for_status()
                keys = parse_jwks(response.json(), config.algorithms)
            except httpx.HTTPError as error:
                return f"{type(error).__name__}: {error}"
            except ValueError as error:
                return f"the answer is not a JWKS document ({error})"
            state.keys = keys
            state.fetched_at = state.last_attempt
            return None
