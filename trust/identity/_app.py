"""The identity server's HTTP surface, as one Starlette application.

Endpoints: ``/.well-known/openid-configuration``, ``/jwks.json``, ``/authorize`` (a small
login form, POSTed with a CSRF token), ``/token``, ``/revoke`` and ``/introspect``.
authlib is synchronous, so each call into it runs in Starlette's thread pool.
"""

from __future__ import annotations

import hmac
import secrets
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode

from authlib.oauth2.rfc6749 import OAuth2Error
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from datatrust.trust.identity._accounts import IdentityService
from datatrust.trust.identity._server import oauth2_request
from datatrust.trust.identity._settings import IdentitySettings

__all__ = ["create_identity_app"]

MAX_FORM_BYTES = 64 * 1024
_CSRF_COOKIE = "datatrust_csrf"


def create_identity_app(
    settings: IdentitySettings, service: IdentityService | None = None
) -> Starlette:
    """The identity server for ``settings`` (state and keys under ``settings.data_dir``)."""
    service = service or IdentityService(settings)
    server = service.server

    async def discovery(request: Request) -> Response:
        return JSONResponse(service.discovery_document())

    async def jwks(request: Request) -> Response:
        return JSONResponse(service.keys.jwks(), headers={"Cache-Control": "max-age=60"})

    async def token(request: Request) -> Response:
        return await _form_endpoint(request, server.create_token_response)

    async def revoke(request: Request) -> Response:
        return await _form_endpoint(
            request, lambda req: server.create_endpoint_response("revocation", req)
        )

    async def introspect(request: Request) -> Response:
        return await _form_endpoint(
            request, lambda req: server.create_endpoint_response("introspection", req)
        )

    async def authorize(request: Request) -> Response:
        if request.method == "GET":
            args = list(request.query_params.multi_items())
            req = oauth2_request("GET", str(request.url), request.headers, args)
            try:
                await run_in_threadpool(server.get_consent_grant, req, None)
            except OAuth2Error as error:
                return server.handle_error_response(req, error)
            return _login_page(urlencode(args), message=None, status=200)
        form = await _read_form(request)
        if isinstance(form, Response):
            return form
        fields = dict(form)
        oauth = fields.get("oauth", "")
        cookie = request.cookies.get(_CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie, fields.get("csrf_token", "")):
            return _login_page(
                oauth, "The form expired or was not sent by this page: sign in again.", status=400
            )
        user = await run_in_threadpool(
            service.authenticate_person, fields.get("username", ""), fields.get("password", "")
        )
        if user is None:
            return _login_page(oauth, "Wrong username or password.", status=401)
        args = parse_qsl(oauth, keep_blank_values=True)
        uri = f"{settings.issuer}/authorize?{oauth}"
        req = oauth2_request("GET", uri, request.headers, args)

        def grant_code() -> Response:
            try:
                grant = server.get_consent_grant(req, user)
            except OAuth2Error as error:
                return server.handle_error_response(req, error)
            return server.create_authorization_response(req, grant_user=user, grant=grant)

        response = await run_in_threadpool(grant_code)
        response.delete_cookie(_CSRF_COOKIE, path="/authorize")
        return response

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks.json", jwks),
            Route("/authorize", authorize, methods=["GET", "POST"]),
            Route("/token", token, methods=["POST"]),
            Route("/revoke", revoke, methods=["POST"]),
            Route("/introspect", introspect, methods=["POST"]),
        ]
    )


async def _read_form(request: Request) -> list[tuple[str, str]] | Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _error("invalid_request", "send the parameters as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _error("invalid_request", f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return _error("invalid_request", "the form is not valid UTF-8 url-encoding")


async def _form_endpoint(request: Request, handler: Any) -> Response:
    form = await _read_form(request)
    if isinstance(form, Response):
        return form
    args = list(request.query_params.multi_items())
    req = oauth2_request("POST", str(request.url), request.headers, args, form)
    return await run_in_threadpool(handler, req)


def _error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _login_page(oauth: str, message: str | None, *, status: int) -> Response:
    """The sign-in form; the OAuth request rides along in a hidden field."""
    csrf = secrets.token_urlsafe(32)
    notice = f'<p role="alert">{escape(message)}</p>' if message else ""
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to the data trust</title></head>
<body><main><h1>Sign in</h1>{notice}
<form method="post" action="/authorize">
<input type="hidden" name="csrf_token" value="{escape(csrf)}">
<input type="hidden" name="oauth" value="{escape(oauth)}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
required></label>
<button type="submit">Sign in</button>
</form></main></body></html>"""
    response = HTMLResponse(
        html,
        status_code=status,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )
    response.set_cookie(
        _CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/authorize", max_age=600
    )
    return response
