"""The analyst explorer as a Starlette application, mounted at ``/explorer`` on the portal.

Routes (under ``/explorer``): ``/`` (GET: the query form, with ``?saved=ID`` filling it
from a saved query; POST: run it and show the answer as a table, a bar chart and, by area,
a map), ``/ide`` (GraphiQL, when JavaScript runs), ``/graphql`` (POST, JSON: the IDE's
same-origin proxy), ``/sign-in``, ``/callback``, ``/sign-out`` (POST).

A backend-for-frontend: the analyst's access token lives only in the encrypted session
cookie (its own, sent only under ``/explorer``) and in the requests this process makes to
the gateway; no page or response carries it. Each query goes with the purpose chosen from
the token's own purposes; any other is refused here, before the gateway is asked. Every
POST needs the session's CSRF token: in the form, or in the ``X-CSRF-Token`` header for
the JSON proxy.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from datatrust.errors import AuthenticationFailed, DatatrustError
from datatrust.policies import Requester
from datatrust.settings import PortalSettings
from datatrust.trust._purposes import demo_purpose_register
from datatrust.web._csrf import BadForm, CsrfRefused, read_form
from datatrust.web._redirects import safe_next
from datatrust.web._responses import SessionResponses, session_codec
from datatrust.web._session import Session
from datatrust.web._signin import (
    SCOPE,
    STALE,
    SignInClient,
    TokenSet,
    begin_sign_in,
    finish_sign_in,
    returning_sign_in,
    sign_out_of,
)
from datatrust.web.explorer._analyst import AnalystAuthenticator, NotAnAnalyst
from datatrust.web.explorer._columns import query_columns
from datatrust.web.explorer._gateway import GatewayClient
from datatrust.web.explorer._map import ATTRIBUTION, demo_boundaries
from datatrust.web.explorer._pages import PREFIX, explorer_pages
from datatrust.web.explorer._saved import SAVED_QUERIES, saved_query
from datatrust.web.explorer._view import results_view

__all__ = ["EXPLORER_COOKIE", "create_explorer_app"]

logger = logging.getLogger("datatrust.web.explorer")

EXPLORER_COOKIE = "datatrust_explorer"
FORM_FIELDS = frozenset({"query", "variables", "purpose", "measure", "saved"})
MAX_PROXY_BYTES = 64 * 1024
CSRF_HEADER = "x-csrf-token"


@functools.cache
def _supergraph():
    """The supergraph of this release's node subgraphs: which node answers which field."""
    from datatrust._gateway_cli import local_supergraph

    return local_supergraph()


class _Explorer(SessionResponses):
    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings
        self.sessions = session_codec(settings, cookie_name=EXPLORER_COOKIE, path=PREFIX)
        self.pages = explorer_pages()
        self.signin = SignInClient(
            settings.issuer,
            settings.client_id,
            f"{settings.effective_public_url}{PREFIX}/callback",
            scope=" ".join([SCOPE, *settings.explorer_purposes]),
        )
        self.auth = AnalystAuthenticator(Path(settings.data_dir).resolve())
        self.gateway = GatewayClient(settings.gateway) if settings.gateway else None
        self.titles = {p.id: p.title for p in demo_purpose_register().purposes}

    async def analyst(self, session: Session) -> tuple[TokenSet, Requester] | None:
        """The signed-in analyst (tokens refreshed when due), or None if nobody is."""
        tokens = TokenSet.from_dict(session.get("tokens"))
        if tokens is None:
            return None
        try:
            if tokens.needs_refresh:
                tokens = await self.signin.refresh(tokens)
                session.set("tokens", tokens.as_dict())
            requester = await run_in_threadpool(self.auth.analyst, tokens.access_token)
        except (AuthenticationFailed, DatatrustError):
            session.renew()
            return None
        return tokens, requester

    def purposes(self, requester: Requester) -> list[dict[str, str]]:
        return [{"id": p, "title": self.titles.get(p, p)} for p in requester.purposes or ()]

    def page(
        self, session: Session, template: str, *, signed_in: bool = True, status: int = 200, **v
    ) -> Response:
        return self.render_page(session, template, signed_in=signed_in, status=status, **v)


