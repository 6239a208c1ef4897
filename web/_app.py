"""The citizen portal as one Starlette application: start page, sign-in, "Your choices".

Routes: ``/`` (start), ``/sign-in`` (to the identity server), ``/callback`` (back from it),
``/sign-out`` (POST), ``/choices`` (GET the page, POST one change), ``/healthz``, and the
files under ``/static`` and ``/assets`` (GOV.UK Frontend's fonts and images, where its CSS
expects them). Every POST goes through :func:`read_form`, so none works without the
session's CSRF token. The citizen is whoever the access token in their session names
(``person`` claim, checked on every request); no URL or form field can say otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from datatrust.errors import AuthenticationFailed, DatatrustError
from datatrust.settings import GATEWAY_AUDIENCE, PortalSettings
from datatrust.trust._purposes import demo_purpose_register
from datatrust.trust.tokens import IssuerConfig, TokenValidator
from datatrust.web._choices import AgencyChoices, agency_choices
from datatrust.web._citizen import data_page, uses_csv_file, uses_page
from datatrust.web._consent_api import ConsentApi, ConsentApiError, ConsentNode
from datatrust.web._csrf import BadForm, CsrfRefused, read_form
from datatrust.web._opt_out import OPT_OUT_PATH, opt_out_endpoint
from datatrust.web._pages import Pages
from datatrust.web._redirects import START_PAGE, safe_next
from datatrust.web._responses import SessionResponses, session_codec
from datatrust.web._security import SecurityHeaders
from datatrust.web._session import Session
from datatrust.web._signin import (
    STALE,
    SignInClient,
    TokenSet,
    begin_sign_in,
    finish_sign_in,
    returning_sign_in,
    sign_out_of,
)

__all__ = ["create_portal_app"]

logger = logging.getLogger("datatrust.web")

STATIC_DIR = Path(__file__).parent / "static"
SERVICE_NAME = "Your data choices"
TRUST_NAME = "the data trust"
CITIZEN_AGENCY = "public"
"""Citizens' tokens claim this agency (they act for themselves); no other may use the portal."""
FORM_FIELDS = frozenset({"agency", "purpose", "action"})
CONFLICT_WORDS = {
    "withdraw": "Your consent for {purpose} at {agency} was not in place, so there was "
    "nothing to withdraw. This page now shows your current choice.",
    "give": "Your consent for {purpose} at {agency} could not be given. This page now shows "
    "your current choice.",
}


class _Portal(SessionResponses):
    """What every request handler needs, built once per application."""

    signed_in_by_default = False

    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings
        self.nodes = {n.id: ConsentNode(n.id, n.name, n.url) for n in settings.consent_nodes}
        self.purposes = list(settings.consent_purposes)
        self.titles = {p.id: p.title for p in demo_purpose_register().purposes}
        unknown = [p for p in self.purposes if p not in self.titles]
        if unknown:
            raise DatatrustError(
                f"portal consent_purposes names {', '.join(unknown)}, not in the purpose "
                f"register; known purposes: {', '.join(sorted(self.titles))}"
            )
        self.sessions = session_codec(settings)
        self.pages = Pages(service_name=SERVICE_NAME, trust_name=TRUST_NAME)
        self.signin = SignInClient(settings.issuer, settings.client_id, settings.redirect_uri)
        self.validator = TokenValidator(
            {
                settings.issuer: IssuerConfig(
                    jwks_url=f"{settings.issuer}/jwks.json", agency=CITIZEN_AGENCY
                )
            },
            GATEWAY_AUDIENCE,
        )
        files = settings.tls_files
        if files is not None:
            from datatrust.network import client_ssl_context

            verify = client_ssl_context(files.cert, files.key, files.ca)
        else:
            verify = True
        self.consent = ConsentApi(verify)

    # -- sessions and who is signed in -------------------------------------------------

    async def citizen(self, session: Session) -> TokenSet | None:
        """The signed-in citizen's tokens (refreshed if due), or None if nobody is."""
        tokens = TokenSet.from_dict(session.get("tokens"))
        if tokens is None:
            return None
        try:
            if tokens.needs_refresh:
                tokens = await self.signin.refresh(tokens)
                session.set("tokens", tokens.as_dict())
            await self.person(tokens)
        except (AuthenticationFailed, DatatrustError):
            session.renew()
            return None
        return tokens

    async def person(self, tokens: TokenSet) -> str:
        """The trust pseudonym the access token names; AuthenticationFailed without one."""
        requester = await run_in_threadpool(self.validator.validate, tokens.access_token)
        if not requester.person:
            raise AuthenticationFailed("the access token names no person")
        return requester.person

    def page(
        self, request: Request, session: Session, template: str, *, signed_in: bool, **values
    ) -> Response:
        return self.render_page(session, template, signed_in=signed_in, **values)

    # -- the "Your choices" page ---------------------------------------------------------

    async def agencies(self, tokens: TokenSet) -> list[AgencyChoices]:
        async def one(node: ConsentNode) -> AgencyChoices:
            try:
                answer = await self.consent.read(node, tokens.access_token)
            except ConsentApiError as error:
                logger.warning("consent read at %s failed: %s", node.id, error.message)
                return AgencyChoices(node.id, node.name, (), (), problem="it did not answer")
            return agency_choices(
                node.id,
                node.name,
                self.purposes,
                self.titles,
                list(answer.current),
                list(answer.history),
            )

        return list(await asyncio.gather(*(one(n) for n in self.nodes.values())))


