"""The browser session: one cookie, encrypted and authenticated (Fernet), HttpOnly.

It holds the CSRF token, a sign-in in progress (state, nonce, PKCE verifier, where to go
next) and, once signed in, the citizen's tokens. Encrypting it means the tokens never sit
readable in the browser, and authenticating it means a changed cookie is simply no
session. The key lives in a file beside the trust's other keys, created owner-only, so
sessions survive a restart and no secret is in the settings. Fernet is from
``cryptography``, which the trust already uses for its keys.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

from datatrust.errors import SettingsError

__all__ = ["SESSION_COOKIE", "Session", "SessionCodec", "load_or_create_session_key"]

SESSION_COOKIE = "datatrust_portal"
MAX_COOKIE_BYTES = 4000
"""Browsers keep cookies up to about 4 KB; a session that outgrows it must not be cut."""


def load_or_create_session_key(path: Path) -> bytes:
    """The Fernet key in ``path``, created (owner-only) when the file is missing."""
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return load_or_create_session_key(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
        return key
    try:
        Fernet(key)
    except ValueError as error:
        raise SettingsError(
            f"session key file {path} does not hold a Fernet key (32 url-safe base64 bytes); "
            "delete it and restart the portal to make a new one (everyone signs in again)"
        ) from error
    return key


@dataclass
class Session:
    """What one browser's cookie says; ``changed`` tells the response to write it again."""

    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False

    @property
    def csrf_token(self) -> str:
        token = self.data.get("csrf")
        if not isinstance(token, str) or not token:
            token = secrets.token_urlsafe(32)
            self.data["csrf"] = token
            self.changed = True
        return token

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.changed = True

    def pop(self, key: str, default: Any = None) -> Any:
        if key in self.data:
            self.changed = True
        return self.data.pop(key, default)

    def renew(self) -> None:
        """Start afresh with a new CSRF token (at sign-in and sign-out: no fixation)."""
        self.data = {"csrf": secrets.token_urlsafe(32)}
        self.changed = True


class SessionCodec:
    """Reads and writes the session cookie; a cookie it cannot open is an empty session."""

    def __init__(
        self,
        key: bytes,
        *,
        lifetime_seconds: int,
        secure: bool,
        cookie_name: str = SESSION_COOKIE,
        path: str = "/",
    ) -> None:
        """``cookie_name`` and ``path`` keep each page set's sign-in apart (the DPO console's
        cookie is its own, sent only under ``/console``)."""
        self._fernet = Fernet(key)
        self.lifetime_seconds = lifetime_seconds
        self.secure = secure
        self.cookie_name = cookie_name
        self.path = path

    def load(self, request: Request) -> Session:
        raw = request.cookies.get(self.cookie_name)
        if not raw:
            return Session()
        try:
            data = json.loads(self._fernet.decrypt(raw.encode(), ttl=self.lifetime_seconds))
        except (InvalidToken, ValueError):
            return Session(changed=True)  # tampered, foreign or too old: replace it
        if not isinstance(data, dict):
            return Session(changed=True)
        signed_in_at = data.get("signed_in_at")
        if isinstance(signed_in_at, int) and signed_in_at + self.lifetime_seconds < time.time():
            return Session(changed=True)  # a sign-in lasts at most the lifetime
        return Session(data)

    def save(self, response: Response, session: Session) -> None:
        if not session.changed:
            return
        value = self._fernet.encrypt(json.dumps(session.data).encode()).decode()
        if len(value) > MAX_COOKIE_BYTES:
            raise ValueError(f"the session cookie would be {len(value)} bytes, over 4000")
        response.set_cookie(
            self.cookie_name,
            value,
            max_age=self.lifetime_seconds,
            path=self.path,
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )
