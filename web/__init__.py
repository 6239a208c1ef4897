"""The trust's web pages for people: the citizen portal, on GOV.UK Frontend.

Server-rendered (Starlette and Jinja2), working without JavaScript and enhanced by GOV.UK
Frontend's when it runs. Sign-in is the identity server's authorization code flow with
PKCE; the session is one encrypted, HttpOnly, SameSite=Lax cookie; every form carries a
CSRF token; a strict Content-Security-Policy allows no inline script. The foundation
(session, CSRF, sign-in, security headers, layout) is shared by every page set.
"""

from datatrust.web._app import create_portal_app
from datatrust.web._redirects import safe_next

__all__ = ["create_portal_app", "safe_next"]
