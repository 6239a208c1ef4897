"""What every console handler needs, built once per application: sessions, pages, sign-in,
the DPO check and the platform policy's ``authorize``."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from datatrust.errors import AccessDenied, AuthenticationFailed, DatatrustError
from datatrust.policies import Requester
from datatrust.settings import PortalSettings
from datatrust.web._csrf import read_form
from datatrust.web._responses import SessionResponses, session_codec
from datatrust.web._session import Session
from datatrust.web._signin import SignInClient, TokenSet
from datatrust.web.console._actor import DpoAuthenticator
from datatrust.web.console._documents import NotFound
from datatrust.web.console._pages import PREFIX, console_pages

__all__ = ["CONSOLE_COOKIE", "Console"]

CONSOLE_COOKIE = "datatrust_console"

logger = logging.getLogger("datatrust.web.console")


def _lc():
    from datatrust.policies import lifecycle

    return lifecycle


class Console(SessionResponses):
    """What every handler needs, built once per application."""

    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir).resolve()
        self.sessions = session_codec(settings, cookie_name=CONSOLE_COOKIE, path=PREFIX)
        self.pages = console_pages()
        self.signin = SignInClient(
            settings.issuer, settings.client_id, f"{settings.effective_public_url}{PREFIX}/callback"
        )
        self.auth = DpoAuthenticator(self.data_dir)
        self._authorize = None

    @property
    def authorize(self):
        if self._authorize is None:
            from datatrust.policies._platform import PlatformAuthorizer

            authorizer = PlatformAuthorizer()
            authorizer.check()
            self._authorize = authorizer.authorize
        return self._authorize

    async def dpo(self, session: Session) -> tuple[TokenSet, Requester] | None:
        """The signed-in DPO (tokens refreshed if due), or None if nobody is."""
        tokens = TokenSet.from_dict(session.get("tokens"))
        if tokens is None:
            return None
        try:
            if tokens.needs_refresh:
                tokens = await self.signin.refresh(tokens)
                session.set("tokens", tokens.as_dict())
            actor = await run_in_threadpool(self.auth.dpo, tokens.access_token)
        except (AuthenticationFailed, DatatrustError):
            session.renew()
            return None
        return tokens, actor

    def page(self, session: Session, template: str, *, status: int = 200, **values) -> Response:
        return self.render_page(session, template, status=status, **values)

    def purposes(self) -> dict[str, str]:
        published = _lc().read_published(self.data_dir)
        listed = published.register.get("purposes", []) if published else []
        return {p["id"]: p.get("title", p["id"]) for p in listed}

    def signed_in(self, handler):
        """Run ``handler(request, session, actor)`` for a signed-in DPO; else sign in."""

        async def wrapped(request: Request) -> Response:
            session = self.sessions.load(request)
            if request.method == "POST":
                form = await read_form(request, session)
            else:
                form = None
            who = await self.dpo(session)
            if who is None:
                path = request.url.path if request.method == "GET" else PREFIX + "/"
                return self.redirect(session, f"{PREFIX}/sign-in?next={path}")
            request.state.form = form
            request.state.tokens = who[0]
            try:
                return await handler(request, session, who[1])
            except NotFound as error:
                logger.info("console: %s", error)
                return self.error(session, 404)
            except AccessDenied as error:
                return self.error(session, 403, paragraphs=[error.message])

        return wrapped