def create_explorer_app(settings: PortalSettings) -> Starlette:
    """The analyst explorer for ``settings`` (mount it at ``/explorer``)."""
    ex = _Explorer(settings)

    async def home(request: Request) -> Response:
        session = ex.sessions.load(request)
        if request.method == "POST":
            return await run_query(request, session)
        signed = await ex.analyst(session)
        if signed is None:
            return ex.page(session, "explorer/start.html", signed_in=False)
        _tokens, requester = signed
        chosen = saved_query(request.query_params.get("saved"))
        form = _form_from_saved(chosen) if chosen else _blank_form(requester)
        return query_page(session, requester, form, saved=chosen)

    def query_page(
        session: Session,
        requester: Requester,
        form: dict[str, str],
        *,
        saved=None,
        results=None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        errors = errors or {}
        return ex.page(
            session,
            "explorer/query.html",
            status=status,
            current="query",
            form=form,
            purposes=ex.purposes(requester),
            saved_queries=SAVED_QUERIES,
            saved=saved,
            results=results,
            attribution=ATTRIBUTION,
            gateway_configured=ex.gateway is not None,
            errors=errors,
            error_summary=[{"target": k, "text": t} for k, t in errors.items()],
        )

    async def run_query(request: Request, session: Session) -> Response:
        form = await read_form(request, session)
        signed = await ex.analyst(session)
        if signed is None:
            return ex.redirect(session, PREFIX + "/sign-in")
        tokens, requester = signed
        extra = sorted(set(form) - FORM_FIELDS)
        if extra:
            raise BadForm(f"the form has fields this page never sends: {', '.join(extra)}")
        form = {k: form.get(k, "") for k in FORM_FIELDS}
        errors: dict[str, str] = {}
        query = form["query"].strip()
        if not query:
            errors["query"] = "Enter a GraphQL query"
        variables, problem = _variables(form["variables"])
        if problem:
            errors["variables"] = problem
        purpose = form["purpose"]
        status = 400
        if purpose not in (requester.purposes or ()):
            errors["purpose"] = "Choose a purpose your sign-in allows: " + ", ".join(
                p["title"] for p in ex.purposes(requester)
            )
            status = 403 if purpose else 400
        if ex.gateway is None:
            errors["query"] = "The explorer has no gateway to ask: its settings name none"
            status = 503
        if errors:
            return query_page(session, requester, form, errors=errors, status=status)
        try:
            answer = await ex.gateway.ask(tokens.access_token, purpose, query, variables)
        except DatatrustError as error:
            logger.warning("gateway query failed: %s", error.message)
            return query_page(
                session,
                requester,
                form,
                errors={"query": "The gateway did not answer. Try again later."},
                status=502,
            )
        roots = query_columns(_supergraph().schema, _supergraph().owners_of, query)
        view = results_view(
            answer.body, roots, demo_boundaries(), measure=form["measure"], status=answer.status
        )
        return query_page(session, requester, form, saved=saved_query(form["saved"]), results=view)

    async def ide(request: Request) -> Response:
        session = ex.sessions.load(request)
        signed = await ex.analyst(session)
        if signed is None:
            return ex.redirect(session, PREFIX + "/sign-in?next=" + PREFIX + "/ide")
        _tokens, requester = signed
        return ex.page(
            session,
            "explorer/ide.html",
            current="ide",
            purposes=ex.purposes(requester),
            saved_queries=SAVED_QUERIES,
        )

    async def proxy(request: Request) -> Response:
        """The IDE's GraphQL endpoint: same origin, CSRF header, the session's token."""
        session = ex.sessions.load(request)
        expected = session.get("csrf")
        sent = request.headers.get(CSRF_HEADER, "")
        if not isinstance(expected, str) or not expected or not sent:
            return _json_error(403, "CSRF_REFUSED", "the request has no security token")
        if not hmac.compare_digest(expected.encode(), sent.encode()):
            return _json_error(403, "CSRF_REFUSED", "the security token does not match")
        signed = await ex.analyst(session)
        if signed is None:
            return _json_error(401, "UNAUTHENTICATED", "sign in to the explorer again")
        tokens, requester = signed
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _json_error(415, "BAD_REQUEST", "send the query as application/json")
        raw = await request.body()
        if len(raw) > MAX_PROXY_BYTES:
            return _json_error(413, "REQUEST_TOO_LARGE", f"over {MAX_PROXY_BYTES} bytes")
        try:
            payload = json.loads(raw)
        except ValueError:
            return _json_error(400, "BAD_REQUEST", "the body is not JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return _json_error(400, "BAD_REQUEST", "the body needs a 'query' string")
        purpose = request.headers.get("purpose", "")
        if purpose not in (requester.purposes or ()):
            allowed = ", ".join(requester.purposes or ()) or "none"
            return _json_error(
                403,
                "PURPOSE_NOT_ALLOWED",
                f"purpose {purpose!r} is not one your sign-in allows ({allowed})",
            )
        if ex.gateway is None:
            return _json_error(503, "NOT_CONFIGURED", "the explorer's settings name no gateway")
        variables = payload.get("variables")
        operation = payload.get("operationName")
        try:
            answer = await ex.gateway.ask(
                tokens.access_token,
                purpose,
                payload["query"],
                variables if isinstance(variables, dict) else None,
                operation if isinstance(operation, str) else None,
            )
        except DatatrustError as error:
            return _json_error(502, "GATEWAY_UNAVAILABLE", error.message)
        response = JSONResponse(answer.body, status_code=answer.status)
        ex.sessions.save(response, session)
        return response

    async def sign_in(request: Request) -> Response:
        session = ex.sessions.load(request)
        next_path = _explorer_next(request.query_params.get("next"))
        if await ex.analyst(session) is not None:
            return ex.redirect(session, next_path)
        return ex.redirect(session, begin_sign_in(session, ex.signin, next_path))

    async def callback(request: Request) -> Response:
        session = ex.sessions.load(request)
        params = request.query_params
        pending, problem = returning_sign_in(session, params)
        if problem == STALE:
            return ex.error(
                session,
                400,
                signed_in=False,
                heading="Sign in again",
                paragraphs=["Your sign-in did not start here, or it took too long."],
            )
        if pending is None:  # REFUSED
            return ex.error(
                session,
                400,
                signed_in=False,
                heading="You are not signed in",
                paragraphs=["The sign-in was cancelled or refused."],
            )
        try:
            tokens = await ex.signin.exchange(params["code"], pending)
            await run_in_threadpool(ex.auth.analyst, tokens.access_token)
        except NotAnAnalyst:
            return ex.error(
                session,
                403,
                signed_in=False,
                heading="The explorer is for analysts",
                paragraphs=[
                    "Your account is not an analyst's. Sign in with an analyst account of "
                    "one of the trust's member organisations."
                ],
            )
        except (AuthenticationFailed, DatatrustError) as error:
            logger.info("explorer sign-in refused: %s", error.message)
            return ex.error(session, 403, signed_in=False, heading="You are not signed in")
        finish_sign_in(session, tokens)
        return ex.redirect(session, _explorer_next(pending.next))

    async def sign_out(request: Request) -> Response:
        session = ex.sessions.load(request)
        await read_form(request, session)
        await sign_out_of(session, ex.signin)
        return ex.redirect(session, PREFIX + "/")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        session = ex.sessions.load(request)
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return ex.error(session, status if status in (404, 405) else 400, signed_in=False)

    async def on_bad_form(request: Request, exc: Exception) -> Response:
        session = ex.sessions.load(request)
        return ex.error(session, 400, paragraphs=[f"The form could not be used: {exc}."])

    async def on_csrf(request: Request, exc: Exception) -> Response:
        session = ex.sessions.load(request)
        logger.info("explorer form refused: %s", exc)
        return ex.error(session, 403, signed_in=False)

    async def on_error(request: Request, exc: Exception) -> Response:
        logger.exception("explorer error on %s", request.url.path)
        return ex.error(Session(), 500, signed_in=False)

    async def aclose() -> None:
        """Close the HTTP clients (the portal's lifespan calls it: a mount has none)."""
        await ex.signin.aclose()
        if ex.gateway is not None:
            await ex.gateway.aclose()

    app = Starlette(
        routes=[
            Route("/", home, methods=["GET", "POST"]),
            Route("/ide", ide),
            Route("/graphql", proxy, methods=["POST"]),
            Route("/sign-in", sign_in),
            Route("/callback", callback),
            Route("/sign-out", sign_out, methods=["POST"]),
        ],
        exception_handlers={
            HTTPException: on_http_error,
            BadForm: on_bad_form,
            CsrfRefused: on_csrf,
            Exception: on_error,
        },
    )
    app.state.aclose = aclose
    return app


def _explorer_next(value: str | None) -> str:
    """Back to a page of the explorer after sign-in; anything else goes to its first page."""
    path = safe_next(value)
    return path if path.startswith(PREFIX + "/") else PREFIX + "/"


def _blank_form(requester: Requester) -> dict[str, str]:
    first = next(iter(requester.purposes or ()), "")
    return {"query": "", "variables": "", "purpose": first, "measure": "", "saved": ""}


def _form_from_saved(saved) -> dict[str, str]:
    return {
        "query": saved.query,
        "variables": saved.variables,
        "purpose": saved.purpose,
        "measure": saved.measure,
        "saved": saved.id,
    }


def _variables(text: str) -> tuple[dict[str, Any] | None, str | None]:
    if not text.strip():
        return None, None
    try:
        value = json.loads(text)
    except ValueError as error:
        return None, f"Variables must be JSON: {error.msg} at line {error.lineno}"
    if not isinstance(value, dict):
        return None, 'Variables must be a JSON object, like {"since": "2026-10-01"}'
    return value, None


def _json_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
    )
