"""Mutual TLS between the members of a trust: contexts, the peer certificate, the directory check.

Two gates, in this order:

1. the TLS handshake (``server_ssl_context``, ``CERT_REQUIRED``): a client with no
   certificate, or one the trust CA did not issue, never gets a connection;
2. ``RequireDirectoryPeer``: a client whose trust-CA certificate the current directory does
   not list (a removed member, a stolen part key after re-issue) gets a 403 naming why.

uvicorn does not put the client certificate into the ASGI scope, so ``PeerCertificateProtocol``
(a subclass of uvicorn's h11 protocol) adds it per connection as the ASGI TLS extension,
``scope["extensions"]["tls"]["client_cert_chain"]`` (PEM strings). ``mtls_uvicorn_config``
wires both into a ``uvicorn.Config``.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from datatrust.errors import DatatrustError, graphql_error
from datatrust.network._directory import TrustDirectory
from datatrust.network._errors import PeerNotListed, TlsMaterialError
from datatrust.network._pki import TlsFiles, certificate_fingerprint

__all__ = [
    "PeerCertificateProtocol",
    "RequireDirectoryPeer",
    "certificate_expires_at",
    "client_ssl_context",
    "mtls_uvicorn_config",
    "server_ssl_context",
]

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def server_ssl_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """A server context that demands a client certificate issued by the trust CA.

    TLS 1.2 at least; OpenSSL negotiates 1.3 whenever the client offers it.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.options |= ssl.OP_NO_RENEGOTIATION
    _load(context, cert, key, ca)
    return context


def client_ssl_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """A client context (``httpx.Client(verify=context)``): presents our certificate, trusts
    only the trust CA and checks the server's name against its certificate (TLS 1.2+)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(context, cert, key, ca)
    return context


def certificate_expires_at(cert: Path) -> dt.datetime:
    """When the (first) certificate in the PEM file ``cert`` expires, in UTC; read afresh
    each time, so a monitor sees a rotated certificate as soon as its file is replaced."""
    try:
        return x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
    except (OSError, ValueError) as error:
        raise TlsMaterialError(
            f"cannot read the TLS certificate {cert}: {error}; run datatrust init to create it"
        ) from error


def _load(context: ssl.SSLContext, cert: Path, key: Path, ca: Path) -> None:
    try:
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as error:
        raise TlsMaterialError(
            f"cannot load the TLS files (certificate {cert}, key {key}, CA {ca}): {error}; "
            "run datatrust init to create them"
        ) from error


class PeerCertificateProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus the client certificate in each request's scope.

    The handshake is complete when ``connection_made`` runs, so the certificate is read once
    per connection and every request on it carries the same ``extensions.tls``.
    """

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)
        chain = [] if der is None else [ssl.DER_cert_to_PEM_cert(der)]
        tls = {
            "server_cert": None,
            "client_cert_chain": chain,
            "client_cert_name": _subject(der),
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": None,
        }
        self.app = _WithTlsExtension(self.app, tls)


class _WithTlsExtension:
    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app, self.tls = app, tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": self.tls}}
        await self.app(scope, receive, send)


class RequireDirectoryPeer:
    """ASGI middleware: only a TLS client whose certificate the trust directory lists gets in.

    ``directory_provider`` returns the directory in force (a ``DirectoryWatcher``); when it
    raises (no good directory, or it expired) every request is refused with that reason. The
    accepted peer is put in ``scope["state"]["peer"]`` (a ``DirectoryPeer``).
    """

    def __init__(self, app: ASGIApp, directory_provider: Callable[[], TrustDirectory]) -> None:
        self.app = app
        self.directory_provider = directory_provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            peer = self._peer(scope)
        except DatatrustError as error:
            response = JSONResponse(
                {"data": None, "errors": [graphql_error(error)]}, status_code=error.status_hint
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["peer"] = peer
        await self.app(scope, receive, send)

    def _peer(self, scope: Scope) -> Any:
        tls = (scope.get("extensions") or {}).get("tls")
        chain = (tls or {}).get("client_cert_chain") or []
        if not chain:
            raise PeerNotListed(
                "no client certificate: this endpoint accepts only mutual TLS clients with a "
                "certificate listed in the trust directory"
            )
        fingerprint = certificate_fingerprint(chain[0].encode("ascii"))
        directory = self.directory_provider()
        peer = directory.peer(fingerprint)
        if peer is None:
            raise PeerNotListed(
                f"the client certificate (sha256 {fingerprint}) is not listed in trust directory "
                f"{directory.trust!r} version {directory.version}",
                certificate_sha256=fingerprint,
            )
        return peer


def mtls_uvicorn_config(app: ASGIApp, files: TlsFiles, **options: Any) -> uvicorn.Config:
    """A ``uvicorn.Config`` serving ``app`` over mutual TLS with the peer certificate in scope."""
    return uvicorn.Config(
        app,
        http=PeerCertificateProtocol,
        ssl_context_factory=lambda _config, _default: server_ssl_context(*files),
        **options,
    )


def _subject(der: bytes | None) -> str | None:
    if der is None:
        return None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()
