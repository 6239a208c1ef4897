"""Forms: read them within bounds and refuse any without this session's CSRF token.

The token is the synchroniser-token pattern (OWASP CSRF cheat sheet): a random value kept
in the encrypted session and written into every form; a POST is accepted only when the two
match, compared in constant time. SameSite=Lax cookies already stop most cross-site posts;
the token stops the rest (older browsers, same-site subdomains).
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.requests import Request

from datatrust.web._session import Session

__all__ = ["CSRF_FIELD", "BadForm", "CsrfRefused", "read_form"]

CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 16 * 1024


class BadForm(Exception):
    """The request is not a form this site sends (400)."""


class CsrfRefused(Exception):
    """The form has no valid CSRF token for this session (403)."""


async def read_form(request: Request, session: Session) -> dict[str, str]:
    """The url-encoded form of ``request``, each field once, after checking its CSRF token."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise BadForm("the form must be sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadForm(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadForm("the form is not valid UTF-8 url-encoding") from error
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise BadForm(f"the form names the field {name!r} more than once")
        form[name] = value
    expected = session.get("csrf")
    sent = form.pop(CSRF_FIELD, "")
    if not isinstance(expected, str) or not expected or not sent:
        raise CsrfRefused("the form has no security token")
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfRefused("the form's security token does not match this session")
    return form