def create_portal_app(settings: PortalSettings) -> Starlette:
    """The citizen portal for ``settings``."""
    from datatrust.web.console import create_console_app
    from datatrust.web.explorer import create_explorer_app

    portal = _Portal(settings)
    console = create_console_app(settings)
    explorer = create_explorer_app(settings)

    async def start(request: Request) -> Response:
        session = portal.sessions.load(request)
        tokens = await portal.citizen(session)
        return portal.page(
            request, session, "start.html", signed_in=tokens is not None, current="start"
        )

    async def sign_in(request: Request) -> Response:
        session = portal.sessions.load(request)
        next_path = safe_next(request.query_params.get("next"))
        if await portal.citizen(session) is not None:
            return portal.redirect(session, next_path)
        return portal.redirect(session, begin_sign_in(session, portal.signin, next_path))

    async def callback(request: Request) -> Response:
        session = portal.sessions.load(request)
        params = request.query_params
        pending, problem = returning_sign_in(session, params)
        if problem == STALE:
            return portal.error(
                session,
                400,
                heading="Sign in again",
                paragraphs=[
                    "Your sign-in did not start here, or it took too long. Start again from "
                    "the start page."
                ],
            )
        if pending is None:  # REFUSED
            return portal.error(
                session,
                400,
                heading="You are not signed in",
                paragraphs=["The sign-in was cancelled or refused. Start again to try again."],
            )
        try:
            tokens = await portal.signin.exchange(params["code"], pending)
            await portal.person(tokens)
        except AuthenticationFailed as error:
            logger.info("sign-in refused: %s", error.message)
            return portal.error(
                session,
                403,
                heading="This service is for members of the public",
                paragraphs=[
                    "You can only use it to see and change choices about your own records. "
                    "Sign in with your own account, not a work account."
                ],
            )
        finish_sign_in(session, tokens)
        return portal.redirect(session, safe_next(pending.next))

    async def sign_out(request: Request) -> Response:
        session = portal.sessions.load(request)
        await read_form(request, session)
        await sign_out_of(session, portal.signin)
        return portal.redirect(session, START_PAGE)

    async def choices(request: Request) -> Response:
        session = portal.sessions.load(request)
        if request.method == "POST":
            return await change_choice(request, session)
        tokens = await portal.citizen(session)
        if tokens is None:
            return portal.redirect(session, "/sign-in?next=/choices")
        return await choices_page(request, session, tokens, done=session.pop("done"))

    async def choices_page(
        request: Request,
        session: Session,
        tokens: TokenSet,
        *,
        done: dict | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        errors = errors or {}
        response = portal.page(
            request,
            session,
            "choices.html",
            signed_in=True,
            current="choices",
            agencies=await portal.agencies(tokens),
            person_name=tokens.name,
            done=done,
            errors=errors,
            error_summary=[{"target": key, "text": text} for key, text in errors.items()],
        )
        response.status_code = status
        return response

    async def change_choice(request: Request, session: Session) -> Response:
        form = await read_form(request, session)
        tokens = await portal.citizen(session)
        if tokens is None:
            return portal.redirect(session, "/sign-in?next=/choices")
        extra = sorted(set(form) - FORM_FIELDS)
        if extra:
            raise BadForm(f"the form has fields this page never sends: {', '.join(extra)}")
        node = portal.nodes.get(form.get("agency", ""))
        purpose = form.get("purpose", "")
        action = form.get("action", "")
        if node is None or purpose not in portal.titles or action not in ("give", "withdraw"):
            raise BadForm("the form names an organisation, use or action this page does not offer")
        title = portal.titles[purpose].lower()
        row = f"choice-{node.id}-{purpose}"
        try:
            if action == "withdraw":
                await portal.consent.withdraw(node, tokens.access_token, purpose)
            else:
                await portal.consent.give(node, tokens.access_token, purpose)
        except ConsentApiError as error:
            logger.info("consent %s at %s refused: %s", action, node.id, error.message)
            if error.code == "CONSENT_STATE_CONFLICT":
                text, status = CONFLICT_WORDS[action].format(purpose=title, agency=node.name), 409
            else:
                text = f"{node.name} could not record your choice just now. Try again later."
                status = 502
            return await choices_page(request, session, tokens, errors={row: text}, status=status)
        session.set("done", _confirmation(action, title, node.name))
        return portal.redirect(session, "/choices")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "part": "portal"})

    async def on_http_error(request: Request, exc: Exception) -> Response:
        session = portal.sessions.load(request)
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return portal.error(session, status if status in (404, 405) else 400)

    async def on_bad_form(request: Request, exc: Exception) -> Response:
        session = portal.sessions.load(request)
        logger.info("bad form refused: %s", exc)
        return portal.error(session, 400, paragraphs=[f"The form could not be used: {exc}."])

    async def on_csrf(request: Request, exc: Exception) -> Response:
        session = portal.sessions.load(request)
        logger.info("form refused: %s", exc)
        return portal.error(session, 403)

    async def on_error(request: Request, exc: Exception) -> Response:
        logger.exception("portal error on %s", request.url.path)
        return portal.error(Session(), 500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await portal.signin.aclose()
        await portal.consent.aclose()
        await console.state.aclose()
        await explorer.state.aclose()

    app = Starlette(
        routes=[
            Route("/", start),
            Route("/sign-in", sign_in),
            Route("/callback", callback),
            Route("/sign-out", sign_out, methods=["POST"]),
            Route("/choices", choices, methods=["GET", "POST"]),
            Route(OPT_OUT_PATH, opt_out_endpoint(portal), methods=["GET", "POST"]),
            Route("/uses", uses_page(portal)),
            Route("/uses.csv", uses_csv_file(portal)),
            Route("/data", data_page(portal)),
            Route("/healthz", healthz),
            Mount("/console", console, name="console"),
            Mount("/explorer", explorer, name="explorer"),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
            Mount(
                "/assets",
                StaticFiles(directory=STATIC_DIR / "govuk-frontend" / "assets"),
                name="assets",
            ),
        ],
        exception_handlers={
            HTTPException: on_http_error,
            BadForm: on_bad_form,
            CsrfRefused: on_csrf,
            Exception: on_error,
        },
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeaders, static_prefixes=("/static/", "/assets/"))
    return app


def _confirmation(action: str, purpose: str, agency: str) -> dict[str, str]:
    """The success banner's words: what changed, and from when it applies."""
    if action == "withdraw":
        return {
            "heading": f"You have withdrawn your consent for {purpose} at {agency}",
            "effect": f"This applies from the next time anyone asks {agency} for data. "
            f"{agency} checks your choice every time it answers, so from now on its answers "
            f"for {purpose} will not include your records.",
        }
    return {
        "heading": f"You have given your consent for {purpose} at {agency}",
        "effect": f"This applies from the next time anyone asks {agency} for data. "
        f"{agency} checks your choice every time it answers, so from now on its answers "
        f"for {purpose} may include your records. You can withdraw it here at any time.",
    }
