"""Responses that carry the session cookie: pages, error pages and redirects.

The portal, the DPO console and the analyst explorer each keep their own cookie, but
answer the same way: every response re-seals the session (its CSRF token, a refreshed
access token), so a handler can never forget to. One base class does that for all three.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from datatrust.settings import PortalSettings
from datatrust.web._pages import Pages, PrefixedPages
from datatrust.web._session import (
    SESSION_COOKIE,
    Session,
    SessionCodec,
    load_or_create_session_key,
)

__all__ = ["SessionResponses", "session_codec"]


def session_codec(
    settings: PortalSettings, *, cookie_name: str = SESSION_COOKIE, path: str = "/"
) -> SessionCodec:
    """The session cookie of one page set, sealed with the trust's portal session key."""
    return SessionCodec(
        load_or_create_session_key(settings.effective_session_key_file),
        lifetime_seconds=settings.session_lifetime_seconds,
        secure=settings.effective_public_url.startswith("https://"),
        cookie_name=cookie_name,
        path=path,
    )


class SessionResponses:
    """A page set's responses, each saving the session; ``signed_in`` is the default state
    its error pages show (the portal's start pages are public, the others are not)."""

    pages: Pages | PrefixedPages
    sessions: SessionCodec
    signed_in_by_default: bool = True

    def render_page(
        self,
        session: Session,
        template: str,
        *,
        signed_in: bool | None = None,
        status: int = 200,
        **values: Any,
    ) -> Response:
        response = self.pages.render(
            template,
            csrf_token=session.csrf_token,
            signed_in=self.signed_in_by_default if signed_in is None else signed_in,
            status=status,
            **values,
        )
        self.sessions.save(response, session)
        return response

    def error(
        self, session: Session, status: int, *, signed_in: bool | None = None, **values: Any
    ) -> Response:
        response = self.pages.error(
            status,
            csrf_token=session.csrf_token,
            signed_in=self.signed_in_by_default if signed_in is None else signed_in,
            **values,
        )
        self.sessions.save(response, session)
        return response

    def redirect(self, session: Session, to: str) -> Response:
        response = RedirectResponse(to, status_code=303)
        self.sessions.save(response, session)
        return response
