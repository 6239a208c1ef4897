"""Where a ``next`` parameter may send someone: back into this site, nowhere else.

A sign-in link carries the page to return to. Followed blindly, it lets anyone craft a link
to the trust's sign-in that ends on their own look-alike site (an open redirect, OWASP's
"unvalidated redirects"). Only a path on this site is kept; anything naming a scheme or a
host, or that a browser could read as one (``//host``, ``/\\host``, control characters),
falls back to the start page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["START_PAGE", "safe_next"]

START_PAGE = "/"
MAX_NEXT_LENGTH = 2000


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site, else the start page."""
    if not value or len(value) > MAX_NEXT_LENGTH:
        return START_PAGE
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return START_PAGE
    if any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in value):
        return START_PAGE  # browsers drop tabs and newlines and read '\' as '/'
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return START_PAGE
    return value
